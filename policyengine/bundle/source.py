"""Where `serve --bundle` gets bundles: a file, or an HTTP(S) URL asked with
If-None-Match. Only a verified bundle ever leaves here."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from policyengine.bundle.archive import Bundle, verify
from policyengine.bundle.manifest import MAX_BYTES, BundleError
from policyengine.bundle.signing import PublicKey

TIMEOUT = 10.0


def redacted(location: str) -> str:
    """A URL without credentials or query (a presigned URL's token), for logs."""
    parts = urlsplit(location)
    if parts.scheme not in ("http", "https"):
        return location
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"


class BundleSource:
    """One bundle location, polled; remembers the ETag and the bytes last verified."""

    def __init__(self, location: str, key: PublicKey) -> None:
        self.location = location
        self.key = key
        self.is_url = urlsplit(location).scheme in ("http", "https")
        self._etag: str | None = None
        self._digest: bytes | None = None

    def poll(self) -> Bundle | None:
        """A newly verified bundle, or None when nothing changed; raises BundleError."""
        fetched = self._fetch_url() if self.is_url else self._read_file()
        if fetched is None:
            return None
        data, etag = fetched
        digest = hashlib.sha256(data).digest()
        if digest == self._digest:
            return None
        bundle = verify(data, self.key)
        self._digest, self._etag = digest, etag  # only a verified bundle's ETag is sent back
        return bundle

    def _read_file(self) -> tuple[bytes, None]:
        try:
            with open(self.location, "rb") as file:
                data = file.read(MAX_BYTES + 1)
        except OSError as err:
            why = (err.strerror or str(err)).lower()
            raise BundleError(
                "bundle/fetch-failed", f"cannot read `{self.location}`: {why}"
            ) from None
        return _bounded(data), None

    def _fetch_url(self) -> tuple[bytes, str | None] | None:
        headers = {"User-Agent": "policyengine", "Accept": "application/gzip"}
        if self._etag is not None:
            headers["If-None-Match"] = self._etag
        request = urllib.request.Request(self.location, headers=headers)
        where = redacted(self.location)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                data = response.read(MAX_BYTES + 1)
                etag = response.headers.get("ETag")
        except urllib.error.HTTPError as err:
            if err.code == 304:
                return None
            raise BundleError("bundle/fetch-failed", f"GET {where}: HTTP {err.code}") from None
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            raise BundleError("bundle/fetch-failed", f"GET {where}: {reason}") from None
        return _bounded(data), etag


def _bounded(data: bytes) -> bytes:
    if len(data) > MAX_BYTES:
        raise BundleError("bundle/too-large", f"the bundle passes {MAX_BYTES // 2**20} MiB")
    return data


class Unpacked:
    """Verified bundles written out for the loader, one directory per revision; the
    directories of revisions no longer served are removed."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or Path(tempfile.mkdtemp(prefix="policyengine-bundle-"))
        self._count = 0

    def write(self, bundle: Bundle, keep: Path | None = None) -> Path:
        self._count += 1
        target = self.root / f"{self._count:06d}-{bundle.revision}"
        for old in self.root.iterdir():
            if old != keep:
                shutil.rmtree(old, ignore_errors=True)
        target.mkdir()
        bundle.write_to(target)
        return target

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
