"""policyengine: a declarative policy engine for API gateways.

The public API is small: load an Engine, decide Requests, read Decisions.
"""

from policyengine.decision import Decision, Identity, Reason, Request, without_forwarded
from policyengine.engine import Engine, EngineOptions, Explanation
from policyengine.errors import Diagnostic, PolicyError

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
