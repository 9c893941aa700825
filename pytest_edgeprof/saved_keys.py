"""The one serializer of the record's parts: each field names its saved key (docs/saved-keys.md) in
its metadata, and a part is written to and read from pytest-benchmark's ``extra_info`` by a loop over
its fields::

    median_ms: float = field(metadata=saved(LATENCY.key, marks="value"))
    ci95_ms: tuple[float, float] | None = field(default=None, metadata=saved("latency_ms_ci95", omit="none"))

Writing: a tuple is saved as a list, a mapping as a dict; ``omit`` says when a key is left out: "never"
(written, None included), "none" (left out when None), "empty" (left out when None or empty). A key
computed from a part (throughput from the median latency and the batch size) is a :class:`Derived`,
listed in the part's ``DERIVED``: written after the field it follows, never read back.

Reading is lenient, since runs of every version are read: a value of another type than the field's
reads as missing (but a flag that cannot be None reads as its truth), and a missing value reads as None
where the field may be None, else as the type's empty value (0, 0.0, "", False, (), {}). A part is read where a field that ``marks`` it is there: its
key is in ``extra_info`` ("key"), or its value reads as a non-empty one ("value"). A part whose
fields' defaults depend on each other settles them in a ``settle_saved(values)`` classmethod.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pytest_edgeprof.metrics import number

Omit = Literal["never", "none", "empty"]


def saved(key: str, *, omit: Omit = "never", marks: Literal["key", "value"] | None = None) -> dict[str, Any]:
    """A field's metadata: the key it is saved under, when it is left out, and whether it marks its part."""
    return {"key": key, "omit": omit, "marks": marks}


@dataclass(frozen=True)
class Derived:
    """A saved key computed from a part and the cell's batch size, written after the field named ``after``."""

    key: str
    after: str  # the field it is written after
    compute: Callable[[Any, int], Any]  # (the part, the batch size) -> the value
    omit: Omit = "never"


def _left_out(value: Any, omit: Omit) -> bool:
    return (omit != "never" and value is None) or (omit == "empty" and not value)


def _as_saved(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    return value


def write_part(part: Any, batch_size: int) -> dict[str, Any]:
    """The saved keys of one part, in the order of its fields, each derived key after its field."""
    info: dict[str, Any] = {}
    for f in saved_fields(type(part)):
        value = getattr(part, f.name)
        if not _left_out(value, f.metadata["omit"]):
            info[f.metadata["key"]] = _as_saved(value)
        for derived in getattr(part, "DERIVED", ()):
            if derived.after == f.name and not _left_out(computed := derived.compute(part, batch_size), derived.omit):
                info[derived.key] = computed
    return info


def read_part(cls: type, info: Mapping[str, Any]) -> Any:
    """The part of type ``cls`` a saved ``extra_info`` holds; None where no field that marks it is there."""
    fields, hints = saved_fields(cls), _hints(cls)
    values = {f.name: _reader(hints[f.name])(info.get(f.metadata["key"])) for f in fields}
    if not any(_marks(f, info, values[f.name]) for f in fields):
        return None
    settle = getattr(cls, "settle_saved", None)
    values = settle(values) if settle else values
    for f in fields:
        if values[f.name] is None and not _optional(hints[f.name]):
            values[f.name] = _empty(hints[f.name])
    return cls(**values)


def value_of(part: Any, key: str, batch_size: int) -> Any:
    """The value ``part`` saves under ``key``, without writing the rest; KeyError where it saves no such key."""
    for f in saved_fields(type(part)):
        if f.metadata["key"] == key:
            return getattr(part, f.name)
    for derived in getattr(part, "DERIVED", ()):
        if derived.key == key:
            return derived.compute(part, batch_size)
    raise KeyError(key)


def keys_of(cls: type) -> tuple[str, ...]:
    """Every key a part of type ``cls`` writes: its fields' and its derived keys."""
    return (*(f.metadata["key"] for f in saved_fields(cls)), *(d.key for d in getattr(cls, "DERIVED", ())))


_SAVED_FIELDS: dict[type, tuple[dataclasses.Field, ...]] = {}


def saved_fields(cls: type) -> tuple[dataclasses.Field, ...]:
    """The fields of ``cls`` that are saved (those whose metadata names a key), in their order."""
    if cls not in _SAVED_FIELDS:
        _SAVED_FIELDS[cls] = tuple(f for f in dataclasses.fields(cls) if "key" in f.metadata)
    return _SAVED_FIELDS[cls]


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _marks(f: dataclasses.Field, info: Mapping[str, Any], value: Any) -> bool:
    if f.metadata["marks"] == "key":
        return f.metadata["key"] in info
    return f.metadata["marks"] == "value" and value not in (None, "")


# --- reading one value by the field's type ---------------------------------------------------------


def _parts(hint: Any) -> list[Any]:
    """``float | None`` -> [float]; ``float`` -> [float]."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(hint) if a is not type(None)]
    return [hint]


def _optional(hint: Any) -> bool:
    return type(None) in typing.get_args(hint)


def _empty(hint: Any) -> Any:
    base = typing.get_origin(_parts(hint)[0]) or _parts(hint)[0]
    return {bool: False, int: 0, float: 0.0, str: "", tuple: ()}.get(base, {})


def _reader(hint: Any) -> Callable[[Any], Any]:
    base = _parts(hint)[0]
    origin = typing.get_origin(base) or base
    if origin is bool:  # a flag that may be None is True, False or not known; one that may not is read as ever
        return (lambda v: v if isinstance(v, bool) else None) if _optional(hint) else bool
    if origin is int:
        return _int
    if origin is float:
        return number
    if origin is str:
        return lambda v: v if isinstance(v, str) else None
    if origin is tuple:
        return _tuple_reader(typing.get_args(base))
    return lambda v: dict(v) if isinstance(v, Mapping) else None  # a Mapping field


def _int(value: Any) -> int | None:
    found = number(value)
    return int(found) if found is not None else None


def _dimension(value: Any) -> int | None:
    found = _int(value)
    return found if found is not None and found > 0 else None


def _tuple_reader(args: tuple[Any, ...]) -> Callable[[Any], Any]:
    """``tuple[int, ...]`` (a shape): a list of positive whole numbers; ``tuple[float, float]`` (an interval):
    two numbers."""
    item, length = (_dimension, None) if args[-1] is Ellipsis else (number, len(args))

    def read(saved: Any) -> tuple[Any, ...] | None:
        if not isinstance(saved, list) or (length is not None and len(saved) != length):
            return None
        items = tuple(item(v) for v in saved)
        return None if None in items else items

    return read
