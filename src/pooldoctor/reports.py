"""The report (``pooldoctor.report/1``): merged findings and pool figures, JSON and text."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from .findings import CATALOGUE, Finding, Site, merge_findings, shorten_path
from .urls import mask_text

SCHEMA = "pooldoctor.report/1"
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


def tool_version() -> str:
    from . import __version__

    return __version__


@dataclass
class Report:
    """Findings (merged by code and site) and per-pool figures."""

    findings: list[Finding] = field(default_factory=list)
    pools: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.findings = merge_findings(self.findings)

    def __bool__(self) -> bool:
        return bool(self.findings)

    def codes(self) -> list[str]:
        return [f.code for f in self.findings]

    def select(self, codes: Iterable[str]) -> Report:
        """A report with only the findings whose code starts with one of ``codes``."""
        prefixes = tuple(c.upper() for c in codes)
        return Report([f for f in self.findings if f.code.startswith(prefixes)], self.pools,
                      dict(self.extra))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "schema": SCHEMA,
            "tool": {"name": "pooldoctor", "version": tool_version()},
            "findings": [f.to_dict() for f in self.findings],
            "pools": [dict(p) for p in self.pools],
        }
        d.update(self.extra)
        return d

    def to_json(self, indent: int | None = 2) -> str:
        return mask_text(json.dumps(self.to_dict(), indent=indent, default=str))

    def write(self, path: str) -> None:
        """Write the JSON report atomically."""
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(self.to_json())
            fh.write("\n")
        os.replace(tmp, path)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Report:
        if d.get("schema") != SCHEMA:
            raise ValueError(f"not a pooldoctor report: schema={d.get('schema')!r}")
        extra = {k: v for k, v in d.items() if k not in ("schema", "tool", "findings", "pools")}
        return cls([Finding.from_dict(f) for f in d.get("findings", ())],
                   list(d.get("pools", ())), extra)

    @classmethod
    def from_json(cls, text: str) -> Report:
        return cls.from_dict(json.loads(text))

    def render_text(self, color: bool | None = None, stacks: bool = True) -> str:
        return render_text(self, color=color, stacks=stacks)


def merge_pools(pools: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Merge pool figures by (url, pool_class, name).

    ``processes`` counts distinct pids (several engines for one URL in one process are one
    process); entries without ``pids`` (older reports) count as their ``processes`` or 1.
    """
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    pids: dict[tuple[Any, ...], set[int]] = {}
    unknown: dict[tuple[Any, ...], int] = {}
    for p in pools:
        key = (p.get("url"), p.get("pool_class"), p.get("name"))
        known = {int(x) for x in p.get("pids") or () if isinstance(x, int)}
        pids.setdefault(key, set()).update(known)
        if not known:
            unknown[key] = unknown.get(key, 0) + int(p.get("processes") or 1)
        if key not in merged:
            merged[key] = dict(p)
            continue
        m = merged[key]
        for k in ("checkouts", "timeouts", "waits", "connects", "gc_reclaimed", "hold_ms_total"):
            if k in p:
                m[k] = m.get(k, 0) + p[k]
        for k in ("peak_checked_out", "max_wait_ms", "observed_s"):
            if k in p:
                m[k] = max(m.get(k, 0), p[k])
    for key, m in merged.items():
        m["processes"] = len(pids[key]) + unknown.get(key, 0)
        if pids[key]:
            m["pids"] = sorted(pids[key])
    return list(merged.values())


# ----------------------------------------------------------------------------- text rendering

_PATH_AT_LINE = r"(?<![^\s(\[\"'])([^\s\"'(),;\[\]]+):{line}(?!\d)"


def one_site_form(message: str, site: Site) -> str:
    """``message`` with its mention of ``site`` written as the ``at`` line writes it.

    A message is written where the finding happens, relative to that process's working
    directory (or absolute when outside it); the report may be read from another directory
    (``pooldoctor run`` of a program that changes directory, the demo, a merged report).
    """
    import re

    def same(m: re.Match[str]) -> str:
        text = os.path.normpath(m.group(1))
        file = os.path.normpath(site.file)
        if text == file or (not text.startswith("..") and file.endswith(os.sep + text)):
            return f"{shorten_path(site.file)}:{site.line}"
        return m.group(0)

    return re.sub(_PATH_AT_LINE.format(line=site.line), same, message)


def use_color(stream: IO[str] | None = None) -> bool:
    """Colour when the stream is a terminal; NO_COLOR and FORCE_COLOR decide first."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


_COLORS = {"error": "\x1b[31;1m", "warning": "\x1b[33;1m", "info": "\x1b[36m", "dim": "\x1b[2m",
           "bold": "\x1b[1m"}
_RESET = "\x1b[0m"


def _paint(text: str, style: str, color: bool) -> str:
    return f"{_COLORS[style]}{text}{_RESET}" if color else text


def render_text(report: Report, color: bool | None = None, stacks: bool = True) -> str:
    """A readable summary: each finding once, with its site, count, stack and a hint."""
    if color is None:
        color = use_color()
    if not report.findings:
        return "pooldoctor: no findings\n"
    lines: list[str] = []
    findings = sorted(report.findings,
                      key=lambda f: (_SEVERITY_ORDER.get(f.severity, 9), f.code, f.first_seen))
    for f in findings:
        message = one_site_form(f.message, f.site) if f.site is not None else f.message
        head = f"{_paint(f.code, f.severity, color)} {f.severity:<7} {message}"
        if f.count > 1:
            head += _paint(f"  (x{f.count})", "bold", color)
        lines.append(head)
        if f.site is not None:
            lines.append(f"    at {f.site.short()}")
        if stacks:
            from .sites import is_internal_file

            for frame in [s for s in f.stack[1:] if not is_internal_file(s.file)][:5]:
                lines.append(_paint(f"       {frame.short()}", "dim", color))
        holders = f.details.get("holders")
        if isinstance(holders, list):
            for h in holders[:10]:
                lines.append(f"    - {h.get('text', h)}")
        if f.pids and len(f.pids) > 1:
            lines.append(_paint(f"    pids: {', '.join(map(str, f.pids[:10]))}", "dim", color))
        lines.append(_paint(f"    hint: {CATALOGUE[f.code].hint}", "dim", color))
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.severity] = counts.get(f.severity, 0) + 1
    summary = ", ".join(f"{n} {sev}{'s' if n > 1 else ''}" for sev, n in sorted(
        counts.items(), key=lambda kv: _SEVERITY_ORDER.get(kv[0], 9)))
    lines.append(f"pooldoctor: {len(findings)} finding{'s' if len(findings) != 1 else ''} "
                 f"({summary}); `pooldoctor explain CODE` tells more")
    return mask_text("\n".join(lines) + "\n")
