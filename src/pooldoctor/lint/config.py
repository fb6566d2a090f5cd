"""Configuration from ``[tool.pooldoctor.lint]`` in pyproject.toml.

Keys (all optional)::

    [tool.pooldoctor.lint]
    select = ["PD2"]            # codes or prefixes to check (default: every PD2xx rule)
    ignore = ["PD202"]          # codes or prefixes to leave out
    exclude = ["migrations/", "legacy/**/*.py"]   # .gitignore-style, relative to pyproject.toml
    per-file-ignores = {"tests/**" = ["PD209"]}
    respect-gitignore = true
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from ..record import Record
from .discovery import Pattern, compile_pattern
from .rules import RULE_CODES

TYPE_CHECKING = False  # no typing at run time (start-up: docs/benchmarks.md)
if TYPE_CHECKING:
    from typing import Any


class ConfigError(ValueError):
    """A configuration or option that cannot be used (a usage error)."""


class Config(Record):
    """What to check and where: codes chosen, paths excluded (``[tool.pooldoctor.lint]``)."""

    __slots__ = _fields = ("select", "ignore", "exclude", "per_file_ignores",
                           "respect_gitignore", "force_exclude", "source")

    def __init__(self, select: list[str] | None = None, ignore: list[str] | None = None,
                 exclude: list[Pattern] | None = None,
                 per_file_ignores: list[tuple[Pattern, frozenset[str]]] | None = None,
                 respect_gitignore: bool = True, force_exclude: bool = False,
                 source: str | None = None) -> None:
        self.select: list[str] = ["PD2"] if select is None else select
        self.ignore: list[str] = [] if ignore is None else ignore
        self.exclude: list[Pattern] = [] if exclude is None else exclude
        self.per_file_ignores: list[tuple[Pattern, frozenset[str]]] = (
            [] if per_file_ignores is None else per_file_ignores)
        self.respect_gitignore = respect_gitignore
        self.force_exclude = force_exclude
        self.source = source  # the pyproject.toml read, if any

    def codes(self) -> frozenset[str]:
        return resolve_codes(self.select, self.ignore)

    def codes_for(self, path: str, codes: frozenset[str]) -> frozenset[str]:
        out = codes
        for pattern, ignored in self.per_file_ignores:
            if pattern.matches(path, False):
                out = out - ignored
        return out


def expand(spec: str) -> set[str]:
    """``PD2`` -> every rule code starting with it; unknown codes raise ConfigError."""
    spec = spec.strip().upper()
    if spec in ("ALL", ""):
        return set(RULE_CODES)
    found = {c for c in RULE_CODES if c.startswith(spec)}
    if not found:
        raise ConfigError(f"unknown lint code {spec!r}; lint codes are "
                          f"{RULE_CODES[0]}..{RULE_CODES[-1]}")
    return found


def resolve_codes(select: Iterable[str], ignore: Iterable[str]) -> frozenset[str]:
    chosen: set[str] = set()
    for s in select:
        chosen |= expand(s)
    for s in ignore:
        chosen -= expand(s)
    return frozenset(chosen)


def split_codes(values: Iterable[str]) -> list[str]:
    """``("PD201,PD202", "PD209")`` -> ``["PD201", "PD202", "PD209"]``."""
    out: list[str] = []
    for v in values:
        out.extend(p for p in (x.strip() for x in v.split(",")) if p)
    return out


def find_pyproject(start: str) -> str | None:
    cur = os.path.abspath(start)
    while True:
        candidate = os.path.join(cur, "pyproject.toml")
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(cur)
        if parent == cur:
            return None
        cur = parent


def _load_toml(path: str) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef,unused-ignore]
        except ModuleNotFoundError:
            raise ConfigError(f"cannot read {path}: Python 3.10 needs the tomli package "
                              "(pip install tomli)") from None
    try:
        with open(path, "rb") as fh:
            data: dict[str, Any] = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"cannot read {path}: not UTF-8 text") from None
    return data


def _str_list(value: Any, key: str, path: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError(f"{path}: [tool.pooldoctor.lint] {key} must be a list of strings")


def _names_pooldoctor(path: str) -> bool:
    """Can the file hold a [tool.pooldoctor] table? (Parsing TOML costs a one-file lint more
    than its checks: most projects' pyproject.toml never names us.) True when unreadable, so
    that the reader says why."""
    try:
        with open(path, "rb") as fh:
            return b"pooldoctor" in fh.read()
    except OSError:
        return True


def load_config(path: str | None = None, start: str = ".") -> Config:
    """Read the configuration from ``path`` or the nearest pyproject.toml above ``start``."""
    if path is None:
        path = find_pyproject(start)
        if path is None:
            return Config()
        if not _names_pooldoctor(path):  # the project's other settings are not ours to parse
            return Config(source=path)
    elif not os.path.isfile(path):
        raise ConfigError(f"config file {path} does not exist")
    data = _load_toml(path)
    section = data.get("tool", {}).get("pooldoctor", {}).get("lint", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [tool.pooldoctor.lint] must be a table")
    return config_from_table(section, path)


KNOWN_KEYS = frozenset({"select", "ignore", "extend-select", "exclude", "extend-exclude",
                        "per-file-ignores", "respect-gitignore"})


def config_from_table(section: dict[str, Any], path: str) -> Config:
    unknown = sorted(set(section) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r} in [tool.pooldoctor.lint]; "
                          f"known keys: {', '.join(sorted(KNOWN_KEYS))}")
    base = os.path.dirname(os.path.abspath(path))
    cfg = Config(source=path)
    if "select" in section:
        cfg.select = _str_list(section["select"], "select", path)
    cfg.select += _str_list(section.get("extend-select", []), "extend-select", path)
    cfg.ignore = _str_list(section.get("ignore", []), "ignore", path)
    for key in ("exclude", "extend-exclude"):
        for pat in _str_list(section.get(key, []), key, path):
            compiled = compile_pattern(pat, base)
            if compiled is not None:
                cfg.exclude.append(compiled)
    pfi = section.get("per-file-ignores", {})
    if not isinstance(pfi, dict):
        raise ConfigError(f"{path}: per-file-ignores must be a table of pattern = [codes]")
    for pat, codes in pfi.items():
        compiled = compile_pattern(pat, base)
        if compiled is not None:
            chosen: set[str] = set()
            for c in _str_list(codes, f"per-file-ignores[{pat!r}]", path):
                chosen |= expand(c)
            cfg.per_file_ignores.append((compiled, frozenset(chosen)))
    gi = section.get("respect-gitignore", True)
    if not isinstance(gi, bool):
        raise ConfigError(f"{path}: respect-gitignore must be true or false")
    cfg.respect_gitignore = gi
    cfg.codes()  # validate the codes now
    return cfg
