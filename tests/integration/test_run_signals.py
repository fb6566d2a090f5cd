"""Ctrl-C under `pooldoctor run`: the program gets SIGINT once.

`run` runs in a real pseudo-terminal (it is the session leader and the terminal's foreground
group, as in a shell), so writing ^C to the terminal makes the kernel send SIGINT to the
whole group: to `run` and to the program. A signal sent to `run` alone (``kill``) is passed
on, also once.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="pty and sigtimedwait: Linux")

PROGRAM = """
import os, signal, sys, time
count = []
signal.signal(signal.SIGINT, lambda *a: count.append(1))
print("ready", flush=True)
deadline = time.monotonic() + 30
while not count and time.monotonic() < deadline:
    time.sleep(0.01)
# a second SIGINT, if one is coming, follows the first at once (run forwards it)
end = time.monotonic() + 1.0
while time.monotonic() < end:
    time.sleep(0.01)
open(sys.argv[1], "w").write(str(len(count)))
"""


def read_until(fd: int, text: bytes, timeout: float = 60) -> bytes:
    out = b""
    deadline = time.monotonic() + timeout
    while text not in out:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{text!r} not seen in {out!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the terminal's other side is closed
                break
            if not chunk:
                break
            out += chunk
    return out


def one_run(tmp_path: Path, how: str) -> tuple[int, str]:
    """Run the program under `run` in a pty, interrupt it; its SIGINT count and exit."""
    script = tmp_path / "prog.py"
    script.write_text(PROGRAM)
    count_file = tmp_path / "count"
    count_file.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "pooldoctor", "run", "-q", "--report",
            str(tmp_path / "r.json"), "--", sys.executable, str(script), str(count_file)]
    pid, fd = pty.fork()
    if pid == 0:  # the child: session leader with the pty as its controlling terminal
        try:
            os.execv(sys.executable, argv)
        finally:
            os._exit(127)
    try:
        read_until(fd, b"ready")
        if how == "terminal":
            os.write(fd, b"\x03")  # the line discipline sends SIGINT to the foreground group
        else:
            os.kill(pid, signal.SIGINT)  # to `run` only
        read_until(fd, b"\x00never", timeout=60)  # until the terminal closes
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), count_file.read_text()


@pytest.mark.parametrize("how", ["terminal", "kill"])
def test_ctrl_c_reaches_the_program_once(tmp_path: Path, how: str) -> None:
    for _ in range(8 if how == "terminal" else 3):
        code, count = one_run(tmp_path, how)
        assert (code, count) == (0, "1")
