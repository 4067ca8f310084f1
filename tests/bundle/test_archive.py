"""`policyengine bundle build|verify`: signed manifests, tampering refused."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest
from bundle_support import write_keys, write_policy
from click.testing import CliRunner

from policyengine.bundle import BundleError, build, verify
from policyengine.bundle.signing import load_private_key, load_public_key
from policyengine.cli import main


def members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar}  # type: ignore[union-attr]


def repack(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue())


@pytest.mark.parametrize("kind", ["ed25519", "es256"])
def test_build_sign_verify(tmp_path: Path, kind: str) -> None:
    policy = write_policy(tmp_path / "p")
    key, pub = write_keys(tmp_path, kind)
    data, manifest = build(policy, load_private_key(key))
    assert set(members(data)) == {
        "manifest.json", "manifest.sig", "policy/fleet.policy", "policy/schemas/note.txt",
    }  # fmt: skip
    assert manifest.revision.startswith("sha256-")
    bundle = verify(data, load_public_key(pub))
    assert bundle.revision == manifest.revision
    assert bundle.files["fleet.policy"] == (policy / "fleet.policy").read_bytes()
    again, _ = build(policy, load_private_key(key))
    if kind == "ed25519":  # deterministic signatures: the same bytes twice
        assert again == data
    assert build(policy, None, "git-1a2b3c")[1].revision == "git-1a2b3c"


def test_refusals_are_named(tmp_path: Path) -> None:
    policy = write_policy(tmp_path / "p")
    key, pub = write_keys(tmp_path)
    _, other = write_keys(tmp_path, name="other")
    public = load_public_key(pub)
    signed, _ = build(policy, load_private_key(key))
    unsigned, _ = build(policy, None)

    def code(data: bytes, key_to_use: object = public) -> str:
        with pytest.raises(BundleError) as caught:
            verify(data, key_to_use)  # type: ignore[arg-type]
        return caught.value.code

    assert code(unsigned) == "bundle/unsigned"
    assert code(signed, load_public_key(other)) == "bundle/bad-signature"
    files = members(signed)
    tampered = {**files, "policy/fleet.policy": files["policy/fleet.policy"] + b"\n# more\n"}
    assert code(repack(tampered)) == "bundle/tampered"
    assert code(repack({**files, "policy/extra.policy": b"x"})) == "bundle/extra-file"
    assert code(repack({k: v for k, v in files.items() if k != "policy/schemas/note.txt"})) == (
        "bundle/missing-file"
    )
    manifest = json.loads(files["manifest.json"])
    manifest["revision"] = "forged"
    forged = {**files, "manifest.json": json.dumps(manifest).encode()}
    assert code(repack(forged)) == "bundle/bad-signature"
    assert code(repack({**files, "../escape": b"x"})) == "bundle/unsafe-path"
    assert code(b"not a bundle") == "bundle/not-a-bundle"
    with pytest.raises(BundleError, match="P-256"):
        load_private_key(write_keys(tmp_path, "p384", name="p384")[0])


def test_cli_build_and_verify(tmp_path: Path) -> None:
    policy = write_policy(tmp_path / "p")
    key, pub = write_keys(tmp_path)
    out = tmp_path / "fleet.tar.gz"
    runner = CliRunner()
    built = runner.invoke(
        main,
        ["bundle", "build", str(policy), "-o", str(out), "--sign", str(key), "--revision", "r1"],
    )
    assert built.exit_code == 0, built.output
    assert "revision r1, 2 files, signed" in built.output
    verified = runner.invoke(main, ["bundle", "verify", str(out), "--public-key", str(pub)])
    assert verified.exit_code == 0 and "revision r1" in verified.output
    _, other = write_keys(tmp_path, name="other")
    refused = runner.invoke(main, ["bundle", "verify", str(out), "--public-key", str(other)])
    assert refused.exit_code == 1 and "bundle/bad-signature" in refused.output
    broken = write_policy(tmp_path / "broken", "route GET /x { allow role nobody }\n")
    failed = runner.invoke(main, ["bundle", "build", str(broken), "-o", str(tmp_path / "b.tgz")])
    assert failed.exit_code == 2 and "fleet.policy:1:" in failed.output
