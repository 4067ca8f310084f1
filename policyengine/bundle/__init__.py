"""Signed policy bundles for fleets: a tar.gz of a policy directory with a manifest of
file hashes, a revision, and a detached Ed25519 or ES256 signature over the manifest.

`archive.build` makes one, `archive.verify` checks one and returns its files, and
`source.BundleSource` fetches one (a file, or HTTP with ETag) for `serve --bundle`.
"""

from policyengine.bundle.archive import Bundle, build, verify
from policyengine.bundle.manifest import BundleError

__all__ = ["Bundle", "BundleError", "build", "verify"]
