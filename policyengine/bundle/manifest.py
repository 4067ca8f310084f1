"""What a bundle holds: the files of a policy directory, each with its sha256, and a
revision. The manifest is the signed document; the files are checked against it."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

FORMAT = "policyengine-bundle/1"
MAX_FILES = 10_000
MAX_BYTES = 64 * 1024 * 1024  # the whole bundle, unpacked
_REVISION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}")


class BundleError(Exception):
    """A bundle that cannot be built or trusted; `code` names why (bundle/...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def render(self) -> str:
        return f"error[{self.code}]: {self.message}"


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: str  # relative, POSIX separators, no `..`
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class Manifest:
    revision: str
    files: tuple[FileEntry, ...]  # sorted by path

    def to_bytes(self) -> bytes:
        """The canonical form: what is signed, byte for byte."""
        document = {
            "format": FORMAT,
            "revision": self.revision,
            "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in self.files],
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def parse(cls, data: bytes) -> Manifest:
        try:
            document = json.loads(data)
            if document.get("format") != FORMAT or set(document) != {"format", "revision", "files"}:
                raise ValueError
            files = tuple(
                FileEntry(safe_path(str(f["path"])), str(f["sha256"]), int(f["size"]))
                for f in document["files"]
            )
            revision = check_revision(str(document["revision"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise BundleError(
                "bundle/bad-manifest", "manifest.json is not a bundle manifest"
            ) from None
        return cls(revision, files)


def check_revision(revision: str) -> str:
    if not _REVISION.fullmatch(revision):
        raise BundleError(
            "bundle/bad-revision",
            f"`{revision[:40]}` is not a revision: letters, digits and `._:+-`, at most 128",
        )
    return revision


def safe_path(name: str) -> str:
    """A member name that stays inside the directory it is written to."""
    path = PurePosixPath(name)
    if (
        not name
        or "\\" in name
        or "\x00" in name
        or path.is_absolute()
        or any(part in ("", ".", "..") for part in name.split("/"))
    ):
        raise BundleError("bundle/unsafe-path", f"`{name[:80]}` is not a safe relative path")
    return name


def manifest_of(files: dict[str, bytes], revision: str | None = None) -> Manifest:
    """The manifest of these files; the revision defaults to a hash of their hashes."""
    entries = tuple(
        FileEntry(path, hashlib.sha256(data).hexdigest(), len(data))
        for path, data in sorted(files.items())
    )
    if revision is None:  # every file counts: keys and schemas change decisions too
        listing = "".join(f"{e.path}\0{e.sha256}\n" for e in entries).encode()
        revision = "sha256-" + hashlib.sha256(listing).hexdigest()[:16]
    return Manifest(check_revision(revision), entries)
