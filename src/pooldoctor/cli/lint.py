"""`pooldoctor lint PATHS`: find leak patterns in source code (PD201-PD211) without running it.

The options as click reads them (``--help``, errors); the work is in ``lintrun.py``, which also
reads the usual command lines without click."""

from __future__ import annotations

import click

from .common import fail
from .errors import CommandError


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "sarif"]), default="text",
              show_default=True, help="text: path:line:col: CODE message; json: the "
              "pooldoctor.report/1 report; sarif: SARIF 2.1.0 for code scanning.")
@click.option("--select", multiple=True, metavar="CODES",
              help="Only these codes or prefixes (comma-separated, repeatable), e.g. PD201,PD203.")
@click.option("--ignore", multiple=True, metavar="CODES",
              help="Leave out these codes or prefixes (comma-separated, repeatable).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=str),
              help="A pyproject.toml to read [tool.pooldoctor.lint] from (default: the nearest "
              "one above the working directory).")
@click.option("--isolated", is_flag=True, help="Ignore every configuration file.")
@click.option("--no-gitignore", is_flag=True, help="Do not skip files matched by .gitignore.")
@click.option("--exclude", multiple=True, metavar="PATTERN",
              help="Skip paths matching this .gitignore-style pattern (repeatable).")
@click.option("--force-exclude", is_flag=True,
              help="Apply the exclude patterns to files named on the command line too "
              "(for pre-commit).")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings.")
@click.option("-q", "--quiet", is_flag=True, help="No summary line on stderr.")
def lint(paths: tuple[str, ...], fmt: str, select: tuple[str, ...], ignore: tuple[str, ...],
         config_path: str | None, isolated: bool, no_gitignore: bool, exclude: tuple[str, ...],
         force_exclude: bool, exit_zero: bool, quiet: bool) -> None:
    """Check Python PATHS (files or folders; default: .) for connection leak patterns.

    Exit status: 0 clean, 1 findings, 2 usage error. A file that cannot be parsed (syntax
    error, binary, bad encoding) is reported on stderr as `path: cannot parse: ...`; it is not
    a finding and does not change the exit status.
    """
    from .lintrun import run

    try:
        code = run(paths, fmt, select, ignore, config_path, isolated, no_gitignore, exclude,
                   force_exclude, exit_zero, quiet)
    except CommandError as e:
        fail(e.message, e.exit_code)
    raise SystemExit(code)
