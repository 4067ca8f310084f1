"""The compiler: an ordered list of named passes from PolicySet to CompiledPolicy.

Each pass does one check or one transformation and reports into the shared
diagnostics; later passes rely on earlier ones. Checking passes all run, so one
`check` reports every error; the tree is built only when none was found.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from policyengine import ast
from policyengine.authn import BUILDERS, AuthnBuildContext
from policyengine.compile.build_tree import build_tree
from policyengine.compile.hosts import check_hosts
from policyengine.compile.inputs import collect_inputs
from policyengine.compile.lints import (
    lint_public_in_protected,
    lint_request_data,
    lint_shadowed_routes,
    lint_unsatisfiable_rules,
    lint_unused_declarations,
)
from policyengine.compile.passes import (
    check_group_prefixes,
    check_route_rules,
    collect_declarations,
    detect_conflicts,
    parse_paths,
    resolve_names,
    resolve_role_hierarchy,
)
from policyengine.compile.rules import compile_routes
from policyengine.compile.state import CompileState
from policyengine.decision import DecisionInputs
from policyengine.errors import Diagnostic, PolicyError, one_of
from policyengine.gcpause import collector_paused
from policyengine.hardening import Hardening
from policyengine.hosts import HostSet
from policyengine.ratelimit.bans import BanSpec
from policyengine.ratelimit.plan import LimitSpec
from policyengine.schema import CompiledSchema, compile_schemas
from policyengine.tree import DecisionTree


@dataclass(frozen=True, slots=True)
class Pass:
    name: str
    run: Callable[[CompileState], None]


def build_authenticators(state: CompileState) -> None:
    for name, declared in state.authn_blocks.items():
        block = declared.node
        assert isinstance(block, ast.AuthnBlock)
        builder = BUILDERS.get(block.kind.value)
        if builder is None:
            state.diags.error(
                "compile/unknown-authn-kind",
                f"unknown authn kind `{block.kind.value}`",
                block.kind.span,
                f"kinds are {one_of(BUILDERS)}",
            )
            continue
        context = AuthnBuildContext(
            Path(declared.file.path).parent, state.diags, frozenset(state.roles)
        )
        if state.environ is not None:
            context.environ = state.environ
        authenticator = builder(block, context)
        if authenticator is not None:
            state.authenticators[name] = authenticator


def build_schemas(state: CompileState) -> None:
    declared = {
        name: (d.node, Path(d.file.path).parent)
        for name, d in state.schemas.items()
        if isinstance(d.node, ast.SchemaDecl)
    }
    state.compiled_schemas.update(compile_schemas(declared, state.diags))


def compile_limits(state: CompileState) -> None:
    for name, decl in state.limits.items():
        if decl.burst is not None and decl.burst < 1:
            state.diags.error("compile/bad-limit", "burst must be at least 1", decl.span)
        keys = decl.by or (ast.LimitKey(ast.LimitKeyKind.SUBJECT, None, decl.span),)
        state.compiled_limits[name] = LimitSpec(
            name=name,
            count=decl.count,
            period=decl.period_seconds,
            burst=decl.burst,
            keys=tuple((k.kind.value, k.arg) for k in keys),
            site=decl.span.short(),
        )


# read before any credential is: a ban cannot be keyed by who the caller is
_BAN_KEYS = (ast.LimitKeyKind.CLIENT_IP, ast.LimitKeyKind.HEADER, ast.LimitKeyKind.ROUTE)


def compile_bans(state: CompileState) -> None:
    for name, decl in state.bans.items():
        for key in decl.by:
            if key.kind not in _BAN_KEYS:
                state.diags.error(
                    "compile/ban-key",
                    f"a ban cannot be counted by `{key.kind.value}`",
                    key.span,
                    "a ban is checked before any credential is read: ban by `client_ip`, "
                    '`header "H"` or `route`',
                )
        state.compiled_bans[name] = BanSpec(
            name=name,
            count=decl.count,
            period=decl.period_seconds,
            keys=tuple((k.kind.value, k.arg) for k in decl.by),
            ban=decl.ban_seconds,
            statuses=frozenset(decl.statuses),
            site=decl.span.short(),
        )


PASSES: tuple[Pass, ...] = (
    Pass("collect-declarations", collect_declarations),
    Pass("check-groups", check_group_prefixes),
    Pass("check-hosts", check_hosts),
    Pass("role-hierarchy", resolve_role_hierarchy),
    Pass("resolve-names", resolve_names),
    Pass("check-route-rules", check_route_rules),
    Pass("parse-paths", parse_paths),
    Pass("detect-conflicts", detect_conflicts),
    Pass("build-authn", build_authenticators),
    Pass("build-schemas", build_schemas),
    Pass("build-limits", compile_limits),
    Pass("build-bans", compile_bans),
    Pass("compile-routes", compile_routes),
    Pass("collect-inputs", collect_inputs),
    Pass("lint-unused", lint_unused_declarations),
    Pass("lint-rules", lint_unsatisfiable_rules),
    Pass("lint-request-data", lint_request_data),
    Pass("lint-shadowed", lint_shadowed_routes),
    Pass("lint-public", lint_public_in_protected),
)


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    """Everything a decision needs, built once. Immutable by convention and by type."""

    name: str | None
    tree: DecisionTree
    hardening: Hardening  # the set's `permit` opt-outs
    roles: frozenset[str]
    inherited_roles: dict[str, frozenset[str]]
    schemas: dict[str, CompiledSchema]
    limits: dict[str, LimitSpec]
    route_count: int
    inputs: DecisionInputs  # what of a request its decisions can read
    warnings: tuple[Diagnostic, ...]
    pass_times: tuple[tuple[str, float], ...]  # seconds per pass, for --explain and bench
    hosts: HostSet | None = None  # the set's own `host`: checked before any route matches
    names_hosts: bool = False  # the set, a group or a route names hosts: read `Host`
    revision: str = ""  # revision_of(): which text of the set this is (decision logs)


def revision_of(policy_set: ast.PolicySet) -> str:
    """A content hash of the set: sha256 over each policy file's name and text, in name
    order, 16 hex digits. Files the policy names (keys, JWKS, schemas) are not in it."""
    digest = hashlib.sha256()
    for source in sorted((file.source for file in policy_set.files), key=lambda s: s.name):
        for part in (source.name, source.text):
            data = part.encode("utf-8", "surrogatepass")
            digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()[:16]


def compile_policy_set(
    policy_set: ast.PolicySet, *, environ: Mapping[str, str] | None = None
) -> CompiledPolicy:
    """Run every pass; raise PolicyError with all errors, else build the tree.
    `environ` replaces the process environment for `env "NAME"` settings."""
    return compile_with_state(policy_set, environ=environ)[0]


def compile_with_state(
    policy_set: ast.PolicySet, *, environ: Mapping[str, str] | None = None, lints: bool = True
) -> tuple[CompiledPolicy, CompileState]:
    """The compiled policy and the passes' state it came from (each compiled route beside
    the route written in the AST), for tools that analyse a policy rather than run it.
    `lints=False` skips the `lint-*` passes: they only warn, and cost a third of a compile."""
    with collector_paused():
        return _compile(policy_set, environ, lints)


def _compile(
    policy_set: ast.PolicySet, environ: Mapping[str, str] | None, lints: bool
) -> tuple[CompiledPolicy, CompileState]:
    state = CompileState(policy_set, environ=environ)
    timings: list[tuple[str, float]] = []
    for compiler_pass in PASSES:
        if not lints and compiler_pass.name.startswith("lint-"):
            continue
        started = time.perf_counter()
        compiler_pass.run(state)
        timings.append((compiler_pass.name, time.perf_counter() - started))
    state.diags.raise_if_errors()
    started = time.perf_counter()
    tree = state.lint_tree or build_tree(state)
    timings.append(("build-tree", time.perf_counter() - started))
    compiled = CompiledPolicy(
        name=state.policy_name,
        tree=tree,
        hardening=Hardening.of(frozenset(state.permits)),
        roles=frozenset(state.roles),
        inherited_roles=state.inherited_roles,
        schemas=state.compiled_schemas,
        limits=state.compiled_limits,
        route_count=len(state.compiled_routes),
        inputs=state.inputs,
        warnings=tuple(state.diags.warnings),
        pass_times=tuple(timings),
        hosts=state.set_hosts,
        names_hosts=bool(state.host_sets),
        revision=revision_of(policy_set),
    )
    return compiled, state


__all__ = ["PASSES", "CompiledPolicy", "PolicyError", "compile_policy_set", "compile_with_state"]
