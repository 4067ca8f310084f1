"""`policyengine keys add|hash`: make API keys without ever writing one to disk.

`add` prints the keys-file entry on stdout (so `>> keys.yaml` appends it under a
trailing `keys:` list) and the key itself once, on stderr, for the operator to hand
over. `hash` reads a key from stdin, never from the command line (where it would
land in shell history and `ps`), and prints its sha256.
"""

from __future__ import annotations

import secrets
import sys

import click
import yaml

from policyengine.authn.api_key import expiry, key_hash

KEY_PREFIX = "pe_"  # lets secret scanners recognise a leaked key
KEY_BYTES = 32


@click.group()
def keys() -> None:
    """Create API keys and hash them for a keys file."""


@keys.command()
@click.option("--subject", required=True, help="Who the key identifies, e.g. `svc-billing`.")
@click.option("--role", "roles", multiple=True, help="A role the key holds; repeatable.")
@click.option("--expires", help="Date or ISO 8601 date-time with a time zone.")
def add(subject: str, roles: tuple[str, ...], expires: str | None) -> None:
    """Generate a key; print its keys-file entry (stdout) and the key, once (stderr)."""
    if not subject.strip():
        raise click.BadParameter("must not be empty", param_hint="--subject")
    if expires is not None and expiry(expires) is False:
        raise click.BadParameter(
            "expected a date (2026-01-31) or a date-time with a time zone", param_hint="--expires"
        )
    key = KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)
    entry: dict[str, object] = {"sha256": key_hash(key), "subject": subject, "roles": list(roles)}
    if expires is not None:
        entry["expires"] = expires
    click.echo(_indented(yaml.safe_dump([entry], sort_keys=False, default_flow_style=None)))
    click.echo(f"API key for {subject} (shown once, stored nowhere): {key}", err=True)


@keys.command("hash")
def hash_command() -> None:
    """Read a key from stdin (or a hidden prompt) and print its sha256."""
    if sys.stdin.isatty():
        key = click.prompt("API key", hide_input=True)
    else:
        key = sys.stdin.readline().rstrip("\r\n")
    if not key:
        raise click.UsageError("no key given on stdin")
    click.echo(key_hash(key))


def _indented(text: str) -> str:
    """The entry as it sits under `keys:` in a keys file."""
    return "\n".join("  " + line for line in text.rstrip("\n").splitlines())
