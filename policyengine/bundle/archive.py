"""Build and verify bundles: `manifest.json`, `manifest.sig`, and `policy/<path>` files
in a gzipped tar, written reproducibly (sorted, no times, no owners).

Verification never extracts with tarfile: members are read into memory one by one,
regular files only, names checked, sizes bounded; every file must be in the signed
manifest with its sha256, and nothing else may be there.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

from policyengine.bundle.manifest import (
    MAX_BYTES,
    MAX_FILES,
    BundleError,
    Manifest,
    manifest_of,
    safe_path,
)
from policyengine.bundle.signing import PrivateKey, PublicKey, sign, verified
from policyengine.files import visible_files

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
PREFIX = "policy/"


@dataclass(frozen=True, slots=True)
class Bundle:
    manifest: Manifest
    files: dict[str, bytes]  # path below the policy directory -> content

    @property
    def revision(self) -> str:
        return self.manifest.revision

    def write_to(self, directory: Path) -> None:
        """The policy directory, as it was built (paths already checked safe)."""
        for path, data in self.files.items():
            target = directory / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)


def build(
    directory: Path, key: PrivateKey | None = None, revision: str | None = None
) -> tuple[bytes, Manifest]:
    """The bundle of a policy directory (tar.gz bytes) and its manifest."""
    files: dict[str, bytes] = {}
    paths = visible_files(directory)
    if len(paths) > MAX_FILES:
        raise BundleError("bundle/too-large", f"more than {MAX_FILES} files below `{directory}`")
    for path in paths:
        relative = path.relative_to(directory).as_posix()
        files[safe_path(relative)] = path.read_bytes()
    if not files:
        raise BundleError("bundle/empty", f"no files below `{directory}`")
    if sum(len(data) for data in files.values()) > MAX_BYTES:
        raise BundleError("bundle/too-large", f"the files pass {MAX_BYTES // 2**20} MiB")
    manifest = manifest_of(files, revision)
    members = [(MANIFEST, manifest.to_bytes())]
    if key is not None:
        members.append((SIGNATURE, sign(key, manifest.to_bytes())))
    members += [(PREFIX + path, data) for path, data in sorted(files.items())]
    return _tar_gz(members), manifest


def _tar_gz(members: list[tuple[str, bytes]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def verify(data: bytes, key: PublicKey) -> Bundle:
    """The bundle's files, or BundleError: unsigned, badly signed, or tampered with."""
    members = _members(data)
    manifest_bytes = members.pop(MANIFEST, None)
    if manifest_bytes is None:
        raise BundleError("bundle/bad-manifest", "the bundle has no manifest.json")
    signature = members.pop(SIGNATURE, None)
    if signature is None:
        raise BundleError("bundle/unsigned", "the bundle is not signed (manifest.sig)")
    if not verified(key, manifest_bytes, signature):
        raise BundleError("bundle/bad-signature", "the manifest's signature does not verify")
    manifest = Manifest.parse(manifest_bytes)
    files: dict[str, bytes] = {}
    for entry in manifest.files:
        data_of = members.pop(PREFIX + entry.path, None)
        if data_of is None:
            raise BundleError("bundle/missing-file", f"`{entry.path}` is in the manifest only")
        if len(data_of) != entry.size or hashlib.sha256(data_of).hexdigest() != entry.sha256:
            raise BundleError("bundle/tampered", f"`{entry.path}` does not match its sha256")
        files[entry.path] = data_of
    if members:
        extra = sorted(members)[0]
        raise BundleError("bundle/extra-file", f"`{extra[:80]}` is not in the manifest")
    return Bundle(manifest, files)


def _members(data: bytes) -> dict[str, bytes]:
    try:
        raw = gzip.decompress(data) if len(data) < MAX_BYTES else None
    except (OSError, EOFError, gzip.BadGzipFile):
        raw = None
    if raw is None or len(raw) > MAX_BYTES + 1024 * 1024:
        raise BundleError("bundle/not-a-bundle", "not a gzipped tar of bounded size")
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            for info in tar:
                if not info.isreg():
                    raise BundleError("bundle/unsafe-path", f"`{info.name[:80]}` is not a file")
                name = safe_path(info.name)
                if name in members or len(members) >= MAX_FILES + 2:
                    raise BundleError("bundle/not-a-bundle", f"`{name[:80]}` is there twice")
                source = tar.extractfile(info)
                assert source is not None  # a regular file always has a body
                members[name] = source.read()
    except tarfile.TarError:
        raise BundleError("bundle/not-a-bundle", "not a gzipped tar of bounded size") from None
    return members
