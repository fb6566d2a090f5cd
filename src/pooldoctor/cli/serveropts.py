"""What the server commands share: the URL and its options, durations, opening the probe
and taking a snapshot with one-line errors."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from ..dbconnect import ServerError
from .common import EXIT_UNAVAILABLE, CliError, fail

if TYPE_CHECKING:  # the server package is imported only when a command runs
    from ..server.filters import ConnFilter
    from ..server.model import ServerConn, Snapshot
    from ..server.probe import Probe


class Duration(click.ParamType):  # type: ignore[type-arg]
    """Seconds, or a number with a unit: ``90``, ``1.5s``, ``10m``, ``2h``."""

    name = "duration"
    _RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
    _UNITS = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        if isinstance(value, (int, float)):
            return float(value)
        m = self._RE.match(str(value))
        if not m or float(m.group(1)) <= 0:
            self.fail(f"{value!r} is not a positive duration (e.g. 30, 90s, 10m, 2h)",
                      param, ctx)
        return float(m.group(1)) * self._UNITS[m.group(2)]


DURATION = Duration()


def server_args(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=5.0,
                      show_default=True, help="Seconds to wait for the server to answer.")(fn)
    fn = click.option("--runtime-dir", type=click.Path(file_okay=False),
                      help="Where guarded processes publish their holds (attribution); "
                           "default: $POOLDOCTOR_RUNTIME_DIR or the per-user runtime dir.")(fn)
    fn = click.option("--no-attribution", is_flag=True,
                      help="Do not look up the holding sites of guarded processes.")(fn)
    return click.argument("url")(fn)


def view_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    from ..server.filters import SORT_KEYS

    fn = click.option("--filter", "filters", multiple=True, metavar="KEY=GLOB",
                      help="Show only matching connections; keys: state, user, database, "
                           "application, client, id, holder (repeatable).")(fn)
    fn = click.option("--sort", "sort", type=click.Choice(sorted(SORT_KEYS)),
                      default="state-age", show_default=True,
                      help="Order of the connection list (ages: oldest first).")(fn)
    return click.option("--query-width", type=click.IntRange(min=10), default=60,
                        show_default=True, help="Characters of each statement shown.")(fn)


@contextmanager
def probing(url: str, timeout: float) -> Iterator[Probe]:
    from ..server.probes import open_probe

    try:
        probe = open_probe(url, timeout=timeout)
    except ServerError as e:
        raise CliError(str(e), EXIT_UNAVAILABLE) from None
    try:
        yield probe
    except ServerError as e:
        raise CliError(str(e), EXIT_UNAVAILABLE) from None
    finally:
        probe.close()


def take_snapshot(probe: Probe, runtime_dir: str | None, attribution: bool) -> Snapshot:
    snap = probe.snapshot()
    if attribution:
        from ..server.attribution import attribute, load

        attribute(snap, load(runtime_dir))
    return snap


def parse_filter(specs: tuple[str, ...]) -> ConnFilter:
    from ..server.filters import ConnFilter

    try:
        return ConnFilter().parse(specs)
    except ValueError as e:
        fail(str(e))


def shown_conns(snap: Snapshot, flt: ConnFilter, sort: str) -> list[ServerConn]:
    from ..server.filters import sort_conns

    return sort_conns((c for c in snap.conns if flt(c)), sort)

