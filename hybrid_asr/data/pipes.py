"""Kaldi-style piped audio: a ``wav.scp`` entry ``<recording> <command> |`` whose command writes
the audio (usually a WAV) to its standard output, e.g. ``sox x.sph -t wav - |`` or
``flac -c -d -s x.flac |``.

Running commands named in a data file is the user's choice: the readers refuse such entries
unless they are given ``allow_pipes`` (``--allow-pipes`` on the command line). A command is run
through the shell (``/bin/sh -c``, as Kaldi's ``popen`` does), in the working directory of the
process that reads it, with no standard input; its whole output is held in memory, as Kaldi
holds a piped wave.
"""

import subprocess
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from hybrid_asr.errors import InputError

PIPE_CACHE_SIZE = 2
"""Outputs of the last commands kept in memory: the segments of one piped recording (header,
energies and pieces in ``decode``; consecutive supervisions in training) run its command once."""

ALLOW_PIPES_HINT = "pass --allow-pipes to run it"
"""What an error about a refused pipe entry tells the user to do (one option name everywhere)."""

_cache: "OrderedDict[str, bytes]" = OrderedDict()
_lock = threading.Lock()


@dataclass(frozen=True)
class PipeCommand:
    """An audio source that is a shell command's standard output.

    Used where a file path would be (``AudioSegment.path``, :func:`hybrid_asr.features.audio.load_audio`):
    ``str()`` and ``os.fspath()`` give ``where`` (``<wav.scp>:<line>``), so messages name the
    line of the data file; nothing is ever opened under that name.

    Attributes:
        command: the shell command, without the trailing ``|``.
        where: the data file (or e.g. ``recording <id>``) it came from, named in messages.
        line: 1-based line of ``where``, if any.
    """

    command: str
    where: Union[str, Path]
    line: Optional[int] = None

    def __str__(self) -> str:
        return f"{self.where}:{self.line}" if self.line is not None else str(self.where)

    def __fspath__(self) -> str:
        return str(self)

    def error(self, problem: str) -> InputError:
        """An :class:`InputError` naming the data file and line of this command."""
        return InputError(self.where, problem, self.line)

    def read(self) -> bytes:
        """The command's standard output (the last :data:`PIPE_CACHE_SIZE` outputs are kept, so a
        recording read in several pieces runs its command once).

        Raises:
            InputError: the command cannot be started, exits with a non-zero status (the last line
                of its standard error is quoted) or writes nothing.
        """
        with _lock:
            if self.command in _cache:
                _cache.move_to_end(self.command)
                return _cache[self.command]
        try:
            done = subprocess.run(self.command, shell=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, check=False)
        except OSError as e:
            raise self.error(f"command '{self.command} |' cannot be run: {e}") from None
        if done.returncode != 0:
            lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
            said = f": {lines[-1].strip()[:200]}" if lines else ""
            raise self.error(f"command '{self.command} |' failed with exit status {done.returncode}{said}")
        if not done.stdout:
            raise self.error(f"command '{self.command} |' wrote no audio to its standard output")
        with _lock:
            _cache[self.command] = done.stdout
            while len(_cache) > PIPE_CACHE_SIZE:
                _cache.popitem(last=False)
        return done.stdout


def pipe_command(value: str) -> Optional[str]:
    """The command of a ``wav.scp`` value that is a pipe (``... |``), else None."""
    value = value.strip()
    return value[:-1].strip() if value.endswith("|") else None


AudioPath = Union[str, Path, PipeCommand]
"""Where audio is read from: a file, or a pipe entry's command (its standard output)."""


__all__ = ["ALLOW_PIPES_HINT", "PIPE_CACHE_SIZE", "AudioPath", "PipeCommand", "pipe_command"]
