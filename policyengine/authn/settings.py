"""Reading an authn block's settings with errors that point at the setting."""

from __future__ import annotations

from collections.abc import Mapping

from policyengine import ast
from policyengine.errors import Diagnostics, one_of
from policyengine.source import Span


class SettingsReader:
    """Typed access to `key value...` settings; reports unknown, repeated and malformed ones."""

    def __init__(
        self,
        block: ast.AuthnBlock,
        allowed: set[str],
        diags: Diagnostics,
        mergeable: frozenset[str] = frozenset(),
    ) -> None:
        """`mergeable` keys may be split over two lines, words on one and a map on the other
        (`roles claim "groups"` then `roles map { ... }`)."""
        self.block = block
        self.diags = diags
        self.by_key: dict[str, ast.Setting] = {}
        for setting in block.settings:
            key = setting.key.value
            earlier = self.by_key.get(key)
            if key not in allowed:
                diags.error(
                    "compile/unknown-setting",
                    f"unknown setting `{key}` in `authn {block.kind.value}`",
                    setting.key.span,
                    f"settings are {one_of(allowed)}",
                )
            elif earlier is None:
                self.by_key[key] = setting
            elif key in mergeable and _complementary(earlier, setting):
                self.by_key[key] = _merged(earlier, setting)
            else:
                diags.error("compile/duplicate-setting", f"`{key}` is set twice", setting.key.span)

    def has(self, key: str) -> bool:
        return key in self.by_key

    def _bad(self, setting: ast.Setting, expected: str) -> None:
        self.diags.error(
            "compile/bad-setting", f"`{setting.key.value}` expects {expected}", setting.span
        )

    def words(
        self, key: str, shape: tuple[ast.WordKind, ...], expected: str
    ) -> tuple[ast.Word, ...] | None:
        """A setting with exactly one group whose words have the given kinds."""
        setting = self.by_key.get(key)
        if setting is None:
            return None
        if setting.mapping is not None or len(setting.groups) != 1:
            self._bad(setting, expected)
            return None
        group = setting.groups[0]
        if tuple(w.kind for w in group) != shape:
            self._bad(setting, expected)
            return None
        return group

    def string(self, key: str) -> str | None:
        words = self.words(key, (ast.WordKind.STRING,), 'a string, like `"value"`')
        return str(words[0].value) if words else None

    def sourced(self, key: str, sources: tuple[str, ...]) -> tuple[str, str] | None:
        """`key SOURCE "value"` such as `keys file "k.yaml"` or `secret env "NAME"`."""
        expected = " or ".join(f'`{key} {s} "..."`' for s in sources)
        words = self.words(key, (ast.WordKind.NAME, ast.WordKind.STRING), expected)
        if words is None:
            return None
        if words[0].value not in sources:
            self._bad(self.by_key[key], expected)
            return None
        value = str(words[1].value)
        if not value.isprintable():  # a NUL or newline in a file or variable name
            self.diags.error("compile/bad-setting", f"`{key}` names something with control "
                             "characters", words[1].span)  # fmt: skip
            return None
        return str(words[0].value), value

    def strings(self, key: str) -> list[str] | None:
        """`key "a"` or `key "a", "b"`."""
        setting = self.by_key.get(key)
        if setting is None:
            return None
        if setting.mapping is not None or any(
            len(g) != 1 or g[0].kind is not ast.WordKind.STRING for g in setting.groups
        ):
            self._bad(setting, 'one or more strings, like `"a", "b"`')
            return None
        return [str(g[0].value) for g in setting.groups]

    def claim_path(self, key: str) -> str | None:
        """`key claim "a.b"`; a `map { ... }` may follow and is read by `mapping`."""
        found = self.typed_claim_path(key, ())
        return found[0] if found is not None else None

    def typed_claim_path(self, key: str, kinds: tuple[str, ...]) -> tuple[str, str | None] | None:
        """`key claim "a.b"`, or `key claim "a.b" KIND` with KIND one of `kinds`."""
        setting = self.by_key.get(key)
        if setting is None or not setting.groups:
            return None
        words = setting.groups[0]
        kind = words[2].value if len(words) == 3 else None
        if (
            len(setting.groups) != 1
            or len(words) not in ((2, 3) if kinds else (2,))
            or words[0].value != "claim"
            or words[1].kind is not ast.WordKind.STRING
            or not words[1].value
            or (kind is not None and (words[2].kind is not ast.WordKind.NAME or kind not in kinds))
        ):
            shape = f" {'|'.join(kinds)}" if kinds else ""
            self._bad(setting, f'a claim path, like `{key} claim "realm_access.roles"{shape}`')
            return None
        return str(words[1].value), None if kind is None else str(kind)

    def mapping(self, key: str) -> tuple[ast.MapEntry, ...] | None:
        setting = self.by_key.get(key)
        return setting.mapping if setting is not None else None

    def env(self, key: str, environ: Mapping[str, str]) -> str | None:
        """`key env "NAME"`: the variable's value, read now; unset or empty is an error."""
        source = self.sourced(key, ("env",))
        if source is None:
            return None
        value = environ.get(source[1])
        if not value:
            self.diags.error(
                "compile/missing-env",
                f"environment variable `{source[1]}` is not set or empty",
                self.by_key[key].span,
                f"`{key}` is read from the environment when the policy loads",
            )
            return None
        return value

    def names(self, key: str) -> list[str] | None:
        """`key A, B, C`."""
        setting = self.by_key.get(key)
        if setting is None:
            return None
        if setting.mapping is not None or any(
            len(g) != 1 or g[0].kind is not ast.WordKind.NAME for g in setting.groups
        ):
            self._bad(setting, "a list of names, like `A, B`")
            return None
        return [str(g[0].value) for g in setting.groups]

    def duration(self, key: str) -> float | None:
        words = self.words(key, (ast.WordKind.DURATION,), "a duration, like `30s`")
        return float(words[0].value) if words else None

    def size(self, key: str) -> int | None:
        words = self.words(key, (ast.WordKind.SIZE,), "a size, like `8KiB`")
        return int(words[0].value) if words else None

    def span(self, key: str) -> Span:
        setting = self.by_key.get(key)
        return setting.span if setting else self.block.span

    def require(self, *keys: str) -> None:
        for key in keys:
            if key not in self.by_key:
                self.diags.error(
                    "compile/missing-setting",
                    f"`authn {self.block.kind.value}` needs `{key}`",
                    self.block.kind.span,
                )


def _complementary(first: ast.Setting, second: ast.Setting) -> bool:
    """One setting has only words, the other only a map."""
    return (first.mapping is None) != (second.mapping is None) and not (
        first.groups and second.groups
    )


def _merged(first: ast.Setting, second: ast.Setting) -> ast.Setting:
    return ast.Setting(
        first.key,
        first.groups or second.groups,
        first.mapping if first.mapping is not None else second.mapping,
        first.span,
    )
