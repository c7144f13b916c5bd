"""Command-line options generated from config dataclasses, so that every default and every range
lives in its dataclass only: an option left out is not passed (the dataclass default applies), and
a number outside the field's bounds (:mod:`hybrid_asr.bounds`) is refused while the command line
is parsed, with one line naming the option."""

import argparse
import dataclasses
import typing
from typing import Any, Dict, Iterable, Optional, Type

from hybrid_asr.bounds import Bounds, field_bounds


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line (``hybrid-asr decode: error:
    argument --batch-size: must be >= 1, got 0``) and exit status 2, without the usage block."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class NumberParser:
    """An argparse ``type``: a number (or, with ``many``, comma-separated numbers as a tuple) of
    type ``kind`` within ``bounds``; anything else is an ``ArgumentTypeError`` that argparse
    reports as ``argument --option: <problem>``.

    Attributes:
        kind: ``int`` or ``float``.
        bounds: the allowed interval (NaN and infinity are never allowed).
        many: parse ``"0.9,1.1"`` into ``(0.9, 1.1)``.
    """

    def __init__(self, kind: type, bounds: Bounds = Bounds(), many: bool = False):
        self.kind, self.bounds, self.many = kind, bounds, many
        self.__name__ = kind.__name__  # argparse names the type in some messages

    def __call__(self, text: str):
        what = "an integer" if self.kind is int else "a number"
        try:
            value = tuple(self.kind(x) for x in text.split(",") if x.strip()) if self.many else self.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'comma-separated values, each ' if self.many else ''}{what}, got {text!r}") from None
        problem = self.bounds.problem(value)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value


def number(kind: type = float, many: bool = False, **bounds: float) -> NumberParser:
    """A :class:`NumberParser` for an option that has no config field, e.g.
    ``number(int, ge=1)`` for ``--nj``."""
    return NumberParser(kind, Bounds(**bounds), many)


def _field_parser(cls: Type, field: dataclasses.Field) -> Any:
    """``"bool"``, a :class:`NumberParser` (numbers and tuples of numbers, Optional unwrapped,
    with the field's bounds) or the plain type (``str``)."""
    hint = typing.get_type_hints(cls)[field.name]
    if typing.get_origin(hint) is typing.Union:  # Optional[X]
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if hint is bool:
        return "bool"
    bounds = field_bounds(field) or Bounds()
    if typing.get_origin(hint) is tuple:
        return NumberParser(typing.get_args(hint)[0], bounds, many=True)
    if hint in (int, float):
        return NumberParser(hint, bounds)
    return hint


def add_config_options(parser: argparse.ArgumentParser, classes: Iterable[Type], skip: Iterable[str] = (),
                       title: str = "", defaults: Optional[Dict[str, Any]] = None) -> None:
    """Add ``--field-name`` for every field of the dataclasses (the first class to define a name
    gives its type and bounds); defaults stay None, the help text shows the dataclass default(s),
    or the value in ``defaults`` where the command applies its own (e.g. sequence training's)."""
    group = parser.add_argument_group(title) if title else parser
    overrides = defaults or {}
    seen: Dict[str, list] = {}
    for cls in classes:
        for f in dataclasses.fields(cls):
            if f.name in skip or not f.init:
                continue
            seen.setdefault(f.name, []).append((cls, f))
    for name, defs in seen.items():
        cls, f = defs[0]
        kind = _field_parser(cls, f)
        shown = sorted({f"{getattr(c, 'type', '') or c.__name__}: {d.default}" if len(defs) > 1 else str(d.default)
                        for c, d in defs})
        help_text = "default " + "; ".join(shown) if name not in overrides else f"default {overrides[name]}"
        flag = "--" + name.replace("_", "-")
        if kind == "bool":
            group.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            group.add_argument(flag, dest=name, type=kind, default=None, metavar=name.upper(), help=help_text)


def config_option(parser, cls: Type, name: str, flag: Optional[str] = None, help: str = "",
                  with_default: bool = False, **kwargs) -> argparse.Action:
    """One option for field ``name`` of dataclass ``cls``, typed and bounded by the field (for
    commands whose option names differ from the field's, e.g. ``--trim-margin`` for
    ``TrimConfig.margin_seconds``). ``dest`` is the field name.

    Args:
        parser: parser or argument group.
        flag: the option (default ``--field-name``).
        help: the help text; the field's default is appended.
        with_default: the parsed value defaults to the field's default (else None: not given).
        kwargs: passed on to ``add_argument`` (e.g. ``metavar``).
    """
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    default = field.default if field.default is not dataclasses.MISSING else None
    kind = _field_parser(cls, field)
    if help != argparse.SUPPRESS:
        help = f"{help} (default {default})" if help else f"default {default}"
    kwargs.setdefault("metavar", name.upper())
    return parser.add_argument(flag or "--" + name.replace("_", "-"), dest=name, type=kind, help=help,
                               default=default if with_default else None, **kwargs)


def config_overrides(args: argparse.Namespace, cls: Type, skip: Iterable[str] = ()) -> Dict[str, Any]:
    """The options of ``cls``'s fields that were given on the command line."""
    names = {f.name for f in dataclasses.fields(cls)} - set(skip)
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def unused_options(args: argparse.Namespace, all_classes: Iterable[Type], used: Type, skip: Iterable[str] = ()):
    """Names of given options that belong to ``all_classes`` but not to ``used`` (e.g. an LSTM
    option passed for a DNN)."""
    mine = {f.name for f in dataclasses.fields(used)}
    other = {f.name for c in all_classes for f in dataclasses.fields(c)} - mine - set(skip)
    return sorted(n for n in other if getattr(args, n, None) is not None)


def numeric_options_without_bounds(parser: argparse.ArgumentParser) -> Iterable[str]:
    """Options of ``parser`` and its sub-commands whose values are converted by anything but a
    :class:`NumberParser` or ``str`` (``type=int``, ``type=float``, a lambda): numbers taken without
    a range check. None should exist."""
    for action in parser._actions:  # noqa: SLF001 - argparse has no public way to list actions
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for sub in action.choices.values():
                yield from numeric_options_without_bounds(sub)
        elif action.type not in (None, str) and not isinstance(action.type, NumberParser):
            yield f"{parser.prog} {'/'.join(action.option_strings) or action.dest}"


__all__ = ["NumberParser", "OneLineParser", "add_config_options", "config_option", "config_overrides", "number",
           "numeric_options_without_bounds", "unused_options"]
