"""Command-line options generated from config dataclasses, so that every default lives in its
dataclass only: an option left out is not passed, and the dataclass default applies."""

import argparse
import dataclasses
import typing
from typing import Any, Dict, Iterable, Optional, Type


def _parse_ints(text: str):
    return tuple(int(x) for x in text.split(",") if x)


def _field_type(cls: Type, field: dataclasses.Field):
    hint = typing.get_type_hints(cls)[field.name]
    if hint is bool:
        return "bool"
    if typing.get_origin(hint) is tuple:
        return _parse_ints
    return hint


def add_config_options(parser: argparse.ArgumentParser, classes: Iterable[Type], skip: Iterable[str] = (),
                       title: str = "", defaults: Optional[Dict[str, Any]] = None) -> None:
    """Add ``--field-name`` for every field of the dataclasses (the first class to define a name
    gives its type); defaults stay None, the help text shows the dataclass default(s), or the
    value in ``defaults`` where the command applies its own (e.g. sequence training's)."""
    group = parser.add_argument_group(title) if title else parser
    overrides = defaults or {}
    seen: Dict[str, list] = {}
    for cls in classes:
        for f in dataclasses.fields(cls):
            if f.name in skip:
                continue
            seen.setdefault(f.name, []).append((cls, f))
    for name, defs in seen.items():
        cls, f = defs[0]
        kind = _field_type(cls, f)
        defaults = sorted({f"{getattr(c, 'type', '') or c.__name__}: {d.default}" if len(defs) > 1 else str(d.default)
                           for c, d in defs})
        help_text = "default " + "; ".join(defaults) if name not in overrides else f"default {overrides[name]}"
        flag = "--" + name.replace("_", "-")
        if kind == "bool":
            group.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            group.add_argument(flag, dest=name, type=kind, default=None, metavar=name.upper(), help=help_text)


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
