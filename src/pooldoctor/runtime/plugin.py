"""SQLAlchemy ``CreateEnginePlugin``: ``create_engine(url, plugins=["pooldoctor"])`` or
``?plugin=pooldoctor`` in the URL guards that engine, with no other code change.

Options may ride in the URL query, prefixed ``pooldoctor_``:
``?plugin=pooldoctor&pooldoctor_leak_threshold=5&pooldoctor_name=orders``;
``pooldoctor_tag_sql=1`` appends statement tags (runtime/sqltags.py).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import CreateEnginePlugin
from sqlalchemy.engine.url import URL

_FLOATS = {"leak_threshold", "transaction_threshold", "wait_threshold"}
_INTS = {"many_threshold", "engine_threshold", "stack_depth"}
_STRS = {"name", "fork_safety"}
_BOOLS = {"tag_sql"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
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
                elif name in _BOOLS:
                    if value.lower() not in _TRUE | _FALSE:
                        raise ValueError(f"pooldoctor option {key!r} in the engine url must be "
                                         f"1 or 0, got {value!r}")
                    self.options[name] = value.lower() in _TRUE
                else:
                    raise KeyError(name)
            except KeyError:
                raise ValueError(f"unknown pooldoctor option {key!r} in the engine url") from None
            except ValueError as e:
                if name in _BOOLS:
                    raise
                raise ValueError(f"pooldoctor option {key!r} in the engine url must be a "
                                 f"number, got {value!r}") from e
        from ..guard import Options

        try:  # bad values fail here, at create_engine(), not later as an internal error
            Options(**{k: v for k, v in self.options.items()
                       if k not in ("name", "tag_sql")}).validate()
        except ValueError as e:
            raise ValueError(f"pooldoctor option in the engine url: {e}") from None

    def update_url(self, url: URL) -> URL:
        return url.difference_update_query(self._keys)

    def engine_created(self, engine: Any) -> None:
        from ..api import instrument, set_tag_sql
        from ..guard import GUARD
        from . import sqlalchemy as sa

        try:
            if GUARD.active:
                sa.install_engine(engine, name=self.options.get("name"))
                if self.options.get("tag_sql"):
                    set_tag_sql(True)
            else:
                instrument(engine, **self.options)
        except Exception:
            GUARD.internal_error("sqlalchemy plugin")
