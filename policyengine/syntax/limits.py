"""The AST of `limit` and `ban` declarations: counts, periods and keys."""

from __future__ import annotations

from typing import Any

from lark import Token
from lark.tree import Meta

from policyengine import ast
from policyengine.syntax.core import _PERIOD_NAMES, BuilderCore, duration_seconds, unquote


class LimitsBuilder(BuilderCore):
    # -- limits ------------------------------------------------------------------------
    def limit_decl(self, meta: Meta, items: list[Any]) -> ast.LimitDecl:
        name, count_tok, period_tok = items[0], items[1], items[2]
        by: tuple[ast.LimitKey, ...] = ()
        burst: int | None = None
        for extra in items[3:]:
            if isinstance(extra, tuple):
                by = extra
            else:
                burst = extra
        count = self._num(count_tok)
        if not isinstance(count, int) or count <= 0:
            raise self._fail(
                "syntax/limit-count",
                "a limit's count must be a whole number above 0",
                self._tok_span(count_tok),
            )
        return ast.LimitDecl(
            self._name(name), count, self._period(period_tok), by, burst, self._span(meta)
        )

    def _period(self, tok: Token) -> float:
        if tok.type == "DURATION":
            seconds = duration_seconds(tok)
        elif str(tok) in _PERIOD_NAMES:
            seconds = _PERIOD_NAMES[str(tok)]
        else:
            raise self._fail(
                "syntax/limit-period",
                f"unknown period `{tok}`",
                self._tok_span(tok),
                "use a duration like `10s`, `5m`, `1h`, `1d`, or `second`, `minute`, `hour`, `day`",
            )
        if seconds <= 0:
            raise self._fail(
                "syntax/limit-period", "a period must be longer than 0", self._tok_span(tok)
            )
        return float(seconds)

    def limit_by(self, meta: Meta, items: list[ast.LimitKey]) -> tuple[ast.LimitKey, ...]:
        return tuple(items)

    def key_name(self, meta: Meta, items: list[Token]) -> ast.LimitKey:
        simple = {"subject", "client_ip", "api_key", "route"}
        if str(items[0]) not in simple:
            raise self._fail(
                "syntax/limit-key",
                f"unknown limit key `{items[0]}`",
                self._span(meta),
                'keys are `subject`, `client_ip`, `api_key`, `route`, `header "H"`, `claims.NAME`',
            )
        return ast.LimitKey(ast.LimitKeyKind(str(items[0])), None, self._span(meta))

    def key_header(self, meta: Meta, items: list[Token]) -> ast.LimitKey:
        if str(items[0]) != "header":
            raise self._fail(
                "syntax/limit-key",
                f"unknown limit key `{items[0]}`",
                self._span(meta),
                'did you mean `header "H"`?',
            )
        return ast.LimitKey(ast.LimitKeyKind.HEADER, unquote(items[1]).lower(), self._span(meta))

    def key_claim(self, meta: Meta, items: list[Token]) -> ast.LimitKey:
        if str(items[0]) != "claims":
            raise self._fail(
                "syntax/limit-key",
                f"unknown limit key `{items[0]}`",
                self._span(meta),
                "did you mean `claims.NAME`?",
            )
        path = ".".join(str(t) for t in items[1:])
        return ast.LimitKey(ast.LimitKeyKind.CLAIM, path, self._span(meta))

    def limit_burst(self, meta: Meta, items: list[Token]) -> int:
        value = self._num(items[0])
        if not isinstance(value, int) or value <= 0:
            raise self._fail(
                "syntax/limit-burst",
                "burst must be a whole number above 0",
                self._tok_span(items[0]),
            )
        return value

    # -- bans --------------------------------------------------------------------------
    def ban_decl(self, meta: Meta, items: list[Any]) -> ast.BanDecl:
        name, count_tok, period_tok, by, ban_tok = items[:5]
        statuses: tuple[int, ...] = items[5] if len(items) > 5 else (401,)
        count = self._num(count_tok)
        if not isinstance(count, int) or count <= 0:
            raise self._fail(
                "syntax/ban-count",
                "a ban's count of failures must be a whole number above 0",
                self._tok_span(count_tok),
            )
        return ast.BanDecl(
            self._name(name),
            count,
            self._period(period_tok),
            by,
            self._period(ban_tok),
            statuses,
            self._span(meta),
        )

    def ban_on(self, meta: Meta, items: list[Token]) -> tuple[int, ...]:
        statuses = []
        for tok in items:
            if str(tok) not in ("401", "403"):
                raise self._fail(
                    "syntax/ban-status",
                    f"a failure is a 401 or a 403, not `{tok}`",
                    self._tok_span(tok),
                )
            statuses.append(int(str(tok)))
        return tuple(dict.fromkeys(statuses))
