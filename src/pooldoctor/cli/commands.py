"""The commands: where each one lives and its one-line summary (no click: ``main.py`` and
``group.py`` share them)."""

from __future__ import annotations

# name -> "module:attribute"; a command whose module is missing is simply not listed.
COMMANDS: dict[str, str] = {
    "run": "pooldoctor.cli.run:run",
    "demo": "pooldoctor.cli.demo:demo",
    "explain": "pooldoctor.cli.explain:explain",
    "lint": "pooldoctor.cli.lint:lint",
    "snapshot": "pooldoctor.cli.server:snapshot",
    "top": "pooldoctor.cli.server:top",
    "watch": "pooldoctor.cli.watch:watch",
    "kill": "pooldoctor.cli.kill:kill",
    "advise": "pooldoctor.cli.advise:advise",
    "dashboard": "pooldoctor.cli.dashboard:dashboard",
}


def _one_line(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters, cut at a word and marked with "..."."""
    if len(text) <= limit:
        return text
    return text[:max(limit - 3, 1)].rsplit(" ", 1)[0].rstrip(" ,;:") + "..."


# the one-line summaries `pooldoctor --help` lists, so that listing imports no command module
# (each is the first sentence of its command's help: tests/unit/test_cli_first_hour.py)
SUMMARIES: dict[str, str] = {
    "advise": "Check pool settings against a server's limits and recommend a configuration.",
    "dashboard": "Serve a live dashboard on http://HOST:PORT/ until Ctrl-C.",
    "demo": "Run short scenarios of connection leaks under the guard and show the findings.",
    "explain": "Print the documentation of finding CODES such as PD101.",
    "kill": "Terminate the connections of the server at URL that match the filter.",
    "lint": "Check Python PATHS (files or folders; default: .) for connection leak patterns.",
    "run": "Run CMD (a script, `python -m ...`, gunicorn, pytest...) under the guard.",
    "snapshot": "One look at every connection the server at URL holds (idle ones included).",
    "top": "A live view of the server at URL, refreshed every --interval seconds.",
    "watch": "Poll the server at URL and report PD301-PD305; exit 1 when anything was found.",
}
