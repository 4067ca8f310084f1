"""`policyengine import openapi`: specs written by others become policy sets `check` accepts,
whose decisions follow the spec's security, parameters and body schemas."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from policyengine import Engine, Request
from policyengine.compile import compile_policy_set
from policyengine.loader import load_policy_set
from policyengine.request import Identity

sys.path.insert(0, str(Path(__file__).parent))
from openapi_helpers import CLINIC, HYDRA, MUSEUM, PETSTORE, imported, run


@pytest.mark.parametrize("spec", [PETSTORE, MUSEUM, CLINIC, HYDRA], ids=lambda p: p.name)
def test_round_trip_import_check_coverage(spec: Path, tmp_path: Path) -> None:
    out = imported(spec, tmp_path / "out")
    code, stdout, stderr = run("check", out)
    assert code == 0, stderr
    assert run("fmt", "--check", out)[0] == 0  # written as `fmt` would write it
    code, stdout, _ = run("coverage", out, "--openapi", spec, "--format", "json")
    report = json.loads(stdout)
    assert report["unmatched_routes"] == []
    if spec is CLINIC:  # TRACE has no route method: reported, and coverage says so
        assert report["uncovered"] == ["TRACE /appointments/{appointmentId}"]
        assert code == 1
    else:
        assert report["uncovered"] == []
        assert code == 0


def test_one_route_per_operation_with_converted_paths(petstore: Path) -> None:
    compiled = compile_policy_set(load_policy_set(petstore))
    assert compiled.route_count == 19
    text = (petstore / "api.policy").read_text()
    assert "route GET /pet/{petId:int} {" in text
    assert "route GET /user/{username} {" in text


def _decide(engine: Engine, method: str, path: str, **kwargs: object) -> tuple[int, str]:
    decision = engine.decide(Request(method, path, **kwargs))  # type: ignore[arg-type]
    return decision.status, decision.reason.value


def _token(*scopes: str) -> Identity:
    return Identity("ann", authn="petstore_auth", scopes=frozenset(scopes))


JSON = {"Content-Type": "application/json"}


def test_petstore_security_becomes_authn_and_scopes(petstore: Path) -> None:
    engine = Engine.load(petstore)
    assert _decide(engine, "GET", "/store/order/7") == (200, "allow")  # no security: anyone
    assert _decide(engine, "GET", "/pet/7")[0] == 401  # api_key or petstore_auth
    both = _token("write:pets", "read:pets")
    pet = b'{"name": "rex", "photoUrls": []}'
    ok = {"headers": JSON, "body": pet}
    assert _decide(engine, "POST", "/pet", identity=both, **ok) == (200, "allow")
    assert _decide(engine, "POST", "/pet", identity=_token("read:pets"), **ok) == (
        403,
        "authz.insufficient_scope",
    )
    key = Identity("svc", authn="api_key")
    assert _decide(engine, "GET", "/pet/7", identity=key) == (200, "allow")
    # the API key block does not stand in for the OAuth2 one where the spec names only that
    assert _decide(engine, "POST", "/pet", identity=key, **ok)[0] == 403
    assert _decide(engine, "GET", "/pet/rex", identity=key)[1] == "route.unmatched"


def test_petstore_bodies_and_query_are_validated(petstore: Path) -> None:
    engine = Engine.load(petstore)
    both = _token("write:pets", "read:pets")
    no_name = {"headers": JSON, "body": b'{"photoUrls": []}'}
    assert _decide(engine, "POST", "/pet", identity=both, **no_name) == (400, "input.invalid")
    bad_status = "/pet/findByStatus?status=lost"
    assert _decide(engine, "GET", bad_status, identity=both) == (400, "input.invalid")
    assert _decide(engine, "GET", "/pet/findByStatus?status=sold", identity=both)[0] == 200
    xml = {"headers": {"Content-Type": "application/xml"}, "body": b"<pet/>"}
    assert _decide(engine, "POST", "/pet", identity=both, **xml)[1] == (
        "input.unsupported_media_type"
    )
    unknown = "/pet/findByStatus?status=sold&x=1"  # a closed query schema
    assert _decide(engine, "GET", unknown, identity=both) == (400, "input.invalid")


def test_clinic_conversions(clinic: Path) -> None:
    engine = Engine.load(clinic)
    oauth = Identity("ann", authn="oauth", scopes=frozenset({"appointments:write"}))
    booking = {"patient": {"name": "Ada", "phone": "+1"}, "start": "2030-01-01T09:00:00Z"}
    url = "/clinics/3/appointments"
    # `id` is readOnly, so not required in a request; `phone`'s unknown format is dropped
    kw = {"headers": JSON, "body": json.dumps(booking).encode()}
    assert _decide(engine, "POST", url, identity=oauth, **kw) == (200, "allow")
    nested = {**booking, "referral": {"previous": {"previous": {"from": 1}}}}  # recursive $defs
    kw = {"headers": JSON, "body": json.dumps(nested).encode()}
    assert _decide(engine, "POST", url, identity=oauth, **kw) == (400, "input.invalid")
    bearer = Identity("bo", authn="bearer")
    assert _decide(engine, "GET", url + "?from=2030-01-01&limit=99", identity=bearer)[0] == 200
    # int32 with exclusiveMaximum 100, and format date as a pattern
    assert _decide(engine, "GET", url + "?from=2030-01-01&limit=100", identity=bearer)[0] == 400
    assert _decide(engine, "GET", url + "?from=tomorrow", identity=bearer)[0] == 400
    # a parameter the language cannot describe leaves the schema open, not refusing it
    assert (
        _decide(engine, "GET", url + "?from=2030-01-01&filter[doctor]=x", identity=bearer)[0] == 200
    )
    # nullable (3.0) and a +json media type; `{}` among the requirements: anyone
    patch = {"headers": {"Content-Type": "application/merge-patch+json"}, "body": b'{"note": null}'}
    path = "/appointments/6b0e1e7c-7f39-4a43-9a5c-2d27d3c1c5a9"
    assert _decide(engine, "PATCH", path, **patch) == (200, "allow")
    # a segment `{name}.pdf` is one parameter; basic auth and AND-ed schemes grant nothing
    assert _decide(engine, "GET", "/files/a.pdf", identity=bearer)[1] == "authz.no_allow"


def test_api_key_in_the_query_is_a_real_key_and_a_known_parameter(clinic: Path) -> None:
    key = "pe_clinic-test-key-0123456789abcdef"
    entry = {"sha256": hashlib.sha256(key.encode()).hexdigest(), "subject": "legacy"}
    (clinic / "keys.yaml").write_text(yaml.safe_dump({"keys": [entry]}))
    engine = Engine.load(clinic)
    body = {"headers": JSON, "body": b'[{"name": "Dr. Who", "rating": 5}]'}
    assert _decide(engine, "PUT", f"/doctors?api_key={key}", **body) == (200, "allow")
    assert _decide(engine, "PUT", "/doctors?api_key=wrong", **body)[0] == 401
    bad = {"headers": JSON, "body": b'[{"name": "Dr. Who", "rating": 6}]'}
    assert _decide(engine, "PUT", f"/doctors?api_key={key}", **bad) == (400, "input.invalid")


def test_comments_say_what_is_left_to_decide(clinic: Path) -> None:
    text = (clinic / "api.policy").read_text()
    assert "# TODO: scheme `basic` has no authn kind here; it grants nothing" in text
    assert "# TODO: the spec wants `keys` and `bearer` together" in text
    assert "# TODO: TRACE /appointments/{appointmentId}: TRACE has no route method" in text
    assert "# TODO: header and cookie parameters are not checked: X-Request-Id" in text
    assert 'issuer "https://id.example.test"' in text  # from openIdConnectUrl
    doc = json.loads((clinic / "schemas" / "Booking.json").read_text())
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert sorted(doc["$defs"]) == ["Booking", "Patient", "Referral", "Status"]
    assert doc["$defs"]["Booking"]["properties"]["minutes"]["exclusiveMinimum"] == 5


def test_a_larger_real_api(tmp_path: Path) -> None:
    """Ory Hydra (52 operations): open admin endpoints stay open as the spec says, and the
    header says how many; bearer and OAuth2 routes need an identity; form bodies pass."""
    out = imported(HYDRA, tmp_path / "hydra")
    text = (out / "api.policy").read_text()
    assert "# TODO: 46 of 52 operations name no security requirement" in text
    engine = Engine.load(out)
    assert _decide(engine, "GET", "/admin/clients?page_size=50") == (200, "allow")
    assert _decide(engine, "GET", "/admin/clients?page_size=0") == (400, "input.invalid")
    assert _decide(engine, "GET", "/userinfo") == (401, "authn.missing")
    user = Identity("ann", authn="oauth2")
    assert _decide(engine, "GET", "/userinfo", identity=user) == (200, "allow")
    client = b'{"client_name": "app", "redirect_uris": ["https://app.example.test/cb"]}'
    kw = {"headers": JSON, "body": client}
    assert _decide(engine, "POST", "/admin/clients", **kw) == (200, "allow")
    kw = {"headers": JSON, "body": b'{"client_name": 7}'}
    assert _decide(engine, "POST", "/admin/clients", **kw) == (400, "input.invalid")


def _spec(tmp_path: Path, doc: dict[str, object], name: str = "s.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


MINIMAL = {"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {}}


@pytest.mark.parametrize(
    ("doc", "code"),
    [
        ({"swagger": "2.0", "info": {}}, "openapi/version"),
        ({**MINIMAL, "openapi": "4.0.0"}, "openapi/version"),
        ({"openapi": "3.0.3", "paths": {}}, "openapi/invalid"),
        (
            {**MINIMAL, "paths": {"/a": {"$ref": "https://example.test/other.yaml#/a"}}},
            "openapi/external-ref",
        ),
    ],
)
def test_bad_specs_are_named_errors(tmp_path: Path, doc: dict[str, object], code: str) -> None:
    exit_code, _, stderr = run("import", "openapi", _spec(tmp_path, doc), "--out", tmp_path / "o")
    assert exit_code == 2
    assert f"error[{code}]" in stderr
    assert not (tmp_path / "o").exists()


def test_unparsable_spec(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("openapi: [3.1\n")
    code, _, stderr = run("import", "openapi", path, "--out", tmp_path / "o")
    assert code == 2
    assert "error[openapi/unparsable]" in stderr


def test_existing_files_need_force(tmp_path: Path) -> None:
    out = imported(PETSTORE, tmp_path / "o")
    (out / "api.policy").write_text("# mine\n")
    code, _, stderr = run("import", "openapi", PETSTORE, "--out", out)
    assert code == 2
    assert "--force" in stderr
    assert (out / "api.policy").read_text() == "# mine\n"
    code, _, _ = run("import", "openapi", PETSTORE, "--out", out, "--force")
    assert code == 0
    assert "route PUT /pet {" in (out / "api.policy").read_text()


def test_missing_extra_names_it(tmp_path: Path) -> None:
    script = (
        "import sys; sys.modules['openapi_spec_validator'] = None\n"
        "from policyengine.cli import main\n"
        f"main(['import', 'openapi', {str(PETSTORE)!r}, '--out', {str(tmp_path / 'o')!r}])"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "pip install 'policyengine[openapi]'" in proc.stderr
