"""LSTM with recurrent projection (LSTMP) and its bidirectional form (BLSTMP).

Sak, Senior & Beaufays 2014, "Long short-term memory recurrent neural network architectures for
large scale acoustic modeling": a projection layer after each LSTM layer feeds the recurrence and
the next layer, cutting parameters. ``torch.nn.LSTM(proj_size=...)`` implements exactly that cell.
Trained on chunks with extra context frames whose outputs are discarded (Kaldi's
``chunk-left-context`` 40 and, bidirectional, ``chunk-right-context`` 40), so the state at the first
scored frame is warmed up. A unidirectional model emits the label of frame t at step t + r: Sak et
al.'s 5-frame output delay (Kaldi's ``label-delay``), which lets it see r frames of the future.
"""

from dataclasses import dataclass
from typing import Tuple

import torch
from torch import nn

from hybrid_asr.bounds import bounded, check_bounds
from hybrid_asr.models.base import AcousticModel, ModelConfig


@dataclass(frozen=True)
class LstmConfig(ModelConfig):
    """Architecture of :class:`LstmAcousticModel`.

    Attributes:
        feat_dim: F.
        num_pdfs: S.
        hidden_dim: LSTM cells per layer and direction.
        proj_dim: recurrent projection per layer and direction (0: no projection, plain LSTM).
        num_layers: stacked LSTM layers.
        bidirectional: BLSTMP instead of LSTMP.
        left_context: extra frames before a chunk (state warm-up; Kaldi chunk-left-context).
        right_context: frames after a chunk: unidirectional, the output delay (Sak et al. 2014: 5);
            bidirectional, the chunk right context for the backward direction (Kaldi: 40).
        dropout: dropout between LSTM layers and before the output layer.
        decode_chunk_frames: decoding: 0 scores a whole utterance in one pass (with l/r edge
            frames); N > 0 scores chunks of N output frames, each with its own l/r context frames,
            as in training.
    """

    type = "lstm"

    hidden_dim: int = bounded(512, ge=1)
    proj_dim: int = bounded(128, ge=0)
    num_layers: int = bounded(3, ge=1)
    bidirectional: bool = False
    left_context: int = bounded(40, ge=0)
    right_context: int = bounded(5, ge=0)
    dropout: float = bounded(0.1, ge=0, lt=1)
    decode_chunk_frames: int = bounded(0, ge=0)

    def __post_init__(self) -> None:
        check_bounds(self)


class LstmAcousticModel(AcousticModel):
    """(B)LSTMP: ``[N, l + T + r, F]`` -> ``[N, T, S]``: the LSTM runs over all input frames; the
    label of frame j is read at step ``l + j + r`` (unidirectional: output delay r) or ``l + j``
    (bidirectional). Recurrent: an output depends on every earlier input frame (and,
    bidirectional, every later one) given to it."""

    default_chunk_frames = 20  # Kaldi's chunk-width for (B)LSTMs

    def __init__(self, config: LstmConfig):
        super().__init__(config)
        self.left_context, self.right_context = config.left_context, config.right_context
        self.recurrent = True
        self.lstm = nn.LSTM(config.feat_dim, config.hidden_dim, num_layers=config.num_layers,
                            batch_first=True, dropout=config.dropout if config.num_layers > 1 else 0.0,
                            bidirectional=config.bidirectional, proj_size=config.proj_dim)
        out_dim = (config.proj_dim or config.hidden_dim) * (2 if config.bidirectional else 1)
        self.drop = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()
        self.output = nn.Linear(out_dim, config.num_pdfs)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """See :class:`AcousticModel`."""
        y = run_lstm(self.lstm, x, lengths)
        first = self.left_context if self.config.bidirectional else self.left_context + self.right_context
        y = y[:, first : first + y.shape[1] - self.left_context - self.right_context]
        return torch.log_softmax(self.output(self.drop(y)), dim=-1), self.output_lengths(lengths)


def run_lstm(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Run a batch-first LSTM over padded sequences ``[N, T, D]``; packed when lengths differ so
    that the backward direction starts at each sequence's own last frame."""
    if bool((lengths == x.shape[1]).all()):
        return lstm(x)[0]
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    y, _ = lstm(packed)
    return nn.utils.rnn.pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])[0]
