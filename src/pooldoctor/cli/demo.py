"""`pooldoctor demo`: every finding, on an embedded SQLite database, no server needed."""

from __future__ import annotations

import json
import sys

import click

from ..reports import use_color
from .common import EXIT_FINDINGS, fail


@click.command()
@click.argument("names", nargs=-1)
@click.option("--list", "list_", is_flag=True, help="List the scenarios and exit.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def demo(names: tuple[str, ...], list_: bool, fmt: str) -> None:
    """Run short scenarios of connection leaks under the guard and show the findings.

    Each scenario runs in its own process on a SQLite file in a temporary folder.
    """
    from ..demo.runner import available, run_one

    scenarios = available()
    if list_:
        for name, mod in scenarios.items():
            click.echo(f"{name:<18} {mod.TITLE}  [{', '.join(mod.EXPECT)}]")
        return
    unknown = [n for n in names if n not in scenarios]
    if unknown:
        fail(f"unknown scenario {unknown[0]!r}; `pooldoctor demo --list` shows them")
    chosen = list(names) or list(scenarios)
    color = use_color(sys.stdout)
    outcomes = []
    for name in chosen:
        o = run_one(name, scenarios[name])
        outcomes.append(o)
        if fmt == "text":
            _show(o, color)
    if fmt == "json":
        click.echo(json.dumps({o.name: {"title": o.title, "expected": o.expected,
                                        "missing": o.missing, "report": o.report.to_dict()}
                               for o in outcomes}, indent=2))
    bad = [o for o in outcomes if o.missing]
    if fmt == "text":
        seen = sorted({c for o in outcomes for c in o.report.codes()})
        click.echo(f"demo: {len(outcomes)} scenario(s), findings shown: {', '.join(seen)}")
    if bad:
        for o in bad:
            click.echo(f"demo: scenario {o.name!r} did not produce {', '.join(o.missing)}",
                       err=True)
            if o.output:
                click.echo(o.output.rstrip(), err=True)
        sys.exit(EXIT_FINDINGS)


def _show(o: object, color: bool) -> None:
    from ..demo.runner import Outcome

    assert isinstance(o, Outcome)
    rule = "-" * 78
    title = f"{o.name}: {o.title}"
    click.echo(click.style(title, bold=True) if color else title)
    click.echo(rule)
    for line in o.output.splitlines():
        if line.startswith("the program saw:"):
            click.echo(f"  {line}")
    click.echo(o.report.render_text(color=color, stacks=True).rstrip())
    click.echo("")
