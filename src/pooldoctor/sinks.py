"""Where findings go as they happen: the in-process collector, logging, a JSON-lines file
shared by every process of a `pooldoctor run`, and user callbacks."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

from .findings import Finding, merge_findings
from .urls import mask_text

logger = logging.getLogger("pooldoctor")


class MaskingFilter(logging.Filter):
    """No password reaches a handler of the ``pooldoctor`` logger: the message and the
    traceback text (internal errors log one) pass through ``mask_text``."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
            masked = mask_text(message)
            if masked != message:
                record.msg, record.args = masked, None
            if record.exc_info and not record.exc_text:
                record.exc_text = mask_text(logging.Formatter().formatException(record.exc_info))
        except Exception:  # logging must never fail because of us
            pass
        return True


logger.addFilter(MaskingFilter())

EVENTS_ENV = "POOLDOCTOR_EVENTS"


class Collector:
    """The findings of this process, merged by code and site."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._findings: dict[tuple[Any, ...], Finding] = {}

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._findings = {}

    def add(self, f: Finding) -> None:
        with self._lock:
            k = f.key()
            if k in self._findings:
                self._findings[k].merge(f)
            else:
                self._findings[k] = Finding.from_dict(f.to_dict())

    def note(self, code: str, site_key: tuple[Any, ...], **details: Any) -> None:
        """Update the details of an existing finding (e.g. a PD101 hold that came back)."""
        with self._lock:
            f = self._findings.get((code, *site_key))
            if f is not None:
                for k, v in details.items():
                    if isinstance(v, int) and not isinstance(v, bool) and k.endswith("_count"):
                        f.details[k] = f.details.get(k, 0) + v
                    else:
                        f.details[k] = v

    def findings(self) -> list[Finding]:
        with self._lock:
            return [Finding.from_dict(f.to_dict()) for f in self._findings.values()]

    def clear(self) -> None:
        with self._lock:
            self._findings.clear()


class LiveCounter:
    """Repeats of a finding on the live log: the first occurrence is told, then the 2nd (to
    say it repeats) and the 10th, 100th, 1,000th... with the count so far; the summary at the
    end has them all, merged. Keyed like the report's findings (code and site)."""

    def __init__(self) -> None:
        self._counts: dict[tuple[Any, ...], int] = {}

    def clear(self) -> None:
        self._counts = {}

    def tell(self, f: Finding) -> int | None:
        """How many times ``f`` has been seen, when this occurrence is to be logged; None
        when it is only counted."""
        k = f.key()
        n = self._counts.get(k, 0) + f.count
        self._counts[k] = n
        if n <= 2 or _decade(n) > _decade(n - f.count):
            return n
        return None


def _decade(n: int) -> int:
    """The number of digits of ``n`` (10 -> 2): a repeat is told when it changes."""
    return len(str(max(n, 1)))


def live_suffix(n: int) -> str:
    """What the live log adds to a finding seen ``n`` times."""
    if n <= 1:
        return ""
    if n == 2:
        return " (repeats: 2 times so far; further repeats are told at 10, 100, ...)"
    return f" (repeats: {n} times so far)"


class JsonLinesSink:
    """Appends one JSON object per line; safe for many processes writing one file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        self._pid = -1

    def open(self) -> None:
        """Open (or, in a forked child, reopen) the file; raises OSError for a bad path."""
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._pid = os.getpid()

    def write(self, obj: dict[str, Any]) -> None:
        self.write_line(mask_text(json.dumps(obj, default=str)))

    def write_line(self, line: str) -> None:
        """Append one line (the newline is added); one write() per line keeps lines whole."""
        if self._fd is None or self._pid != os.getpid():
            self.open()
        assert self._fd is not None
        os.write(self._fd, (line + "\n").encode("utf-8", "replace"))

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            try:
                os.close(self._fd)
            except OSError:
                pass
        self._fd = None


def read_events(path: str) -> Iterator[dict[str, Any]]:
    """Read the events a JSON-lines sink wrote, skipping torn or foreign lines."""
    try:
        text = open(path, encoding="utf-8", errors="replace").read()  # noqa: SIM115
    except FileNotFoundError:
        return
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            yield obj


def findings_from_events(events: list[dict[str, Any]]) -> list[Finding]:
    out = [Finding.from_dict(e["finding"]) for e in events if e.get("event") == "finding"]
    merged = merge_findings(out)
    by_key = {f.key(): f for f in merged}
    for e in events:
        if e.get("event") == "note":
            f = by_key.get((e["code"], *e["site_key"]))
            if f is not None:
                for k, v in e["details"].items():
                    if isinstance(v, int) and not isinstance(v, bool) and k.endswith("_count"):
                        f.details[k] = f.details.get(k, 0) + v
                    else:
                        f.details[k] = v
    return merged


Callback = Callable[[Finding], None]
