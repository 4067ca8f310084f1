"""What the compiler passes share: the input AST, diagnostics, and each pass's results."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from policyengine import ast
from policyengine.decision import DecisionInputs
from policyengine.errors import Diagnostics
from policyengine.hardening import Permission
from policyengine.patterns import PathPattern

if TYPE_CHECKING:
    from policyengine.authenticator import Authenticator
    from policyengine.hosts import HostSet
    from policyengine.ratelimit.bans import BanSpec
    from policyengine.ratelimit.plan import LimitSpec
    from policyengine.schema import CompiledSchema
    from policyengine.tree import CompiledRoute, DecisionTree


@dataclass(frozen=True, slots=True)
class FlatRoute:
    """A route with the prefixes of its enclosing groups applied, and where it was written."""

    route: ast.Route
    prefix: str
    file: ast.PolicyFile
    groups_hosts: tuple[ast.HostDecl, ...] = ()  # `host` of enclosing groups, outermost first

    @property
    def policy_dir(self) -> Path:
        return Path(self.file.path).parent


@dataclass(frozen=True, slots=True)
class CompiledTarget:
    """One `METHOD /path` of a route, its parsed pattern and the route compiled for it:
    what the tree is built from, without matching routes to targets by their labels."""

    flat: FlatRoute
    target: ast.RouteTarget
    pattern: PathPattern
    route: CompiledRoute


@dataclass(frozen=True, slots=True)
class Declared:
    """A named declaration and the file it came from (for relative `file` paths)."""

    node: ast.RoleDecl | ast.SchemaDecl | ast.LimitDecl | ast.AuthnBlock
    file: ast.PolicyFile


@dataclass
class CompileState:
    policy_set: ast.PolicySet
    environ: Mapping[str, str] | None = None  # None: the process environment
    diags: Diagnostics = field(default_factory=Diagnostics)
    policy_name: str | None = None
    permits: dict[Permission, ast.Permit] = field(default_factory=dict)  # first statement each
    roles: dict[str, ast.RoleDecl] = field(default_factory=dict)
    role_names: frozenset[str] = frozenset()  # the declared roles, once for every route
    schemas: dict[str, Declared] = field(default_factory=dict)
    limits: dict[str, ast.LimitDecl] = field(default_factory=dict)
    bans: dict[str, ast.BanDecl] = field(default_factory=dict)
    authn_blocks: dict[str, Declared] = field(default_factory=dict)
    routes: list[FlatRoute] = field(default_factory=list)
    # role -> itself and every role it inherits (what holding it grants)
    inherited_roles: dict[str, frozenset[str]] = field(default_factory=dict)
    # role -> itself and every role that inherits it (who satisfies `allow role R`)
    satisfying_roles: dict[str, frozenset[str]] = field(default_factory=dict)
    patterns: dict[ast.RouteTarget, PathPattern] = field(default_factory=dict)
    # equal role sets and authenticator lists are one object each: a large policy's
    # routes then share a few hot objects instead of pulling thousands into cache
    role_sets: dict[frozenset[str], frozenset[str]] = field(default_factory=dict)
    scope_sets: dict[frozenset[str], frozenset[str]] = field(default_factory=dict)  # shared too
    authn_sets: dict[tuple[Authenticator, ...], tuple[Authenticator, ...]] = field(
        default_factory=dict
    )
    authenticators: dict[str, Authenticator] = field(default_factory=dict)
    compiled_schemas: dict[str, CompiledSchema] = field(default_factory=dict)
    compiled_limits: dict[str, LimitSpec] = field(default_factory=dict)
    compiled_bans: dict[str, BanSpec] = field(default_factory=dict)
    compiled_routes: list[tuple[FlatRoute, CompiledRoute]] = field(default_factory=list)
    compiled_targets: list[CompiledTarget] = field(default_factory=list)  # in that order
    # the tree the reachability lints ask, built by the first that needs it; the
    # engine's tree too: the lints only ask it (DecisionTree.match_without)
    lint_tree: DecisionTree | None = None
    inputs: DecisionInputs = field(default_factory=DecisionInputs)
    host_sets: dict[ast.HostDecl, HostSet] = field(default_factory=dict)  # each `host` line
    set_hosts: HostSet | None = None  # the set's own `host`: checked before matching

    def counted(self) -> list[ast.LimitDecl | ast.BanDecl]:
        """Every limit and ban: what their `by` keys read."""
        return [*self.limits.values(), *self.bans.values()]
