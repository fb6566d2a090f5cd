"""`pooldoctor lint` without click: its work, and a parser for the command lines it is run
with (a pre-commit hook pays for every import: click alone is about as much as the lint).

``parse(args)`` understands the options ``lint.py`` declares to click, spelt exactly; it
returns None for anything else (``--help``, an unknown or misspelt option, a missing value, a
bad choice), and the command then goes through click, which says what is wrong.
``tests/unit/test_lint_fastpath.py`` checks both give the same parameters.
"""

from __future__ import annotations

import os
import sys

from .errors import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, CommandError

FORMATS = ("text", "json", "sarif")

# option spelling -> (parameter, kind): "flag", "one" (a value, the last wins), "many"
OPTIONS: dict[str, tuple[str, str]] = {
    "--format": ("fmt", "one"),
    "--select": ("select", "many"),
    "--ignore": ("ignore", "many"),
    "--config": ("config_path", "one"),
    "--isolated": ("isolated", "flag"),
    "--no-gitignore": ("no_gitignore", "flag"),
    "--exclude": ("exclude", "many"),
    "--force-exclude": ("force_exclude", "flag"),
    "--exit-zero": ("exit_zero", "flag"),
    "-q": ("quiet", "flag"),
    "--quiet": ("quiet", "flag"),
}


def defaults() -> dict[str, object]:
    """The parameters of a bare ``pooldoctor lint`` (as click passes them)."""
    return {"paths": (), "fmt": "text", "select": (), "ignore": (), "config_path": None,
            "isolated": False, "no_gitignore": False, "exclude": (), "force_exclude": False,
            "exit_zero": False, "quiet": False}


def parse(args: list[str]) -> dict[str, object] | None:
    """The lint parameters of ``args``, or None when click must read them."""
    params = defaults()
    paths: list[str] = []
    many: dict[str, list[str]] = {"select": [], "ignore": [], "exclude": []}
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            paths.extend(args[i:])
            break
        if not arg.startswith("-"):
            if not arg:
                return None
            paths.append(arg)
            continue
        name, eq, value = arg.partition("=")
        spec = OPTIONS.get(name)
        if spec is None or (eq and (spec[1] == "flag" or not name.startswith("--"))):
            return None
        dest, kind = spec
        if kind == "flag":
            params[dest] = True
            continue
        if not eq:
            if i >= len(args):
                return None
            value = args[i]
            i += 1
        if not value or value.startswith("-"):
            return None
        if kind == "many":
            many[dest].append(value)
        else:
            params[dest] = value
    if params["fmt"] not in FORMATS:
        return None
    config = params["config_path"]
    if isinstance(config, str) and os.path.isdir(config):
        return None  # click's message: the file is a directory
    params["paths"] = tuple(paths)
    for dest, values in many.items():
        params[dest] = tuple(values)
    return params


def run(paths: tuple[str, ...], fmt: str, select: tuple[str, ...], ignore: tuple[str, ...],
        config_path: str | None, isolated: bool, no_gitignore: bool, exclude: tuple[str, ...],
        force_exclude: bool, exit_zero: bool, quiet: bool) -> int:
    """Lint ``paths``, print the results; the exit status (CommandError for a usage error)."""
    from ..lint import lint_paths
    from ..lint.config import Config, ConfigError, load_config, split_codes
    from ..lint.discovery import compile_pattern
    from ..lint.formats import render_json, render_sarif, render_text, summary

    if isolated and config_path:
        raise CommandError("--config and --isolated contradict each other (--isolated ignores "
                           "every configuration file)", EXIT_USAGE)
    try:
        config = Config() if isolated else load_config(config_path)
        if select:
            config.select = split_codes(select)
            if not config.select:
                raise CommandError("--select names no code (e.g. --select PD201,PD203)")
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
        raise CommandError(str(e), EXIT_USAGE) from None
    targets = list(paths) or ["."]
    for t in targets:
        if not os.path.exists(t):
            raise CommandError(f"path {t} does not exist", EXIT_USAGE)
    result = lint_paths(targets, config, codes)
    for path, reason in result.errors():
        print(f"{path}: {reason}", file=sys.stderr, flush=True)
    if fmt == "json":
        print(render_json(result), flush=True)
    elif fmt == "sarif":
        print(render_sarif(result), flush=True)
    else:
        text = render_text(result)
        if text:
            sys.stdout.write(text)
    sys.stdout.flush()
    if not quiet:
        print(summary(result), file=sys.stderr, flush=True)
    if result.issues() and not exit_zero:
        return EXIT_FINDINGS
    return EXIT_OK
