"""`policyengine schema export`: what client teams reuse is what the engine validates with."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import jsonschema_rs
import pytest
from click.testing import CliRunner

from policyengine import Engine, Request
from policyengine.cli import main

POLICY = """
schema Stop { lat: number -90..90; lon: number -180..180 }
schema Trip {
    name: string len 1..40
    stops: [Stop] len 1..
    kind: "bus" | "rail"
    ...
}
schema Upload file "upload.json"
schema Batch { uploads: [Upload] }
route POST /trips {
    allow anyone
    body Trip
    query { dry?: bool; tag?: [string] }
}
route POST /uploads { allow anyone; body Batch }
"""
UPLOAD = {
    "type": "object",
    "properties": {"size": {"$ref": "#/$defs/Size"}},
    "$defs": {"Size": {"type": "integer", "minimum": 0}},
}


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    (tmp_path / "api.policy").write_text(POLICY)
    (tmp_path / "upload.json").write_text(json.dumps(UPLOAD))
    return tmp_path


def export(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["schema", "export", *args])
    return result.exit_code, result.stdout, result.stderr


def test_export_prints_a_standalone_draft_2020_12_schema(policy_dir: Path) -> None:
    code, out, _ = export(str(policy_dir), "Trip")
    assert code == 0
    document = json.loads(out)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert list(document["$defs"]) == ["Stop"]
    jsonschema.Draft202012Validator.check_schema(document)
    trip = {"name": "x", "stops": [{"lat": 91, "lon": 0}], "kind": "bus"}
    assert [e.message for e in jsonschema.Draft202012Validator(document).iter_errors(trip)] == [
        "91 is greater than the maximum of 90"
    ]


def test_exported_schema_is_the_one_the_engine_runs(policy_dir: Path) -> None:
    engine = Engine.load(policy_dir)
    code, out, _ = export(str(policy_dir), "Batch")
    assert code == 0
    document = json.loads(out)
    assert document == engine.policy.schemas["Batch"].json_schema
    validator = jsonschema_rs.validator_for(document)
    for batch in ({"uploads": [{"size": 3}]}, {"uploads": [{"size": -1}]}, {"uploads": {}}):
        decision = engine.decide(Request("POST", "/uploads", {}, batch))
        assert decision.allow == validator.is_valid(batch)


def test_export_a_file_schema(policy_dir: Path) -> None:
    code, out, _ = export(str(policy_dir), "Upload")
    assert code == 0
    assert json.loads(out) == {"$schema": "https://json-schema.org/draft/2020-12/schema", **UPLOAD}


def test_export_a_route_query_schema(policy_dir: Path) -> None:
    code, out, _ = export(str(policy_dir), "--query", "POST /trips?x=1")
    assert code == 0
    document = json.loads(out)
    assert document["properties"] == {
        "dry": {"type": "boolean"},
        "tag": {"type": "array", "items": {"type": "string"}},
    }
    assert document["additionalProperties"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Nope"], "unknown schema `Nope` (schemas: `Batch`, `Stop`, `Trip`, `Upload`)"),
        ([], "give a schema NAME or --query"),
        (["Trip", "--query", "POST /trips"], "give a schema NAME or --query"),
        (["--query", "POST /nowhere"], "no route matches `POST /nowhere`"),
        (["--query", "POST /uploads"], "route `POST /uploads` has no query schema"),
        (["--query", "POST /a/%2f/b"], "bad path"),
    ],
)
def test_export_usage_errors(policy_dir: Path, args: list[str], message: str) -> None:
    code, out, err = export(str(policy_dir), *args)
    assert (code, out) == (2, "")
    assert message in err


def test_export_reports_policy_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.policy").write_text("schema S { a: int 3..1 }\n")
    code, _, err = export(str(tmp_path), "S")
    assert code == 2
    assert "compile/empty-range" in err


def test_validators_are_built_at_compile_time_only(
    policy_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = Engine.load(policy_dir)

    def no_compiling(*args: object, **kwargs: object) -> None:
        raise AssertionError("a validator was compiled while deciding")

    monkeypatch.setattr(jsonschema_rs, "validator_for", no_compiling)
    body = {"name": "x", "stops": [{"lat": 1, "lon": 2}], "kind": "rail"}
    assert engine.decide(Request("POST", "/trips?dry=true", {}, body)).allow
    assert engine.decide(Request("POST", "/trips?dry=9", {}, body)).status == 400
    assert (
        engine.decide(Request("POST", "/uploads", {}, {"uploads": [{"size": "1"}]})).status == 400
    )
