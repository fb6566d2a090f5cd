"""What a rule reports: a code at a line and column, before it becomes a Finding."""

from __future__ import annotations

from ..record import FrozenRecord, OrderedRecord

_set = object.__setattr__


class Issue(OrderedRecord):
    """One lint result inside one file (line and column are 1-based); ordered by its fields."""

    __slots__ = _fields = ("code", "line", "column", "message", "function", "subject")
    code: str
    line: int
    column: int
    message: str
    function: str | None
    subject: str | None  # what the issue is about, for checks across files (PD206)

    def __init__(self, code: str, line: int, column: int, message: str,
                 function: str | None = None, subject: str | None = None) -> None:
        _set(self, "code", code)
        _set(self, "line", line)
        _set(self, "column", column)
        _set(self, "message", message)
        _set(self, "function", function)
        _set(self, "subject", subject)


class Kind(FrozenRecord):
    """A kind of resource and how it is closed."""

    __slots__ = _fields = ("code", "label", "noun", "with_closes", "driver", "slot")
    code: str  # PD201 (DB-API), PD202 (cursor), PD203 (SQLAlchemy)
    label: str  # what opened it, for messages: "sqlite3.connect()"
    noun: str  # "connection", "session", "cursor"
    with_closes: bool  # does `with x:` close it?
    driver: str
    slot: int  # -1: the value itself; n: item n of the tuple returned by a factory

    def __init__(self, code: str, label: str, noun: str, with_closes: bool = True,
                 driver: str = "", slot: int = -1) -> None:
        _set(self, "code", code)
        _set(self, "label", label)
        _set(self, "noun", noun)
        _set(self, "with_closes", with_closes)
        _set(self, "driver", driver)
        _set(self, "slot", slot)

    def replace(self, **changes: object) -> Kind:
        """A copy with ``changes`` (``slot=`` for an item of a returned tuple)."""
        new = super().replace(**changes)
        assert isinstance(new, Kind)
        return new
