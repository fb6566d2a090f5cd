"""Helpers shared by the commands: one-line errors, exit codes, output formats."""

from __future__ import annotations

import sys
from typing import IO, Any, NoReturn

import click

from .errors import EXIT_FINDINGS, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE

__all__ = ["EXIT_FINDINGS", "EXIT_OK", "EXIT_UNAVAILABLE", "EXIT_USAGE", "FORMAT_OPTION",
           "CliError", "fail"]


class CliError(click.ClickException):
    """An error for the person at the terminal: one masked line, a chosen exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        from ..urls import mask_text  # urllib.parse only when there is an error to print

        super().__init__(mask_text(message))
        self.exit_code = exit_code  # type: ignore[misc]

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"pooldoctor: error: {self.format_message()}", file=file or sys.stderr)


def fail(message: str, exit_code: int = EXIT_USAGE) -> NoReturn:
    raise CliError(message, exit_code)


FORMAT_OPTION = click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
    help="Output format; json is the pooldoctor.report/1 schema.")
