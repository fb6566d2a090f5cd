"""``lazy(pattern, flags)``: a regular expression compiled when first used, not at import
(a module-level ``re.compile`` costs about a millisecond of every start, used or not)."""

from __future__ import annotations

import re
from collections.abc import Iterator


class LazyPattern:
    """The methods of ``re.Pattern`` the lint uses, compiling on the first call."""

    __slots__ = ("_compiled", "flags", "pattern")

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self.pattern = pattern
        self.flags = flags
        self._compiled: re.Pattern[str] | None = None

    def _get(self) -> re.Pattern[str]:
        if self._compiled is None:
            self._compiled = re.compile(self.pattern, self.flags)
        return self._compiled

    def search(self, string: str) -> re.Match[str] | None:
        return self._get().search(string)

    def match(self, string: str) -> re.Match[str] | None:
        return self._get().match(string)

    def finditer(self, string: str) -> Iterator[re.Match[str]]:
        return self._get().finditer(string)

    def split(self, string: str, maxsplit: int = 0) -> list[str]:
        return self._get().split(string, maxsplit)


def lazy(pattern: str, flags: int = 0) -> LazyPattern:
    return LazyPattern(pattern, flags)
