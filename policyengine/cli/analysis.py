"""`diff` and `matrix`: what a reviewer of a policy change needs to see."""

from __future__ import annotations

import json
import sys

import click

from policyengine.analysis.diff import diff
from policyengine.analysis.matrix import access_matrix
from policyengine.analysis.render import (
    diff_markdown,
    diff_text,
    matrix_csv,
    matrix_markdown,
    matrix_text,
)
from policyengine.analysis.sources import SourceError, summarize_source
from policyengine.analysis.summary import PolicySummary
from policyengine.errors import PolicyError

EXIT_WIDENS = 1
EXIT_USAGE = 2


def _summary(spec: str) -> PolicySummary:
    """The summary of DIR or REV:DIR, or exit 2 with why not."""
    try:
        return summarize_source(spec)
    except PolicyError as err:
        click.echo(f"{spec}: the policy set does not compile", err=True)
        click.echo(err.render(), err=True)
    except SourceError as err:
        click.echo(f"error: {err}", err=True)
    sys.exit(EXIT_USAGE)


@click.command("diff")
@click.argument("old")
@click.argument("new")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text",
    show_default=True,
)  # fmt: skip
@click.option("--fail-on-widen", is_flag=True, help="Exit 1 when any change widens access.")
def diff_command(old: str, new: str, fmt: str, fail_on_widen: bool) -> None:
    """What changed from OLD to NEW, route by route: access, limits, input, authn.

    OLD and NEW are directories or `REV:DIR` (read from git, no checkout). A change
    widens when some caller refused before is allowed after. Exit 0; with
    --fail-on-widen, 1 when a change widens; 2 when a set cannot be read or compiled.
    """
    changes = diff(_summary(old), _summary(new))
    if fmt == "json":
        click.echo(json.dumps({"changes": [c.to_json() for c in changes]}, indent=2))
    elif fmt == "markdown":
        click.echo(diff_markdown(changes), nl=False)
    else:
        click.echo(diff_text(changes))
    if fail_on_widen and any(c.widens for c in changes):
        sys.exit(EXIT_WIDENS)


@click.command("matrix")
@click.argument("directory")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json", "csv", "markdown"]), default="text",
    show_default=True,
)  # fmt: skip
def matrix_command(directory: str, fmt: str) -> None:
    """The access matrix: each route by each role, anyone, authenticated and scope.

    A cell is allow, conditional (a `when`, or a scope the token may lack, decides)
    or deny. DIRECTORY may be `REV:DIR`.
    """
    matrix = access_matrix(_summary(directory))
    if fmt == "json":
        click.echo(json.dumps(matrix.to_json(), indent=2))
    elif fmt == "csv":
        click.echo(matrix_csv(matrix), nl=False)
    elif fmt == "markdown":
        click.echo(matrix_markdown(matrix), nl=False)
    else:
        click.echo(matrix_text(matrix))
