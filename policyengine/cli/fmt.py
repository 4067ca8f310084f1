"""`policyengine fmt`: rewrite policy files in canonical form, or `--check` them."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from policyengine.errors import PolicyError
from policyengine.fmt import format_source
from policyengine.loader import display_name, policy_files
from policyengine.source import Source


@click.command("fmt")
@click.argument("directory", type=click.Path(exists=True))
@click.option("--check", is_flag=True, help="Change nothing; exit 1 if a file is not formatted.")
def fmt(directory: str, check: bool) -> None:
    """Format every `*.policy` below DIRECTORY (idempotent; comments are kept)."""
    root = Path(directory)
    unformatted: list[str] = []
    for path in policy_files(root):
        text = path.read_text(encoding="utf-8")
        try:
            formatted = format_source(Source(display_name(path, root), text))
        except PolicyError as err:
            click.echo(err.render(), err=True)
            sys.exit(2)
        if formatted == text:
            continue
        unformatted.append(str(path))
        if not check:
            path.write_text(formatted, encoding="utf-8")
    verb = "would reformat" if check else "reformatted"
    for name in unformatted:
        click.echo(f"{verb} {name}")
    if check and unformatted:
        sys.exit(1)
