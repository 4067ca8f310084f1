"""OpenAPI 3.0/3.1: import a spec as a policy set, and check a policy set covers a spec.

Reading specs needs the `openapi` extra (openapi-spec-validator).
"""

from policyengine.openapi.coverage import CoverageReport, coverage
from policyengine.openapi.emit import PolicyOutput, emit
from policyengine.openapi.operations import Operation, operations
from policyengine.openapi.spec import Spec, SpecError, load_spec

__all__ = [
    "CoverageReport",
    "Operation",
    "PolicyOutput",
    "Spec",
    "SpecError",
    "coverage",
    "emit",
    "load_spec",
    "operations",
]
