"""policyengine: a declarative policy engine for API gateways.

The public API is small: load an Engine, decide Requests, read Decisions.
"""

from policyengine.decision import Decision
from policyengine.engine import Engine, EngineOptions, Explanation
from policyengine.errors import Diagnostic, PolicyError
from policyengine.request import Identity, Reason, Request, without_forwarded

__all__ = [
    "Decision",
    "Diagnostic",
    "Engine",
    "EngineOptions",
    "Explanation",
    "Identity",
    "PolicyError",
    "Reason",
    "Request",
    "without_forwarded",
]
