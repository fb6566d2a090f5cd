"""`pooldoctor watch URL`: poll a server and report PD301-PD305 (cron, CI, a terminal)."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

import click

from ..dbconnect import ServerError
from ..findings import Finding
from ..reports import Report, use_color
from .common import EXIT_FINDINGS, EXIT_UNAVAILABLE, FORMAT_OPTION, CliError, fail
from .serveropts import DURATION, probing, server_args, take_snapshot

if TYPE_CHECKING:
    from ..server.model import Snapshot
    from ..server.probe import Probe

# ----------------------------------------------------------------------------- watch


@click.command()
@server_args
@click.option("--interval", type=DURATION, default=10.0, show_default=True,
              help="Seconds between samples.")
@click.option("--once", is_flag=True, help="Take one sample and exit (PD303 and PD305 compare "
                                           "samples: add --state FILE).")
@click.option("--iterations", type=click.IntRange(min=1), help="Stop after N samples.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False),
              help="Write the JSON report (pooldoctor.report/1) to this file after each sample.")
@click.option("--state", "state_path", type=click.Path(dir_okay=False),
              help="Keep the samples between runs in this file, so `--once` from cron can "
                   "see growth (PD303) and rejections (PD305).")
@click.option("--near", type=click.FloatRange(0, 100, min_open=True), default=80.0,
              show_default=True, help="PD301: percent of the limit in use.")
@click.option("--idle-in-transaction", "idle_txn", type=DURATION, default=60.0,
              show_default=True, help="PD302: seconds idle in transaction.")
@click.option("--idle", type=DURATION, default=1800.0, show_default=True,
              help="PD304: seconds idle.")
@click.option("--growth-samples", type=click.IntRange(min=3), default=5, show_default=True,
              help="PD303: samples in the growth window.")
@click.option("--growth-min", type=click.IntRange(min=1), default=3, show_default=True,
              help="PD303: connections a group must gain over the window.")
@FORMAT_OPTION
def watch(url: str, timeout: float, runtime_dir: str | None, no_attribution: bool,
          interval: float, once: bool, iterations: int | None, report_path: str | None,
          state_path: str | None, near: float, idle_txn: float, idle: float,
          growth_samples: int, growth_min: int, fmt: str) -> None:
    """Poll the server at URL and report PD301-PD305; exit 1 when anything was found.

    PD301 near the limit, PD302 idle in transaction, PD303 a group's connections growing
    while its active ones stay flat, PD304 idle too long, PD305 connections rejected for the
    limit. For cron and CI: `watch URL --once --state FILE --report FILE`.
    """
    import os

    from ..server.watch import Thresholds, Watcher

    for option, path in (("--report", report_path), ("--state", state_path)):
        folder = os.path.dirname(os.path.abspath(path)) if path else ""
        if path and not os.path.isdir(folder):  # before connecting, not after a sample
            fail(f"{option} {path!r}: folder {folder!r} does not exist")
    try:
        watcher = Watcher(Thresholds(near=near / 100, idle_in_transaction_s=idle_txn,
                                     idle_s=idle, growth_samples=growth_samples,
                                     growth_min=growth_min))
    except ValueError as e:
        fail(str(e))
    samples = 1 if once else iterations
    found: list[Finding] = []
    seen: set[tuple[Any, ...]] = set()  # alarms raised at the previous sample
    color = use_color(sys.stdout)
    n = 0
    with probing(url, timeout) as first:
        probe = first
        if state_path:
            _load_state(watcher, state_path, probe.url)
        try:
            while True:
                snap, probe = _sample(probe, url, timeout, watcher, runtime_dir,
                                      not no_attribution)
                n += 1
                new = watcher.observe(snap)
                found.extend(new)
                if fmt == "text":
                    fresh = [f for f in new if alarm_key(f) not in seen]
                    seen = {alarm_key(f) for f in new}
                    click.echo(f"{time.strftime('%H:%M:%S')} {snap.total}/{snap.limit} "
                               f"connections, {len(new)} finding{'s' if len(new) != 1 else ''}")
                    if fresh:
                        click.echo(Report(fresh).render_text(color=color, stacks=False),
                                   nl=False)
                if report_path:
                    _write(Report(found, extra={"samples": n}), report_path)
                if state_path:
                    _save_state(watcher, state_path, probe.url)
                if samples is not None and n >= samples:
                    break
                time.sleep(interval)
        except KeyboardInterrupt:
            pass
        finally:
            if probe is not first:  # reconnected: `first` is closed by probing()
                probe.close()
    report = Report(found, extra={"samples": n})
    if fmt == "json":
        click.echo(report.to_json())
    elif not found:
        click.echo("pooldoctor: no findings")
    if found:
        raise SystemExit(EXIT_FINDINGS)


def _load_state(watcher: Any, path: str, server: str) -> None:
    import json

    try:
        with open(path, encoding="utf-8") as fh:
            state = json.load(fh)
    except FileNotFoundError:
        return
    except (OSError, ValueError) as e:
        fail(f"cannot read the watch state {path!r}: {e}")
    try:
        watcher.restore(state, server)
    except (KeyError, TypeError, ValueError, IndexError) as e:
        fail(f"the watch state {path!r} is damaged ({type(e).__name__}: {e}); remove it")


def _save_state(watcher: Any, path: str, server: str) -> None:
    import json
    import os

    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(watcher.state(server), fh)
        os.replace(tmp, path)
    except OSError as e:
        fail(f"cannot write the watch state {path!r}: {e.strerror}")


def alarm_key(f: Finding) -> tuple[Any, ...]:
    """What makes an alarm the same one from sample to sample (printed once while it lasts)."""
    d = f.details
    if f.code == "PD301":
        return (f.code,)
    if f.code == "PD303":
        return (f.code, tuple(sorted((d.get("group") or {}).items(), key=str)))
    if f.code in ("PD302", "PD304"):
        ids = tuple(sorted(c.get("id", 0) for c in d.get("connections") or ()))
        return (f.code, f.key(), ids)
    return (f.code, f.message)


def _sample(probe: Probe, url: str, timeout: float, watcher: Any, runtime_dir: str | None,
            attribution: bool) -> tuple[Snapshot, Probe]:
    """One snapshot; on a lost connection, reconnect (a refusal for the limit is PD305)."""
    from ..server.probes import open_probe

    try:
        return take_snapshot(probe, runtime_dir, attribution), probe
    except ServerError:
        probe.close()
    deadline = time.monotonic() + max(timeout, 1.0) * 3
    while True:
        try:
            probe = open_probe(url, timeout=timeout)
            return take_snapshot(probe, runtime_dir, attribution), probe
        except ServerError as e:
            if not refused_for_limit(str(e)) or time.monotonic() > deadline:
                raise CliError(str(e), EXIT_UNAVAILABLE) from None
            watcher.refused_connects += 1
            time.sleep(0.5)


_REFUSED = ("too many clients", "remaining connection slots are reserved",
            "(1040)", "too many connections")


def refused_for_limit(message: str) -> bool:
    """True when a connect error says the server's connection limit was reached."""
    text = message.lower()
    if "for role" in text or "for database" in text or "max_user_connections" in text:
        return False
    return any(s in text for s in _REFUSED)


def _write(report: Report, path: str) -> None:
    try:
        report.write(path)
    except OSError as e:
        fail(f"cannot write the report to {path!r}: {e.strerror}")

