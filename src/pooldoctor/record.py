"""``Record``: the value semantics of a small data class (equality, repr, hash when frozen,
ordering, pickling) from its ``_fields``, without ``dataclasses``.

A ``@dataclass`` costs about a millisecond at import (it generates and compiles its methods)
and ``dataclasses`` imports ``inspect``; the command line pays that on every start
(docs/benchmarks.md, "Command start-up"). A record's ``__init__`` takes its fields in
``_fields`` order (pickling relies on it); they are also its ``__slots__``.
"""

from __future__ import annotations


class Record:
    """Fields are ``_fields`` (in ``__init__`` order); equal when of one type and all equal.
    A subclass says ``__slots__ = _fields = ("a", "b")``."""

    __slots__: tuple[str, ...] = ()
    _fields: tuple[str, ...] = ()

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]  # mutable: unhashable, as a dataclass

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._fields)
        return f"{type(self).__qualname__}({fields})"

    def replace(self, **changes: object) -> Record:
        """A copy with ``changes`` (as ``dataclasses.replace``)."""
        return type(self)(*(changes.get(n, getattr(self, n)) for n in self._fields))

    def __reduce__(self) -> tuple[type[Record], tuple[object, ...]]:
        return (type(self), self._values())


class FrozenRecord(Record):
    """A record whose fields cannot change after ``__init__`` (which sets them with
    ``object.__setattr__``); hashable."""

    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r} of a frozen {type(self).__name__}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r} of a frozen {type(self).__name__}")

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(self._values())


class OrderedRecord(FrozenRecord):
    """A frozen record ordered by its fields, in order (as ``@dataclass(order=True)``)."""

    __slots__ = ()

    def __lt__(self, other: OrderedRecord) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() < other._values()

    def __le__(self, other: OrderedRecord) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() <= other._values()

    def __gt__(self, other: OrderedRecord) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() > other._values()

    def __ge__(self, other: OrderedRecord) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() >= other._values()
