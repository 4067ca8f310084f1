"""The sidecar decision server (`policyengine serve`): HTTP in front of `Engine`."""

from policyengine.server.config import DecisionLogConfig, Limits, ServerConfig, StoreOptions
from policyengine.server.supervisor import serve

__all__ = ["DecisionLogConfig", "Limits", "ServerConfig", "StoreOptions", "serve"]
