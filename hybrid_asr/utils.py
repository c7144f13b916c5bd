"""Small shared helpers: atomic file writes and logging set-up."""

import contextlib
import dataclasses
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Iterator, Type, TypeVar, Union

PathLike = Union[str, Path]
_UMASK = os.umask(0)
os.umask(_UMASK)


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
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the usual permissions
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
    def load(cls: Type[T], path: PathLike) -> T:
        """Read an object written by :meth:`save`; raises ``InputError`` if unreadable or invalid."""
        from hybrid_asr.errors import InputError

        try:
            return cls(**json.loads(Path(path).read_text()))
        except (OSError, ValueError, TypeError) as e:
            raise InputError(path, f"not a valid {cls.json_what}: {e}") from None


def setup_logging(verbose: bool = False) -> None:
    """Configure the root logger with a timestamped one-line format."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
