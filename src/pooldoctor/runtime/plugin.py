"""SQLAlchemy ``CreateEnginePlugin``: ``create_engine(url, plugins=["pooldoctor"])`` or
``?plugin=pooldoctor`` in the URL guards that engine, with no other code change.

Options may ride in the URL query, prefixed ``pooldoctor_``:
``?plugin=pooldoctor&pooldoctor_leak_threshold=5&pooldoctor_name=orders``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import CreateEnginePlugin
from sqlalchemy.engine.url import URL

_FLOATS = {"leak_threshold", "transaction_threshold", "wait_threshold"}
_INTS = {"many_threshold", "engine_threshold", "stack_depth"}
_STRS = {"name", "fork_safety"}
PREFIX = "pooldoctor_"


class PooldoctorPlugin(CreateEnginePlugin):
    """Guard the engine being created."""

    def __init__(self, url: URL, kwargs: dict[str, Any]) -> None:
        super().__init__(url, kwargs)
        self.options: dict[str, Any] = {}
        self._keys = [k for k in url.query if k.startswith(PREFIX)]
        for key in self._keys:
            name = key[len(PREFIX):]
            raw = url.query[key]
            value = raw[-1] if isinstance(raw, tuple) else raw
            try:
                if name in _FLOATS:
                    self.options[name] = float(value)
                elif name in _INTS:
                    self.options[name] = int(value)
                elif name in _STRS:
                    self.options[name] = value
                else:
                    raise KeyError(name)
            except KeyError:
                raise ValueError(f"unknown pooldoctor option {key!r} in the engine url") from None
            except ValueError:
                raise ValueError(f"pooldoctor option {key!r} in the engine url must be a "
                                 f"number, got {value!r}") from None
        from ..guard import Options

        try:  # bad values fail here, at create_engine(), not later as an internal error
            Options(**{k: v for k, v in self.options.items() if k != "name"}).validate()
        except ValueError as e:
            raise ValueError(f"pooldoctor option in the engine url: {e}") from None

    def update_url(self, url: URL) -> URL:
        return url.difference_update_query(self._keys)

    def engine_created(self, engine: Any) -> None:
        from ..api import instrument
        from ..guard import GUARD
        from . import sqlalchemy as sa

        try:
            if GUARD.active:
                sa.install_engine(engine, name=self.options.get("name"))
            else:
                instrument(engine, **self.options)
        except Exception:
            GUARD.internal_error("sqlalchemy plugin")
