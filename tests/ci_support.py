"""A test that needs a program or module this machine lacks: a skip on a developer's
machine, a failure under CI=true. CI installs everything, so a skip there would count
an untested face as passing."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(message: str, in_ci_then: str) -> NoReturn:
    """Skip with `message`; under CI fail with it and `in_ci_then` (what CI must do)."""
    if in_ci():
        pytest.fail(f"{message}; {in_ci_then}")
    pytest.skip(message, allow_module_level=True)
