"""Text to AST. Lark never leaves this package."""

from policyengine.syntax.parser import comment_spans, keywords, parse_source

__all__ = ["comment_spans", "keywords", "parse_source"]
