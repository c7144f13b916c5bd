"""Exceptions raised for bad user input.

Every error a user can cause (a missing file, a malformed line, an unknown word) is raised as a
:class:`HybridAsrError` whose message is one line naming the file (and line, where there is one)
and the problem. The command line prints that line and exits non-zero instead of a traceback.
"""

from pathlib import Path
from typing import Optional, Union


class HybridAsrError(Exception):
    """Base class of all errors hybrid-asr raises on purpose."""


class InputError(HybridAsrError):
    """A user-supplied file is missing, unreadable or malformed.

    Args:
        path: the offending file or directory.
        problem: what is wrong with it, one short sentence.
        line: 1-based line number inside ``path`` where the problem is, if known.
    """

    def __init__(self, path: Union[str, Path], problem: str, line: Optional[int] = None):
        self.path = Path(path)
        self.problem = problem
        self.line = line
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {problem}")


class AlignmentError(HybridAsrError):
    """No path of the training graph fits the frames of an utterance (too short, wrong text)."""


class ConfigError(HybridAsrError, ValueError):
    """A setting (a config field or command-line option) is out of range or inconsistent with
    another. A ``ValueError`` too, so that callers catching bad values keep working."""


class TrainingDivergedError(HybridAsrError):
    """Training diverged: the loss, the gradients, the held-out loss or the weights hold NaN or
    infinite values (typically a learning rate far too high). Raised by the training engine past
    :attr:`hybrid_asr.training.TrainConfig.max_nonfinite_batches` skipped batches, and by
    :meth:`hybrid_asr.bundle.ModelBundle.save` for a model with non-finite weights or priors."""
