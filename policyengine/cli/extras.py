"""Optional extras: a command that needs one says which to install, instead of a traceback."""

from __future__ import annotations

import importlib

import click

EXIT_USAGE = 2


class MissingExtra(click.ClickException):
    exit_code = EXIT_USAGE


def require_extra(extra: str, module: str) -> None:
    """Import `module` or fail with the pip command that installs `extra`."""
    try:
        importlib.import_module(module)
    except ImportError:
        raise MissingExtra(
            f"this command needs the `{extra}` extra: pip install 'policyengine[{extra}]'"
        ) from None
