"""The click group: commands imported only when used, listed from their one-line summaries."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from .. import __version__
from .commands import COMMANDS, SUMMARIES, _one_line


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
