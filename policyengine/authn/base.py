"""The authenticator protocol, its failure type, and what builders get to work with."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from policyengine import ast
from policyengine.context import RequestContext
from policyengine.decision import Identity, Reason
from policyengine.errors import Diagnostics


class AuthnFailure(Exception):
    """Credentials were presented but do not establish an identity (401)."""

    def __init__(self, reason: Reason, message: str, challenge: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.challenge = challenge  # the WWW-Authenticate value to send back


class Authenticator(ABC):
    """One compiled authn block."""

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def presented(self, ctx: RequestContext) -> bool:
        """Whether the request carries a credential of this block's kind."""

    @abstractmethod
    def authenticate(self, ctx: RequestContext) -> Identity:
        """The identity behind the presented credential; raises AuthnFailure."""

    def challenge(self) -> str | None:
        """The WWW-Authenticate value for a request with no credential."""
        return None


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
