"""`pooldoctor lint PATHS`: find leak patterns in source code (PD201-PD211) without running it."""

from __future__ import annotations

import click

from .common import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, fail


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
    import os
    import sys

    from ..lint import lint_paths
    from ..lint.config import Config, ConfigError, load_config, split_codes
    from ..lint.discovery import compile_pattern
    from ..lint.formats import render_json, render_sarif, render_text, summary

    if isolated and config_path:
        fail("--config and --isolated contradict each other (--isolated ignores every "
             "configuration file)", EXIT_USAGE)
    try:
        config = Config() if isolated else load_config(config_path)
        if select:
            config.select = split_codes(select)
            if not config.select:
                fail("--select names no code (e.g. --select PD201,PD203)", EXIT_USAGE)
        if ignore:
            config.ignore = config.ignore + split_codes(ignore)
        for pat in exclude:
            compiled = compile_pattern(pat, os.getcwd())
            if compiled is not None:
                config.exclude.append(compiled)
        if no_gitignore:
            config.respect_gitignore = False
        config.force_exclude = force_exclude
        codes = config.codes()
    except ConfigError as e:
        fail(str(e), EXIT_USAGE)
    targets = list(paths) or ["."]
    for t in targets:
        if not os.path.exists(t):
            fail(f"path {t} does not exist", EXIT_USAGE)
    run = lint_paths(targets, config, codes)
    for path, reason in run.errors():
        click.echo(f"{path}: {reason}", err=True)
    if fmt == "json":
        click.echo(render_json(run))
    elif fmt == "sarif":
        click.echo(render_sarif(run))
    else:
        text = render_text(run)
        if text:
            click.echo(text, nl=False)
    if not quiet:
        click.echo(summary(run), err=True)
    sys.stdout.flush()
    if run.issues() and not exit_zero:
        raise SystemExit(EXIT_FINDINGS)
    raise SystemExit(EXIT_OK)
