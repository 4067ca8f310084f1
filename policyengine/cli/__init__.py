"""The `policyengine` command line: thin click commands over Engine."""

from __future__ import annotations

import click

from policyengine.cli.analysis import diff_command, matrix_command
from policyengine.cli.bundle import bundle
from policyengine.cli.core import check, eval_command, test
from policyengine.cli.fmt import fmt
from policyengine.cli.keys import keys
from policyengine.cli.lsp import lsp
from policyengine.cli.openapi import coverage_command, import_group
from policyengine.cli.schema import schema
from policyengine.cli.serve import serve


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="policyengine")
def main() -> None:
    """A declarative policy engine for API gateways."""


main.add_command(check)
main.add_command(eval_command)
main.add_command(test)
main.add_command(fmt)
main.add_command(keys)
main.add_command(schema)
main.add_command(serve)
main.add_command(import_group)
main.add_command(coverage_command)
main.add_command(lsp)
main.add_command(diff_command)
main.add_command(matrix_command)
main.add_command(bundle)
