"""`policyengine lsp`: the language server, for editors (docs/editors.md)."""

from __future__ import annotations

import click

from policyengine.cli.extras import require_extra


@click.command("lsp")
def lsp() -> None:
    """Run the language server over stdio (diagnostics, hover, definitions, completion, fmt)."""
    require_extra("lsp", "pygls")
    from policyengine.lsp.server import main

    main()
