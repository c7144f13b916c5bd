"""The acoustic-model interface: features with their context frames -> senone log-posteriors.

Every architecture declares the context it needs and its frame subsampling factor, and obeys one
frame contract (Kaldi nnet3's "left/right context" and ``frame-subsampling-factor``)::

    input   [N, T_in, F]   T_in = l + T + r: the T frames to score plus l frames of left and r of
                           right context (real neighbours inside a training chunk; copies of the
                           first/last frame at utterance edges, see :func:`pad_context`)
    output  [N, T_out, S]  T_out = ceil(T / f); output frame j scores input frame l + j*f, i.e.
                           frame j*f of the T frames; log-softmax (log base e)

A feed-forward model (DNN, TDNN) computes output j from input frames ``[j*f, j*f + l + r]`` only.
A recurrent model (LSTM, CLDNN) may look further back (and, bidirectional, further ahead) within
the input it is given: its declared context is the extra context of a training chunk (Kaldi's
``chunk-left-context`` / ``chunk-right-context``), which decoding provides too.
"""

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar, Tuple, Union

import torch
from torch import nn

from hybrid_asr.bounds import bounded, check_bounds
from hybrid_asr.errors import InputError
from hybrid_asr.utils import JsonDataclass, write_text_atomic


@dataclass(frozen=True)
class ModelConfig(JsonDataclass):
    """Fields every architecture's config has; subclasses add theirs and set :attr:`type`.

    Attributes:
        feat_dim: F, dimension of one input frame.
        num_pdfs: S, number of output classes (senones / pdf-ids).
    """

    json_what = "model config"
    type: ClassVar[str] = ""

    feat_dim: int = bounded(ge=1)
    num_pdfs: int = bounded(ge=1)

    def __post_init__(self) -> None:
        check_bounds(self)

    def save(self, path: Union[str, Path]) -> None:
        """Write as JSON with the architecture's ``type`` first (atomically)."""
        write_text_atomic(path, json.dumps({"type": self.type, **asdict(self)}, indent=2) + "\n")

    @classmethod
    def from_dict(cls, d: dict, path: Union[str, Path] = "<model config>") -> "ModelConfig":
        """Build from a saved dict (its ``type`` key, if any, must be this class's).

        Raises:
            InputError: wrong type, unknown or missing fields, or invalid values (names ``path``).
        """
        d = dict(d)
        kind = d.pop("type", cls.type)
        if kind != cls.type:
            raise InputError(path, f"model type is {kind!r}, expected {cls.type!r}")
        try:
            return cls(**d)
        except (TypeError, ValueError) as e:
            raise InputError(path, f"not a valid {cls.type} model config: {e}") from None

    @classmethod
    def load(cls, path: Union[str, Path]) -> "ModelConfig":
        """Read a config written by :meth:`save`; raises :class:`InputError` if invalid."""
        try:
            d = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise InputError(path, f"not a valid model config: {e}") from None
        return cls.from_dict(d, path)


class AcousticModel(nn.Module):
    """Base class of all acoustic models (see the module docstring for the frame contract).

    Subclasses set :attr:`left_context`, :attr:`right_context`, :attr:`subsampling_factor` and
    :attr:`recurrent` in their constructor, and implement :meth:`forward`.

    Attributes:
        config: the architecture's :class:`ModelConfig` (saved as ``model_config.json``).
        left_context: l, input frames needed before the first scored frame.
        right_context: r, input frames needed after the last scored frame.
        subsampling_factor: f, input frames per output frame.
        recurrent: True if an output may depend on input beyond its own ``l + 1 + r`` window.
        default_chunk_frames: output frames per training chunk unless the training config says
            otherwise (Kaldi's ``frames-per-eg`` / ``chunk-width``).
    """

    default_chunk_frames: ClassVar[int] = 8

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.left_context = 0
        self.right_context = 0
        self.subsampling_factor = 1
        self.recurrent = False

    @property
    def num_pdfs(self) -> int:
        """S, the number of outputs."""
        return self.config.num_pdfs

    def output_frames(self, num_frames: int) -> int:
        """T_out for T scored frames: ``ceil(T / f)``."""
        return math.ceil(num_frames / self.subsampling_factor)

    def output_lengths(self, input_lengths: torch.Tensor) -> torch.Tensor:
        """``[N]`` int64 output lengths for ``[N]`` input lengths (context included)."""
        scored = input_lengths - self.left_context - self.right_context
        f = self.subsampling_factor
        return torch.div(scored + f - 1, f, rounding_mode="floor").clamp(min=0)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Senone log-posteriors.

        Args:
            x: float32 ``[N, T_in, F]``, each sequence with its l/r context frames; rows past a
                sequence's length are padding.
            lengths: int64 ``[N]`` valid input frames per sequence (context included).

        Returns:
            ``(log_posteriors [N, T_out, S] float32, output lengths [N] int64)``; rows past a
            sequence's output length are undefined.
        """
        raise NotImplementedError

    def after_optimizer_step(self, step: int) -> None:
        """Hook called by the trainer after every optimizer step (e.g. TDNN-F's semi-orthogonal
        constraint); ``step`` counts from 1. Default: nothing."""

    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def pad_context(feats: torch.Tensor, left: int, right: int) -> torch.Tensor:
    """Add ``left``/``right`` context frames to one utterance by repeating its first/last frame
    (what Kaldi's ``splice-feats`` and nnet3 do at utterance edges).

    Args:
        feats: ``[T, F]`` (T >= 1).
        left, right: frames to add (>= 0).

    Returns:
        ``[left + T + right, F]``, same dtype.

    Raises:
        ValueError: negative context or an empty utterance.
    """
    if left < 0 or right < 0:
        raise ValueError(f"context must be non-negative, got left={left} right={right}")
    if feats.shape[0] == 0:
        raise ValueError("cannot pad an utterance of 0 frames")
    index = torch.arange(-left, feats.shape[0] + right).clamp_(0, feats.shape[0] - 1)
    return feats[index]


__all__ = ["AcousticModel", "ModelConfig", "pad_context"]
