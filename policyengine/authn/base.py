"""What builders get to work with, and the shape of a builder."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from policyengine import ast
from policyengine.authenticator import Authenticator
from policyengine.errors import Diagnostics


@dataclass
class AuthnBuildContext:
    """What a builder may use: where the policy file lives, diagnostics, the environment."""

    policy_dir: Path
    diags: Diagnostics
    known_roles: frozenset[str]
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    def resolve(self, relative: str) -> Path:
        return (self.policy_dir / relative).resolve()


Builder = Callable[[ast.AuthnBlock, AuthnBuildContext], Authenticator | None]
