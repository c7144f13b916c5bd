"""Small shared helpers: atomic file writes, checks for NaN/Inf tensors and logging set-up."""

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, List, Tuple, Type, TypeVar, Union

if TYPE_CHECKING:
    import torch

PathLike = Union[str, Path]


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds.

    Readers therefore never see a half-written model, checkpoint or output file: either the old
    file or the complete new one. The temporary file keeps ``path``'s suffixes so that libraries
    choosing a format by extension (lhotse's ``.jsonl.gz``, numpy's ``.npy``) behave the same.

    Example::

        with atomic_path("exp/model.pt") as tmp:
            torch.save(state, tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes)
    while True:  # like mkstemp, but created with mode 0666 so the umask gives the usual permissions
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp{suffix}"
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            break
        except FileExistsError:
            continue
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


T = TypeVar("T", bound="JsonDataclass")


class JsonDataclass:
    """Mixin for dataclasses saved next to models and data as JSON (configs, topologies).

    ``save`` writes ``dataclasses.asdict(self)`` atomically; ``load`` reads it back and turns
    any problem (missing file, bad JSON, unknown or missing field, failed validation) into one
    :class:`~hybrid_asr.errors.InputError` naming the file. Subclasses set ``json_what`` (how the
    error names the content).
    """

    json_what = "config"

    def save(self, path: PathLike) -> None:
        """Write as JSON (atomically)."""
        write_text_atomic(path, json.dumps(dataclasses.asdict(self), indent=2) + "\n")

    @classmethod
    def from_dict(cls: Type[T], fields: dict) -> T:
        """The object whose ``dataclasses.asdict`` is ``fields`` (a subclass may fill in fields
        that older files lack); raises ``TypeError`` for unknown or missing fields."""
        return cls(**fields)

    @classmethod
    def load(cls: Type[T], path: PathLike) -> T:
        """Read an object written by :meth:`save`; raises ``InputError`` if unreadable or invalid."""
        from hybrid_asr.errors import InputError

        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, ValueError, TypeError) as e:
            raise InputError(path, f"not a valid {cls.json_what}: {e}") from None


def save_state(obj, path: PathLike) -> None:
    """Save a nested structure of tensors, numbers, strings, lists, tuples and dicts (e.g. a
    training checkpoint with optimizer state) atomically, so that :func:`load_state` reads it
    with ``torch.load(weights_only=True)``: the structure goes into a JSON string and the tensors
    into a list beside it (torch 1.13's safe unpickler accepts no plain floats).
    """
    import torch

    tensors: list = []

    def encode(x):
        if isinstance(x, torch.Tensor):
            tensors.append(x)
            return {"__tensor__": len(tensors) - 1}
        if isinstance(x, dict):
            if all(isinstance(k, str) for k in x):
                return {k: encode(v) for k, v in x.items()}
            return {"__items__": [[encode(k), encode(v)] for k, v in x.items()]}
        if isinstance(x, tuple):
            return {"__tuple__": [encode(v) for v in x]}
        if isinstance(x, list):
            return [encode(v) for v in x]
        if x is None or isinstance(x, (bool, int, float, str)):
            return x
        raise TypeError(f"cannot save a {type(x).__name__} in a state file")

    skeleton = json.dumps(encode(obj))
    with atomic_path(path) as tmp:
        torch.save({"structure": skeleton, "tensors": tensors}, tmp)


def load_state(path: PathLike):
    """Read a file written by :func:`save_state`, never running code from it.

    Raises:
        InputError: missing, unreadable, or not written by :func:`save_state`.
    """
    import torch

    from hybrid_asr.errors import InputError

    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
        tensors, skeleton = raw["tensors"], json.loads(raw["structure"])
    except Exception as e:  # noqa: BLE001 - unpickling raises many types; all mean "not a state file"
        raise InputError(path, f"not a readable state file: {str(e).splitlines()[0][:200]}") from None

    def decode(x):
        if isinstance(x, dict):
            if "__tensor__" in x:
                return tensors[x["__tensor__"]]
            if "__items__" in x:
                return {decode(k): decode(v) for k, v in x["__items__"]}
            if "__tuple__" in x:
                return tuple(decode(v) for v in x["__tuple__"])
            return {k: decode(v) for k, v in x.items()}
        if isinstance(x, list):
            return [decode(v) for v in x]
        return x

    return decode(skeleton)


def state_tensors(module) -> List[Tuple[str, "torch.Tensor"]]:
    """``(label, tensor)`` of every entry of a torch module's state dict, the label
    ``"weight <name>"`` for a parameter and ``"buffer <name>"`` otherwise (e.g. BatchNorm
    statistics): the input of :func:`nonfinite_tensors`."""
    params = {name for name, _ in module.named_parameters()}
    return [(f"{'weight' if name in params else 'buffer'} {name}", t) for name, t in module.state_dict().items()]


def nonfinite_tensors(named: Iterable) -> List[Tuple[str, int, int]]:
    """The floating tensors that hold NaN or infinite values (others are passed over).

    Args:
        named: ``(label, tensor)`` pairs, e.g. :func:`state_tensors` of a model.

    Returns:
        ``(label, number of NaN/Inf values, number of values)`` of each such tensor, in the given
        order; empty when all are finite.
    """
    import torch

    found = []
    for label, t in named:
        if isinstance(t, torch.Tensor) and t.is_floating_point():
            bad = int((~torch.isfinite(t)).sum())
            if bad:
                found.append((label, bad, t.numel()))
    return found


def describe_nonfinite(found: List[Tuple[str, int, int]], limit: int = 3) -> str:
    """One phrase naming the tensors of :func:`nonfinite_tensors` (the first ``limit`` of them),
    e.g. ``weight layers.0.weight has 1,204 NaN/Inf values (of 65,536)``."""
    parts = [f"{label} has {bad:,} NaN/Inf values (of {total:,})" for label, bad, total in found[:limit]]
    more = f" and {len(found) - limit} more tensors" if len(found) > limit else ""
    return ", ".join(parts) + more


def phone_set_fingerprint(pairs) -> str:
    """Hex SHA-256 of a phone set: ``"<phone> <id>"`` lines in the given order, each ending in a
    newline (the real phones of a phones.txt, without epsilon and disambiguation symbols)."""
    return hashlib.sha256("".join(f"{p} {i}\n" for p, i in pairs).encode("utf-8")).hexdigest()


def progress(iterable=None, **kwargs):
    """A tqdm progress bar that stays quiet when stderr is not a terminal (a recipe's log file
    gets the stage's own log lines instead of carriage-return updates). Same arguments as tqdm."""
    import sys

    from tqdm import tqdm

    kwargs.setdefault("disable", not sys.stderr.isatty())
    return tqdm(iterable, **kwargs)


def setup_logging(verbose: bool = False) -> None:
    """Configure the root logger with a timestamped one-line format."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
