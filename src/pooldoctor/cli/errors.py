"""Exit codes and the one-line error of every command, without click (a one-file lint runs
without importing it: ``lintrun.py``)."""

from __future__ import annotations

import sys

# exit codes (shared by every command)
EXIT_OK = 0
EXIT_FINDINGS = 1  # lint, watch, advise, run --fail-on-findings: something was found
EXIT_USAGE = 2  # bad arguments, bad URL, unreadable config
EXIT_UNAVAILABLE = 3  # server unreachable, authentication failed, missing privilege
EXIT_INTERNAL = 70  # a bug of ours (EX_SOFTWARE)


class CommandError(Exception):
    """An error for the person at the terminal: one masked line, a chosen exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        from ..urls import mask_text  # urllib.parse only when there is an error to print

        super().__init__(mask_text(message))
        self.message = mask_text(message)
        self.exit_code = exit_code

    def show(self) -> None:
        print(f"pooldoctor: error: {self.message}", file=sys.stderr, flush=True)
