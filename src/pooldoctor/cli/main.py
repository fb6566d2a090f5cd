"""Entry point: a click group whose commands are imported only when used."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from .. import __version__
from .common import EXIT_USAGE, CliError

# name -> "module:attribute"; a command whose module is missing is simply not listed.
COMMANDS: dict[str, str] = {
    "run": "pooldoctor.cli.run:run",
    "demo": "pooldoctor.cli.demo:demo",
    "explain": "pooldoctor.cli.explain:explain",
    "lint": "pooldoctor.cli.lint:lint",
    "snapshot": "pooldoctor.cli.server:snapshot",
    "top": "pooldoctor.cli.server:top",
    "watch": "pooldoctor.cli.server:watch",
    "kill": "pooldoctor.cli.server:kill",
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


class LazyGroup(click.Group):
    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from SUMMARIES (a command imported already speaks for itself)."""
        rows = []
        for name in self.list_commands(ctx):
            module = COMMANDS[name].split(":")[0]
            if name in SUMMARIES and module not in sys.modules:
                rows.append((name, SUMMARIES[name]))
                continue
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(formatter.width)))
        if rows:  # one line each, cut at a word with "..." as click cuts its own short help
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            rows = [(name, _one_line(text, limit)) for name, text in rows]
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(n for n in COMMANDS if self._find(n) is not None)

    def _find(self, name: str) -> Any:
        import importlib.util

        module = COMMANDS[name].split(":")[0]
        try:
            return importlib.util.find_spec(module)
        except ModuleNotFoundError:
            return None

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None or self._find(cmd_name) is None:
            return None
        module, attr = target.split(":")
        cmd: click.Command = getattr(importlib.import_module(module), attr)
        return cmd


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"],
                                             "max_content_width": 120})
@click.version_option(__version__, prog_name="pooldoctor")
def cli() -> None:
    """Find, explain and stop database connection leaks."""


def main(argv: list[str] | None = None) -> None:
    """Console entry point: errors are one line, never a traceback (POOLDOCTOR_DEBUG=1 shows it)."""
    try:
        cli.main(args=argv, prog_name="pooldoctor", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("pooldoctor: aborted", err=True)
        sys.exit(130)
    except click.UsageError as e:  # one line, like every other error (no usage block)
        if type(e).__name__ == "NoArgsIsHelpError":  # `pooldoctor` alone: the help
            e.show()
            sys.exit(e.exit_code)
        from ..urls import mask_text

        where = e.ctx.command_path if e.ctx is not None else "pooldoctor"
        click.echo(f"pooldoctor: error: {mask_text(e.format_message())} "
                   f"(see '{where} --help')", err=True)
        sys.exit(e.exit_code)
    except CliError as e:
        e.show()
        sys.exit(e.exit_code)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as e:  # a bug of ours: still one line unless asked for more
        from ..urls import BadURL, mask_text  # not at import: a lint run needs no URL parser

        if isinstance(e, BadURL):
            click.echo(f"pooldoctor: error: {e}", err=True)
            sys.exit(EXIT_USAGE)
        if os.environ.get("POOLDOCTOR_DEBUG"):
            raise
        click.echo(f"pooldoctor: internal error: {mask_text(f'{type(e).__name__}: {e}')} "
                   "(set POOLDOCTOR_DEBUG=1 for the traceback)", err=True)
        sys.exit(70)
    else:
        sys.exit(0)
