"""Helpers for input-validation tests: one-route policies, decisions rendered for asserts."""

from __future__ import annotations

from collections.abc import Callable

from policyengine import Decision

JSON = {"Content-Type": "application/json"}

Decide = Callable[..., Decision]


def route_policy(schemas: str, rules: str = "body S") -> str:
    """A policy with `schemas` and one open route `POST /r` with `rules`."""
    return f"{schemas}\nroute POST /r {{\n    allow anyone\n    {rules}\n}}\n"


def pointers(decision: Decision) -> list[str]:
    return [error.pointer for error in decision.errors]


def rendered(decision: Decision) -> list[str]:
    return [f"{error.pointer}: {error.message}" for error in decision.errors]
