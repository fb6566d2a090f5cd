"""Run a command with the guard installed in every Python process it starts.

The guard is loaded by a ``sitecustomize`` put first on PYTHONPATH; options travel in
``POOLDOCTOR_OPTIONS``; every process (forked workers included) appends its findings as they
happen to one JSON-lines file, merged here when the command ends.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..findings import CWD_ENV
from ..reports import Report, merge_pools
from ..sinks import EVENTS_ENV, findings_from_events, read_events
from .boot import OPTIONS_ENV

BOOTSTRAP_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bootstrap")


@dataclass
class RunResult:
    exit_code: int
    report: Report
    internal_errors: int


def guarded_env(options: dict[str, Any], events_path: str,
                base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    paths = [BOOTSTRAP_DIR] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env[OPTIONS_ENV] = json.dumps(options)
    env[EVENTS_ENV] = events_path
    try:  # the program may change or remove its own: sites are shown relative to this one
        env.setdefault(CWD_ENV, os.getcwd())
    except OSError:
        pass
    return env


def resolve_command(argv: Sequence[str]) -> list[str]:
    """A ``.py`` file runs under this interpreter; anything else runs as given."""
    if not argv:
        raise ValueError("no command given; usage: pooldoctor run [OPTIONS] -- CMD [ARGS]...")
    first = argv[0]
    if first.endswith(".py"):
        return [sys.executable, *argv]
    if shutil.which(first) is None and not os.path.exists(first):
        raise FileNotFoundError(f"command not found: {first!r}")
    return list(argv)


def run_guarded(argv: Sequence[str], options: dict[str, Any],
                extra_env: dict[str, str] | None = None, cwd: str | None = None,
                capture: bool = False) -> tuple[RunResult, subprocess.CompletedProcess[str] | None]:
    """Run ``argv`` under the guard; return the exit code and the merged report."""
    cmd = resolve_command(argv)
    tmp = tempfile.mkdtemp(prefix="pooldoctor-run-")
    events_path = os.path.join(tmp, "events.jsonl")
    env = guarded_env(options, events_path)
    if extra_env:
        env.update(extra_env)
    completed: subprocess.CompletedProcess[str] | None = None
    try:
        if capture:
            completed = subprocess.run(cmd, env=env, cwd=cwd, text=True, capture_output=True,
                                       check=False)
            code = completed.returncode
        else:
            code = _run_forwarding_signals(cmd, env, cwd)
        events = list(read_events(events_path))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    pools = merge_pools(p for e in events if e.get("event") == "pools" for p in e["pools"])
    internal = sum(int(e.get("internal_errors", 0)) for e in events if e.get("event") == "pools")
    report = Report(findings_from_events(events), pools)
    return RunResult(code, report, internal), completed


FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
SI_KERNEL = 0x80  # siginfo si_code of a signal the kernel sent (a terminal's ^C, hang-up)


def _run_forwarding_signals(cmd: list[str], env: dict[str, str], cwd: str | None) -> int:
    """Run ``cmd`` and pass on the signals `run` gets, each once.

    A terminal sends ^C (and a hang-up) to its whole foreground process group: a child in
    our group already has it, and sending it again interrupts the program's own clean-up
    (a second KeyboardInterrupt while it prints its traceback). Where the platform tells who
    sent a signal (``sigtimedwait``), those are not sent again; signals from ``kill`` are.
    """
    early: list[int] = []

    def record(signum: int, _frame: Any) -> None:  # until the child exists and we wait
        early.append(signum)

    old = {s: signal.signal(s, record) for s in FORWARDED}
    try:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd)
        if hasattr(signal, "sigtimedwait") and hasattr(signal, "pthread_sigmask"):
            return _wait_forwarding(proc, early)
        return _wait_with_handlers(proc, early)
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _send(proc: subprocess.Popen[Any], signum: int) -> None:
    try:
        proc.send_signal(signum)
    except ProcessLookupError:
        pass


def _same_group(proc: subprocess.Popen[Any]) -> bool:
    try:
        return os.getpgid(proc.pid) == os.getpgrp()
    except OSError:
        return False


def _wait_forwarding(proc: subprocess.Popen[Any], early: list[int]) -> int:
    watched = {*FORWARDED, signal.SIGCHLD}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    try:
        for signum in early:
            _send(proc, signum)
        while True:
            code = proc.poll()
            if code is not None:
                return code
            info = signal.sigtimedwait(watched, 0.5)
            if info is None or info.si_signo == signal.SIGCHLD:
                continue
            if info.si_code == SI_KERNEL and _same_group(proc):
                continue  # the terminal delivered it to the child too
            _send(proc, info.si_signo)
    finally:
        while signal.sigtimedwait(watched, 0) is not None:
            pass  # taken here: not raised in `run` once unblocked
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _wait_with_handlers(proc: subprocess.Popen[Any], early: list[int]) -> int:
    """Where the sender is unknown: pass every signal on (a terminal's may arrive twice)."""
    for signum in early:
        _send(proc, signum)
    for s in FORWARDED:
        signal.signal(s, lambda signum, _frame: _send(proc, signum))
    while True:
        try:
            return proc.wait()
        except KeyboardInterrupt:
            continue
