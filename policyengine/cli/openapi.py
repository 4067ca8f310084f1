"""`import openapi` and `coverage`: a policy set from an OpenAPI spec, and the check that
the two have not drifted apart."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from policyengine.cli.extras import EXIT_USAGE, require_extra
from policyengine.compile import compile_policy_set
from policyengine.errors import PolicyError
from policyengine.loader import load_policy_set

EXTRA, MODULE = "openapi", "openapi_spec_validator"


@click.group("import")
def import_group() -> None:
    """Create a policy set from another description of an API."""


@import_group.command("openapi")
@click.argument("spec", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False),
    help="The directory to write the policy set to.",
)
@click.option("--force", is_flag=True, help="Overwrite files already in --out.")
def import_openapi(spec: str, out: str, force: bool) -> None:
    """Write a policy set with one route per operation of an OpenAPI 3.0/3.1 SPEC."""
    require_extra(EXTRA, MODULE)
    from policyengine.openapi import SpecError, emit, load_spec

    try:
        output = emit(load_spec(Path(spec)))
    except SpecError as err:
        click.echo(err.render(spec), err=True)
        sys.exit(EXIT_USAGE)
    root = Path(out)
    existing = [name for name in output.files if (root / name).exists()]
    if existing and not force:
        click.echo(f"error: {root / existing[0]} exists; pass --force to overwrite", err=True)
        sys.exit(EXIT_USAGE)
    for name, text in output.files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    for reason in output.skipped:
        click.echo(f"warning: no route for {reason}", err=True)
    click.echo(f"wrote {len(output.files)} file(s), {output.routes} routes to {root}")
    click.echo(f"next: fill in the TODOs, then `policyengine check {root}`")


@click.command("coverage")
@click.argument("directory", type=click.Path(exists=True))
@click.option(
    "--openapi",
    "spec",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="The OpenAPI 3.0/3.1 spec the policy set should cover.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def coverage_command(directory: str, spec: str, fmt: str) -> None:
    """Check that every operation of a spec reaches a route. Exit 1 when one does not."""
    require_extra(EXTRA, MODULE)
    from policyengine.openapi import SpecError, coverage, load_spec, operations

    try:
        ops = operations(load_spec(Path(spec)))
    except SpecError as err:
        click.echo(err.render(spec), err=True)
        sys.exit(EXIT_USAGE)
    try:
        compiled = compile_policy_set(load_policy_set(directory))
    except PolicyError as err:
        click.echo(err.render(), err=True)
        sys.exit(EXIT_USAGE)
    report = coverage(compiled.tree, ops)
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        covered = report.operations - len(report.uncovered)
        click.echo(f"{covered} of {report.operations} operations reach a route")
        click.echo("".join(f"uncovered: {label}\n" for label in report.uncovered), nl=False)
        click.echo(
            "".join(f"no operation: {label}\n" for label in report.unmatched_routes), nl=False
        )
    sys.exit(1 if report.uncovered else 0)
