"""Numeric bounds of config dataclass fields, declared once beside the field's default.

A field declared ``lr: float = bounded(1e-3, gt=0)`` carries its range in the field's metadata.
:func:`check_bounds` (called by each config's ``__post_init__``) enforces it wherever a config is
built: library calls, JSON files read back, the command line. The command line
(:mod:`hybrid_asr.cli.options`) also checks it while parsing, so that ``--lr -1`` is refused with
one line naming the option before any work starts. NaN and infinite values are always refused.

Example::

    @dataclass(frozen=True)
    class SearchConfig:
        search_beam: float = bounded(16.0, gt=0)

        def __post_init__(self):
            check_bounds(self)
"""

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Optional

from hybrid_asr.errors import ConfigError


@dataclass(frozen=True)
class Bounds:
    """An interval of allowed values: ``ge``/``gt`` the lower end (inclusive/exclusive),
    ``le``/``lt`` the upper end; None: open on that side. Finite numbers only."""

    ge: Optional[float] = None
    gt: Optional[float] = None
    le: Optional[float] = None
    lt: Optional[float] = None

    def describe(self) -> str:
        """The interval in words, e.g. ``"> 0"``, ``">= 1"``, ``"in [0, 1)"``."""
        low = f"[{self.ge:g}" if self.ge is not None else f"({self.gt:g}" if self.gt is not None else None
        high = f"{self.le:g}]" if self.le is not None else f"{self.lt:g})" if self.lt is not None else None
        if low and high:
            return f"in {low}, {high}"
        if low:
            return (">= " if low[0] == "[" else "> ") + low[1:]
        if high:
            return ("<= " if high[-1] == "]" else "< ") + high[:-1]
        return "a finite number"

    def problem(self, value: Any) -> Optional[str]:
        """Why ``value`` (a number, or a tuple/list of numbers checked one by one; None passes)
        is not allowed, as ``"must be > 0, got -1"``; None when it is allowed."""
        if value is None or isinstance(value, bool):
            return None
        if isinstance(value, (tuple, list)):
            return next((p for p in map(self.problem, value) if p), None)
        if not isinstance(value, (int, float)):
            return None
        ok = math.isfinite(value) and not (
            (self.ge is not None and value < self.ge) or (self.gt is not None and value <= self.gt)
            or (self.le is not None and value > self.le) or (self.lt is not None and value >= self.lt))
        return None if ok else f"must be {self.describe()}, got {value:g}"


def bounded(default: Any = dataclasses.MISSING, *, ge: Optional[float] = None, gt: Optional[float] = None,
            le: Optional[float] = None, lt: Optional[float] = None) -> Any:
    """A dataclass field with ``default`` whose value must lie in the given bounds (see
    :class:`Bounds`); without a default, a required field."""
    return dataclasses.field(default=default, metadata={"bounds": Bounds(ge, gt, le, lt)})


def field_bounds(field: dataclasses.Field) -> Optional[Bounds]:
    """The bounds a field was declared with, or None."""
    return field.metadata.get("bounds")


def check_bounds(config: Any) -> None:
    """Check every bounded field of a dataclass instance.

    Raises:
        ConfigError: a field is out of its bounds, or NaN/infinite (``"lr must be > 0, got -1"``).
    """
    for f in dataclasses.fields(config):
        bounds = field_bounds(f)
        problem = bounds.problem(getattr(config, f.name)) if bounds else None
        if problem:
            raise ConfigError(f"{f.name} {problem}")


__all__ = ["Bounds", "bounded", "check_bounds", "field_bounds"]
