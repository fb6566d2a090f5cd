"""Entry point: the click group of ``group.py``, whose commands are imported only when used;
a one-file lint as a pre-commit hook runs it (``lintrun.py``) without importing click."""

from __future__ import annotations

import os
import sys

from .commands import COMMANDS, SUMMARIES
from .errors import EXIT_INTERNAL, EXIT_USAGE, CommandError

TYPE_CHECKING = False  # no typing at run time (start-up: docs/benchmarks.md)
if TYPE_CHECKING:
    from typing import Any, NoReturn

    from .group import LazyGroup

__all__ = ["COMMANDS", "SUMMARIES", "cli", "main"]


def __getattr__(name: str) -> Any:
    """``cli`` (the click group) and ``LazyGroup``, imported when asked for."""
    if name in ("cli", "LazyGroup"):
        from . import group

        return getattr(group, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


cli: LazyGroup  # the click group (module attribute, from group.py)


def main(argv: list[str] | None = None) -> NoReturn:
    """Console entry point: errors are one line, never a traceback (POOLDOCTOR_DEBUG=1 shows it)."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ["lint"]:
        from .lintrun import parse

        params = parse(args[1:])
        if params is not None:
            _lint(params)
    _click(args)


def _lint(params: dict[str, Any]) -> NoReturn:
    """``pooldoctor lint`` with parameters ``lintrun.parse`` read: no click on this path."""
    from .lintrun import run

    try:
        code = run(**params)
    except CommandError as e:
        e.show()
        sys.exit(e.exit_code)
    except KeyboardInterrupt:  # as click says it: an empty line, then the word
        print("\npooldoctor: aborted", file=sys.stderr)
        sys.exit(130)
    except Exception as e:
        _internal_error(e)
    sys.exit(code)


def _internal_error(e: Exception) -> NoReturn:
    """A bug of ours (or a bad URL): still one line unless asked for more."""
    from ..urls import BadURL, mask_text  # not at import: a lint run needs no URL parser

    if isinstance(e, BadURL):
        print(f"pooldoctor: error: {e}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    if os.environ.get("POOLDOCTOR_DEBUG"):
        raise e
    print(f"pooldoctor: internal error: {mask_text(f'{type(e).__name__}: {e}')} "
          "(set POOLDOCTOR_DEBUG=1 for the traceback)", file=sys.stderr)
    sys.exit(EXIT_INTERNAL)


def _click(args: list[str]) -> NoReturn:
    import click

    from .common import CliError
    from .group import cli

    try:
        cli.main(args=args, prog_name="pooldoctor", standalone_mode=False)
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
    except (CliError, CommandError) as e:
        e.show()
        sys.exit(e.exit_code)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as e:
        _internal_error(e)
    else:
        sys.exit(0)
