"""Frozen records compared by value, as @dataclass(frozen=True) makes them, at no import-time cost.

A dataclass is compiled from generated source when its module is
imported (and the dataclasses module loads inspect): for the handful of
classes on pyktrace's start-up path (its options, the control protocol's
messages, the runtime directory) that was a large part of the time the
command takes before it does anything. A subclass lists its fields in
__slots__ and stores them in __init__ with `_set`.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up)
if TYPE_CHECKING:
    from typing import Any, Self


class _ByValue:
    """What both kinds share: fields from __slots__, compared, copied and shown by value."""

    __slots__ = ()

    def _fields(self) -> tuple[str, ...]:
        return type(self).__slots__

    def as_dict(self) -> dict[str, Any]:
        """The fields by name, in declaration order."""
        return {name: getattr(self, name) for name in self._fields()}

    def replace(self, **changes: Any) -> Self:
        """A copy with some fields changed (dataclasses.replace)."""
        return type(self)(**{**self.as_dict(), **changes})

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self._fields())

    def __repr__(self) -> str:
        body = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._fields())
        return f"{type(self).__name__}({body})"


class Value(_ByValue):
    """Immutable after __init__; equal when of one class with equal fields; hashable when they are."""

    __slots__ = ()

    def _set(self, **fields: object) -> None:
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r} of {type(self).__name__}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r} of {type(self).__name__}")

    def __hash__(self) -> int:
        return hash((type(self).__name__, *(getattr(self, n) for n in self._fields())))

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), self.as_dict()))


def _rebuild(cls: type[Value], fields: dict[str, Any]) -> Value:
    return cls(**fields)


class Fields(_ByValue):
    """Mutable, compared by value, unhashable: what @dataclass(slots=True) gave the trace records.

    A subclass declares __slots__ and a plain __init__ (the fastest way to
    build the one object per record a trace of millions makes).
    """

    __slots__ = ()
    __hash__ = None  # type: ignore[assignment]
