"""`pooldoctor explain CODE`: print a code's documentation page."""

from __future__ import annotations

import click

from ..findings import CATALOGUE, doc_page
from .common import fail


@click.command()
@click.argument("codes", nargs=-1)
@click.option("--list", "list_", is_flag=True, help="List every code with its name.")
def explain(codes: tuple[str, ...], list_: bool) -> None:
    """Print the documentation of finding CODES such as PD101.

    What each code means, why it hurts, an example, the fix and known false positives.
    """
    if list_ or not codes:
        for c in CATALOGUE.values():
            click.echo(f"{c.code}  {c.name:<32} {c.title}")
        return
    for raw in codes:
        code = raw.upper()
        if code not in CATALOGUE:
            fail(f"unknown code {raw!r}; `pooldoctor explain --list` shows them all")
        page = doc_page(code)
        if page is None:
            c = CATALOGUE[code]
            page = f"# {c.code} {c.name}\n\n{c.title}.\n\nFix: {c.hint}.\n"
        click.echo(page.rstrip("\n"))
