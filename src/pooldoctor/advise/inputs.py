"""Assemble the advisor's inputs: defaults, then source, then a report, then the command line.

Later layers win; each figure keeps the name of the layer it came from.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..reports import Report, merge_pools
from .model import DEFAULTS, Measured, PoolConfig, Source
from .source import EngineCall

_INTS = ("pool_size", "max_overflow", "workers", "instances", "threads")
_FLOATS = ("pool_timeout", "pool_recycle")


class InputError(ValueError):
    """Inputs the advisor cannot use (a bad report, an ambiguous choice, a negative count)."""


def apply(config: PoolConfig, values: Mapping[str, Any], source: Source) -> None:
    """Set the given fields of ``config`` (None values are skipped) and record their source."""
    for name, value in values.items():
        if value is None:
            continue
        if name not in DEFAULTS:
            raise KeyError(name)
        if name in _INTS:
            value = int(value)
        elif name in _FLOATS:
            value = float(value)
        elif name == "pre_ping":
            value = bool(value)
        setattr(config, name, value)
        config.sources[name] = source


def validate(config: PoolConfig) -> None:
    """Reject counts that make no sense, naming the value and where it came from."""
    for name in ("workers", "instances"):
        value = getattr(config, name)
        if value < 1:
            raise InputError(f"{name} must be at least 1, got {value} "
                             f"({config.source_of(name)})")
    if config.threads is not None and config.threads < 1:
        raise InputError(f"threads must be at least 1, got {config.threads} "
                         f"({config.source_of('threads')})")
    if config.pool_size < 0:
        raise InputError(f"pool_size cannot be negative, got {config.pool_size} "
                         f"({config.source_of('pool_size')})")
    if config.pool_timeout < 0:
        raise InputError(f"pool_timeout cannot be negative, got {config.pool_timeout:g}")


# ----------------------------------------------------------------------------- source


def choose_call(calls: list[EngineCall], path: str, line: int | None) -> EngineCall:
    """The one engine call to advise on: the only one, or the one at ``line``."""
    if line is not None:
        hits = [c for c in calls if c.site.line == line]
        if not hits:
            raise InputError(f"no create_engine() call at line {line} of {path}")
        return hits[0]
    if not calls:
        raise InputError(f"no create_engine() call found in {path}")
    distinct = {tuple(sorted(c.settings.items())) for c in calls}
    if len(distinct) > 1:
        listing = "; ".join(c.describe() for c in calls[:5])
        raise InputError(f"{len(calls)} create_engine() calls with different pool settings in "
                         f"{path}: {listing}; choose one with --from-source FILE:LINE")
    return calls[0]


def apply_call(config: PoolConfig, call: EngineCall) -> None:
    apply(config, call.settings, "source")
    config.site = call.site
    if call.url:
        config.url = call.url


# ----------------------------------------------------------------------------- report


def load_report(path: str) -> Report:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as e:
        raise InputError(f"cannot read report {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path} is not a pooldoctor.report/1 file: not UTF-8 text") from None
    try:
        return Report.from_json(text)
    except (json.JSONDecodeError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"{path} is not a pooldoctor.report/1 file: {e}") from None


def choose_pool(report: Report, path: str, pick: str | None) -> dict[str, Any]:
    """The pool entry to advise on: the only one, or the one whose url or name has ``pick``."""
    pools = merge_pools(p for p in report.pools if isinstance(p, Mapping))
    if pick:
        pools = [p for p in pools
                 if pick in str(p.get("url") or "") or pick in str(p.get("name") or "")]
    if not pools:
        raise InputError(f"report {path} has no pool" + (f" matching {pick!r}" if pick else ""))
    if len(pools) > 1:
        labels = ", ".join(repr(p.get("name") or p.get("url")) for p in pools[:6])
        raise InputError(f"report {path} has {len(pools)} pools ({labels}); "
                         "choose one with --pool")
    return pools[0]


def apply_pool(config: PoolConfig, pool: Mapping[str, Any]) -> Measured:
    """Take the live pool's settings (source ``report``) and return its measured figures."""
    values: dict[str, Any] = {"pool_class": pool.get("pool_class"),
                              "pool_size": pool.get("size"),
                              "max_overflow": pool.get("max_overflow"),
                              "pool_timeout": pool.get("timeout"),
                              "pool_recycle": pool.get("recycle"),
                              "pre_ping": pool.get("pre_ping")}
    processes = int(pool.get("processes") or 1)
    if processes > 1:
        values["workers"] = processes
    apply(config, values, "report")
    if pool.get("url"):
        config.url = str(pool["url"])

    def num(key: str) -> float | None:
        v = pool.get(key)
        return None if v is None else float(v)

    return Measured(checkouts=int(pool.get("checkouts") or 0),
                    peak_checked_out=int(pool.get("peak_checked_out") or 0),
                    waits=int(pool.get("waits") or 0),
                    timeouts=int(pool.get("timeouts") or 0),
                    max_wait_ms=float(pool.get("max_wait_ms") or 0.0),
                    hold_ms_total=num("hold_ms_total"), observed_s=num("observed_s"),
                    processes=processes)
