"""Text to AST. Lark never leaves this package."""

from policyengine.syntax.parser import parse_source

__all__ = ["parse_source"]
