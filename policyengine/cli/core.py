"""`check`, `eval` and `test`: the commands a policy author runs every day."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from policyengine.analysis.coverage import measure
from policyengine.analysis.coverage import render_text as render_coverage
from policyengine.compile import compile_policy_set
from policyengine.decision import Decision, Request, without_forwarded
from policyengine.engine import Engine, Explanation
from policyengine.errors import PolicyError
from policyengine.loader import load_policy_set, policy_files
from policyengine.testing import CaseFileError, FixedClock, load_case_file, run_cases

EXIT_DENIED = 1
EXIT_USAGE = 2


def _load_engine(directory: str, **kwargs: Any) -> Engine:
    """An Engine, or exit 2 with every policy error on stderr."""
    try:
        return Engine.load(directory, **kwargs)
    except PolicyError as err:
        click.echo(err.render(), err=True)
        sys.exit(EXIT_USAGE)


@click.command()
@click.argument("directory", type=click.Path(exists=True))
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
def check(directory: str, strict: bool) -> None:
    """Parse, compile and lint a policy set; print every problem with file:line:col."""
    try:
        compiled = compile_policy_set(load_policy_set(directory))
    except PolicyError as err:
        click.echo(err.render(), err=True)
        count = len(err.diagnostics)
        click.echo(f"{count} error{'s' if count != 1 else ''}", err=True)
        sys.exit(1)
    for warning in compiled.warnings:
        click.echo(warning.render(), err=True)
    if strict and compiled.warnings:
        click.echo(f"{len(compiled.warnings)} warning(s), failing under --strict", err=True)
        sys.exit(1)
    name = f" `{compiled.name}`" if compiled.name else ""
    files = len(policy_files(Path(directory)))
    click.echo(f"ok: policy{name}: {compiled.route_count} routes in {files} file(s)")


def _parse_headers(raw: tuple[str, ...]) -> list[tuple[str, str]]:
    """Each -H is one field line; a repeated name stays repeated, as on the wire."""
    headers: list[tuple[str, str]] = []
    for item in raw:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise click.BadParameter(f"`{item}` is not `Name: value`", param_hint="-H")
        headers.append((name.strip(), value.strip()))
    return headers


def _read_body(body: str | None) -> bytes | None:
    if body is None:
        return None
    if body.startswith("@"):
        try:
            return Path(body[1:]).read_bytes()
        except OSError as err:
            raise click.BadParameter(
                f"cannot read `{body[1:]}`: {err.strerror}", param_hint="--body"
            ) from None
    return body.encode("utf-8")


def _render_text(decision: Decision) -> str:
    lines = [f"{'ALLOW' if decision.allow else 'DENY'} {decision.status} {decision.reason.value}"]
    for label, value in (
        ("message", decision.message),
        ("route", decision.route),
        ("rule", decision.rule),
        ("subject", decision.subject),
    ):
        if value:
            lines.append(f"  {label}: {value}")
    if decision.roles:
        lines.append(f"  roles: {', '.join(decision.roles)}")
    for name, value in {**decision.upstream_headers, **decision.response_headers}.items():
        lines.append(f"  header {name}: {value}")
    lines.extend(f"  error {e.pointer or '/'}: {e.message}" for e in decision.errors)
    return "\n".join(lines)


@click.command("eval")
@click.argument("directory", type=click.Path(exists=True))
@click.argument("method")
@click.argument("path")
@click.option("-H", "--header", "headers", multiple=True, help="A header, `Name: value`.")
@click.option("--body", help="The request body: JSON text, or @file.")
@click.option("--client-ip", help="The client's IP address.")
@click.option("--host", help="The `Host` the request names (a `Host` field; with -H Host, two).")
@click.option(
    "--untrusted-peer",
    is_flag=True,
    help="The request comes straight from a client, not from a trusted proxy: the "
    "forwarded client-certificate headers (authn mtls) are dropped, as the sidecar does.",
)
@click.option("--explain", is_flag=True, help="Also print the trace of every step.")
@click.option(
    "--format", "fmt", type=click.Choice(["json", "text"]), default="json", show_default=True
)
def eval_command(
    directory: str,
    method: str,
    path: str,
    headers: tuple[str, ...],
    body: str | None,
    client_ip: str | None,
    host: str | None,
    untrusted_peer: bool,
    explain: bool,
    fmt: str,
) -> None:
    """Decide one request. Exit 0 when allowed, 1 when denied, 2 on usage or policy error."""
    header_map = _parse_headers(headers)
    if host is not None:
        header_map.insert(0, ("Host", host))
    if body is not None and not any(n.lower() == "content-type" for n, _ in header_map):
        header_map.append(("Content-Type", "application/json"))  # --body is JSON by default
    request = Request(method, path, header_map, _read_body(body), client_ip)
    engine = _load_engine(directory)
    if untrusted_peer:
        request = without_forwarded(request, engine.policy.inputs.forwarded)
    result: Explanation | Decision = engine.explain(request) if explain else engine.decide(request)
    decision = result.decision if isinstance(result, Explanation) else result
    if fmt == "json":
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        click.echo(_render_text(decision))
        if isinstance(result, Explanation):
            click.echo("trace:")
            click.echo("\n".join(f"  {line}" for line in result.trace))
    sys.exit(0 if decision.allow else EXIT_DENIED)


def _policy_dir_for(test_file: Path) -> Path:
    """A test file runs against the policy set of its own directory."""
    return test_file.parent


@click.command()
@click.argument("directory", type=click.Path(exists=True))
@click.option("-v", "--verbose", is_flag=True, help="Print every case, not just failures.")
@click.option(
    "--coverage", is_flag=True, help="List the rules no case exercised and the routes none reached."
)
@click.option(
    "--coverage-json", type=click.Path(dir_okay=False, writable=True),
    help="Also write the coverage as JSON to this file.",
)  # fmt: skip
def test(directory: str, verbose: bool, coverage: bool, coverage_json: str | None) -> None:
    """Run every `*_test.yaml` below DIRECTORY. Exit 1 on any failure."""
    started = time.perf_counter()
    files = sorted(Path(directory).rglob("*_test.yaml"))
    if not files:
        click.echo(f"no *_test.yaml files below {directory}", err=True)
        sys.exit(EXIT_USAGE)
    passed = failed = 0
    failures: list[str] = []
    decisions: dict[Path, list[Decision]] = {}  # by policy set, for --coverage
    for file in files:
        try:
            case_file = load_case_file(file)
        except CaseFileError as err:
            click.echo(f"ERROR {err}", err=True)
            sys.exit(EXIT_USAGE)
        clock = FixedClock()
        engine = _load_engine(str(_policy_dir_for(file)), clock=clock)
        results = run_cases(engine.decide, clock, case_file.cases)
        decisions.setdefault(_policy_dir_for(file), []).extend(r.decision for r in results)
        marks = "".join("." if r.passed else "F" for r in results)
        click.echo(f"{file} {marks}")
        for result in results:
            if result.passed:
                passed += 1
                if verbose:
                    click.echo(f"  PASSED {result.case.name}")
                continue
            failed += 1
            failures.append(
                f"FAILED {file}::{result.case.name}\n"
                + "\n".join(f"    {p}" for p in result.problems)
            )
    for failure in failures:
        click.echo(failure)
    elapsed = time.perf_counter() - started
    click.echo(f"{passed} passed, {failed} failed")
    click.echo(f"in {elapsed:.2f}s")
    if coverage or coverage_json:
        _report_coverage(decisions, coverage, coverage_json)
    sys.exit(1 if failed else 0)


def _report_coverage(
    decisions: dict[Path, list[Decision]], text: bool, json_path: str | None
) -> None:
    measured = [measure(directory, found) for directory, found in decisions.items()]
    if text:
        for item in measured:
            click.echo(render_coverage(item))
    if json_path:
        document = {"sets": [item.to_json() for item in measured]}
        Path(json_path).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
