"""`policyengine bundle build|verify`: signed policy bundles for `serve --bundle`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

EXIT_REFUSED = 1
EXIT_USAGE = 2


@click.group()
def bundle() -> None:
    """Build and verify signed policy bundles (`serve --bundle`)."""


@bundle.command("build")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
    help="The bundle to write (tar.gz).",
)  # fmt: skip
@click.option(
    "--sign", "key_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    metavar="KEY", help="Sign the manifest with this Ed25519 or P-256 (ES256) private key (PEM).",
)  # fmt: skip
@click.option("--revision", help="The revision to record; default: a hash of the files.")
@click.option("--no-check", is_flag=True, help="Bundle without compiling the policy first.")
def build_command(
    directory: Path, output: Path, key_file: Path | None, revision: str | None, no_check: bool
) -> None:
    """Bundle DIRECTORY: its files, a manifest of their sha256 and a revision."""
    from policyengine.bundle import BundleError, build
    from policyengine.bundle.signing import load_private_key

    if not no_check:
        _compiles(directory)
    try:
        key = load_private_key(key_file) if key_file is not None else None
        data, manifest = build(directory, key, revision)
    except BundleError as err:
        click.echo(err.render(), err=True)
        sys.exit(EXIT_USAGE)
    temporary = output.with_name(f".{output.name}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, output)  # a server polling the file never reads half of it
    signed = "signed" if key is not None else "unsigned: `serve --bundle` refuses it"
    click.echo(f"{output}: revision {manifest.revision}, {len(manifest.files)} files, {signed}")


@bundle.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--public-key", "key_file", required=True, metavar="KEY",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The Ed25519 or P-256 public key (PEM) the bundle must be signed with.",
)  # fmt: skip
def verify_command(file: Path, key_file: Path) -> None:
    """Check FILE's signature and every file's sha256. Exit 0 when it verifies, 1 if not."""
    from policyengine.bundle import BundleError, verify
    from policyengine.bundle.signing import load_public_key

    try:
        key = load_public_key(key_file)
    except BundleError as err:
        click.echo(err.render(), err=True)
        sys.exit(EXIT_USAGE)
    try:
        verified = verify(file.read_bytes(), key)
    except BundleError as err:
        click.echo(err.render(), err=True)
        sys.exit(EXIT_REFUSED)
    click.echo(f"{file}: revision {verified.revision}, {len(verified.files)} files, verified")


def _compiles(directory: Path) -> None:
    """A bundle of a policy that does not compile would only be refused by every server."""
    from policyengine import Engine, PolicyError

    try:
        Engine.load(directory)
    except PolicyError as err:
        click.echo(err.render(), err=True)
        sys.exit(EXIT_USAGE)
