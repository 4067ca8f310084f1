"""Policy tests (`*_test.yaml`): load cases strictly, run them through an Engine, compare.

A test file is a list of cases, or a mapping with `cases:` (and, in the project's own
corpus, `policy:` text). Each case names what it checks and what it expects; unknown
keys and cases with no expectation are errors, so a typo never passes silently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from policyengine.decision import Decision
from policyengine.request import Identity, Request
from policyengine.syntax.core import duration_seconds
from policyengine.yamldata import load_yaml

CASE_KEYS = {"name", "request", "identity", "expect", "advance"}
REQUEST_KEYS = {"method", "path", "headers", "body", "client_ip"}
IDENTITY_KEYS = {"subject", "roles", "claims", "authn", "scopes"}
EXPECT_KEYS = {
    "allow", "status", "reason", "subject", "roles", "route", "rule", "message",
    "upstream_headers", "response_headers", "errors",
}  # fmt: skip
FILE_KEYS = {"policy", "files", "cases", "description"}
TEST_START = 1_800_000_000.0  # the clock policy tests run on, advanced by `advance:`


class CaseFileError(ValueError):
    """A test file that does not say clearly what it checks."""


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    request: Request
    expect: Mapping[str, Any]
    advance: float = 0.0  # seconds to move the clock before this case
    file: str = ""


@dataclass(frozen=True, slots=True)
class CaseFile:
    path: Path
    cases: tuple[Case, ...]
    policy: str | None = None  # inline policy text (corpus files)
    files: Mapping[str, str] = field(default_factory=dict)  # extra files beside the policy


@dataclass(frozen=True, slots=True)
class CaseResult:
    case: Case
    decision: Decision
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return not self.problems


def _check_keys(where: str, value: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CaseFileError(f"{where}: expected a mapping")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise CaseFileError(
            f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})"
        )
    return value


def load_case_file(path: Path) -> CaseFile:
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise CaseFileError(f"{path}: {err}") from None
    policy = None
    files: dict[str, str] = {}
    if isinstance(data, dict):
        data = _check_keys(str(path), data, FILE_KEYS)
        policy = data.get("policy")
        files = data.get("files") or {}
        data = data.get("cases")
    if not isinstance(data, list) or not data:
        raise CaseFileError(f"{path}: expected a non-empty list of cases")
    cases = tuple(_load_case(f"{path}: case {i + 1}", raw, str(path)) for i, raw in enumerate(data))
    names = [c.name for c in cases]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise CaseFileError(f"{path}: case names repeat: {', '.join(duplicates)}")
    return CaseFile(path, cases, policy, files)


def _load_case(where: str, raw: Any, file: str) -> Case:
    raw = _check_keys(where, raw, CASE_KEYS)
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise CaseFileError(f"{where}: every case needs a `name`")
    where = f"{where} ({name})"
    expect = _check_keys(f"{where}: expect", raw.get("expect"), EXPECT_KEYS)
    if not expect:
        raise CaseFileError(f"{where}: `expect` is empty")
    request = _request(where, raw.get("request"), raw.get("identity"))
    advance = raw.get("advance", 0)
    seconds = duration_seconds(advance) if isinstance(advance, str) else float(advance)
    return Case(name, request, expect, seconds, file)


def _request(where: str, raw: Any, identity_raw: Any) -> Request:
    raw = _check_keys(f"{where}: request", raw, REQUEST_KEYS)
    if "method" not in raw or "path" not in raw:
        raise CaseFileError(f"{where}: request needs `method` and `path`")
    headers = raw.get("headers") or {}
    if not isinstance(headers, dict):
        raise CaseFileError(f"{where}: headers must be a mapping")
    body = raw.get("body")  # a YAML structure is a parsed JSON body; a string is sent raw
    identity = None
    if identity_raw is not None:
        ident = _check_keys(f"{where}: identity", identity_raw, IDENTITY_KEYS)
        identity = Identity(
            str(ident.get("subject", "")),
            frozenset(ident.get("roles") or ()),
            ident.get("claims") or {},
            ident.get("authn", "test"),
            scopes=frozenset(ident.get("scopes") or ()),
        )
    return Request(
        str(raw["method"]),
        str(raw["path"]),
        {str(k): str(v) for k, v in headers.items()},
        body,
        raw.get("client_ip"),
        identity,
    )


def compare(expect: Mapping[str, Any], decision: Decision) -> tuple[str, ...]:
    """Every difference between what a case expects and what was decided."""
    actual = decision.to_dict()
    problems = []
    for key, wanted in expect.items():
        got = actual.get(key)
        if key in ("upstream_headers", "response_headers"):
            got_lower = {k.lower(): v for k, v in (got or {}).items()}
            for name, value in (wanted or {}).items():
                if got_lower.get(name.lower()) != value:
                    problems.append(
                        f"{key} {name}: expected {value!r}, got {got_lower.get(name.lower())!r}"
                    )
        elif key == "errors":
            pointers = [e["pointer"] for e in got or []]
            if sorted(wanted or []) != sorted(pointers):
                problems.append(f"errors: expected pointers {wanted}, got {pointers}")
        elif key == "roles":
            if sorted(wanted or []) != sorted(got or []):
                problems.append(f"roles: expected {wanted}, got {got}")
        elif key == "message":
            if str(wanted) not in str(got):
                problems.append(f"message: expected to contain {wanted!r}, got {got!r}")
        elif got != wanted:
            problems.append(f"{key}: expected {wanted!r}, got {got!r}")
    return tuple(problems)


class FixedClock:
    """The clock policy tests run on: fixed, moved only by `advance:`."""

    def __init__(self, start: float = TEST_START) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def write_policy_dir(case_file: CaseFile, directory: Path) -> Path:
    """Lay out a corpus file's inline policy and its files, to load it like a real set."""
    if case_file.policy is None:
        raise CaseFileError(f"{case_file.path}: no `policy:` to write")
    (directory / "policy.policy").write_text(case_file.policy, encoding="utf-8")
    for name, text in case_file.files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def run_cases(
    decide: Callable[[Request], Decision], clock: FixedClock, cases: tuple[Case, ...]
) -> list[CaseResult]:
    results = []
    for case in cases:
        clock.now += case.advance
        decision = decide(case.request)
        results.append(CaseResult(case, decision, compare(case.expect, decision)))
    return results
