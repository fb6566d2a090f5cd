"""Start the guard from environment variables set by `pooldoctor run` (and the demo)."""

from __future__ import annotations

import errno
import json
import os
import sys
from typing import Any

OPTIONS_ENV = "POOLDOCTOR_OPTIONS"  # JSON object of instrument() keyword arguments
_started = False


def start() -> None:
    """Install the guard once per process tree; never raises into the program."""
    global _started
    if _started:
        return
    _started = True
    try:
        from .. import api

        opts: dict[str, Any] = json.loads(os.environ.get(OPTIONS_ENV) or "{}")
        api.instrument(**opts)
        _extras()
    except Exception as e:
        sys.stderr.write(f"pooldoctor: the guard could not start: {type(e).__name__}: {e}\n")


def _extras() -> None:
    """Metrics endpoint and audit log, when `pooldoctor run` asked for them."""
    port = os.environ.get("POOLDOCTOR_METRICS_PORT")
    if port:
        try:
            from ..metrics import prometheus

            prometheus.serve(int(port))
            sys.stderr.write(f"pooldoctor: metrics on http://127.0.0.1:{port}/metrics "
                             f"(pid {os.getpid()})\n")
        except OSError as e:
            if e.errno == errno.EADDRINUSE and prometheus.multiprocess_dir():
                # another process of this run serves the sum of all; just record
                prometheus._ensure_mirror()
            else:
                sys.stderr.write(f"pooldoctor: metrics not served on port {port}: {e}\n")
        except Exception as e:
            sys.stderr.write(f"pooldoctor: metrics not served on port {port}: {e}\n")
    dport = os.environ.get("POOLDOCTOR_DASHBOARD_PORT")
    if dport:  # the first process binds the port; the others of the run skip quietly
        try:
            from ..dashboard.serve import start_in_thread

            start_in_thread(int(dport))
        except Exception as e:
            sys.stderr.write(f"pooldoctor: dashboard not served on port {dport}: {e}\n")
    path = os.environ.get("POOLDOCTOR_AUDIT_LOG")
    if path:
        try:
            from .. import audit

            slow = os.environ.get("POOLDOCTOR_AUDIT_SLOW_MS")
            audit.enable(path=path, params=os.environ.get("POOLDOCTOR_AUDIT_PARAMS") == "1",
                         sample=float(os.environ.get("POOLDOCTOR_AUDIT_SAMPLE", "1")),
                         slow_ms=float(slow) if slow else None)
        except Exception as e:
            sys.stderr.write(f"pooldoctor: audit log not enabled: {e}\n")
