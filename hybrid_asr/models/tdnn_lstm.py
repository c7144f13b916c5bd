"""TDNN-LSTM: TDNN layers interleaved with LSTMP layers.

Peddinti, Wang, Povey & Khudanpur 2018, "Low latency acoustic modeling using temporal convolution
and LSTMs" (IEEE Signal Processing Letters 25(3)), the architecture of Kaldi's
``local/chain/tuning/run_tdnn_lstm_1c.sh``: three TDNN layers, then an LSTMP layer, then two TDNN
layers and an LSTMP layer, twice. The TDNN layers give each LSTM a window of future frames (their
right context), so the model needs no output delay; the LSTMs carry the past. Each LSTMP layer
recurs over ``lstm_delay`` frames instead of one (Kaldi's ``fast-lstmp-layer ... delay=-3``): the
sequence splits into that many interleaved streams, each an ordinary LSTM over every
``lstm_delay``-th frame, which is cheaper on CPU (a third of the sequential steps) and, at
subsampling factor 3, is what runs at the output frame rate. Unlike Kaldi's layer, each LSTMP
output is batch-normalized and a linear map of the layer's input is added to it (both config
fields, on by default): trained with Adam, the unnormalized projection learns far slower
(``docs/recipes/an4.md``, "Recurrent models, and the TDNN's training length").

Frame accounting (see :mod:`hybrid_asr.models.base`): the TDNN layers are unpadded convolutions
that consume ``K = sum((kernel - 1) / 2 * dilation)`` frames on each side, so the declared context
is ``l = chunk_left_context + K`` and ``r = K + output_delay``; the LSTM state is warmed up on the
``chunk_left_context`` frames (Kaldi's ``chunk-left-context``, 40).
"""

from dataclasses import dataclass
from typing import List, Tuple

import torch
from torch import nn

from hybrid_asr.bounds import bounded, check_bounds
from hybrid_asr.errors import ConfigError
from hybrid_asr.models.base import AcousticModel, ModelConfig


@dataclass(frozen=True)
class TdnnLstmConfig(ModelConfig):
    """Architecture of :class:`TdnnLstmAcousticModel`.

    Attributes:
        feat_dim: F.
        num_pdfs: S.
        kernels: kernel size (frames, odd) of each TDNN layer.
        dilations: dilation of each TDNN layer (same length as ``kernels``). The defaults are
            Kaldi's ``tdnn_lstm_1c`` splicing: {-2..2}, {-1,0,1} x2, {-3,0,3} x4 (16 frames of
            context on each side).
        lstm_after: 1-based indices of the TDNN layers followed by an LSTMP layer (Kaldi: 3, 5, 7).
        hidden_dim: channels of every TDNN layer.
        lstm_dim: LSTM cells per LSTMP layer.
        proj_dim: recurrent projection of each LSTMP layer (its output dimension).
        lstm_delay: frames between an LSTM step and the next (Kaldi's ``delay=-3``); 1 is an
            ordinary LSTM.
        lstm_norm: BatchNorm on each LSTMP layer's output (not in Kaldi's layer, whose natural
            gradient and max-change keep the next layer's input scale in check; with Adam the
            unnormalized projection trains far slower: docs/recipes/an4.md).
        lstm_bypass: add a linear map of each LSTMP layer's input to its output (a residual path
            around the recurrence, as TDNN-F layers have; not in Kaldi's TDNN-LSTM).
        left_context: chunk left context (state warm-up), on top of the TDNN layers' context.
        right_context: output delay (label delay) on top of the TDNN layers' context; Kaldi's
            TDNN-LSTM recipes use 0 for chain models and 5 for cross-entropy ones.
        dropout: dropout after every TDNN and LSTMP layer.
        decode_chunk_frames: as :attr:`hybrid_asr.models.lstm.LstmConfig.decode_chunk_frames`.
        subsampling_factor: f; the layers from the first one whose dilation or delay, and every
            later one's, is a multiple of f run on every f-th frame, with dilations and delays
            divided by f (as :attr:`hybrid_asr.models.tdnn.TdnnConfig.subsampling_factor`).
    """

    type = "tdnn_lstm"

    kernels: Tuple[int, ...] = bounded((5, 3, 3, 3, 3, 3, 3), ge=1)
    dilations: Tuple[int, ...] = bounded((1, 1, 1, 3, 3, 3, 3), ge=1)
    lstm_after: Tuple[int, ...] = bounded((3, 5, 7), ge=1)
    hidden_dim: int = bounded(512, ge=1)
    lstm_dim: int = bounded(512, ge=1)
    proj_dim: int = bounded(128, ge=1)
    lstm_delay: int = bounded(3, ge=1)
    lstm_norm: bool = True
    lstm_bypass: bool = True
    left_context: int = bounded(40, ge=0)
    right_context: int = bounded(0, ge=0)
    dropout: float = bounded(0.1, ge=0, lt=1)
    decode_chunk_frames: int = bounded(0, ge=0)
    subsampling_factor: int = bounded(1, ge=1)

    def __post_init__(self) -> None:
        check_bounds(self)
        for name in ("kernels", "dilations", "lstm_after"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if len(self.kernels) != len(self.dilations) or not self.kernels:
            raise ConfigError("kernels and dilations must be non-empty and of the same length")
        if any(k % 2 == 0 for k in self.kernels):
            raise ConfigError("kernels must be odd")
        if not self.lstm_after or any(i > len(self.kernels) for i in self.lstm_after) \
                or list(self.lstm_after) != sorted(set(self.lstm_after)):
            raise ConfigError(f"lstm_after must be increasing TDNN layer numbers from 1 to {len(self.kernels)}")

    @property
    def tdnn_context(self) -> int:
        """K, frames consumed on each side by the TDNN layers."""
        return sum((k - 1) // 2 * d for k, d in zip(self.kernels, self.dilations))

    def layer_plan(self) -> List[Tuple[str, int, int]]:
        """The layers in order: ``("tdnn", kernel, dilation)`` or ``("lstm", 0, delay)``."""
        plan: List[Tuple[str, int, int]] = []
        for i, (k, d) in enumerate(zip(self.kernels, self.dilations), start=1):
            plan.append(("tdnn", k, d))
            if i in self.lstm_after:
                plan.append(("lstm", 0, self.lstm_delay))
        return plan


class _Tdnn(nn.Module):
    """Conv1d (valid) -> ReLU -> BatchNorm -> dropout on ``[N, T, C]``."""

    def __init__(self, in_dim: int, out_dim: int, kernel: int, dilation: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv1d(in_dim, out_dim, kernel, dilation=dilation)
        self.norm = nn.BatchNorm1d(out_dim)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.norm(torch.relu(self.conv(x.transpose(1, 2))))).transpose(1, 2)


class _DelayedLstmp(nn.Module):
    """LSTMP whose recurrence spans ``delay`` frames: ``[N, T, D] -> [N, T, P]``, then
    optionally BatchNorm (``norm``) and a linear bypass of the input (``bypass``), then dropout.

    Frames ``t, t + delay, t + 2 delay, ...`` form one stream; the streams run as a batch of
    ordinary LSTMs. Unidirectional, so padding after a sequence's end never reaches its frames.
    """

    def __init__(self, in_dim: int, cells: int, proj: int, delay: int, dropout: float, norm: bool,
                 bypass: bool):
        super().__init__()
        self.delay = delay
        out_dim = min(proj, cells)
        self.lstm = nn.LSTM(in_dim, cells, batch_first=True, proj_size=proj if proj < cells else 0)
        self.norm = nn.BatchNorm1d(out_dim) if norm else None
        self.bypass = nn.Linear(in_dim, out_dim, bias=False) if bypass else None
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        k = self.delay
        if k == 1:
            y = self.lstm(x)[0]
        else:
            steps = -(-t // k)
            streams = nn.functional.pad(x, (0, 0, 0, steps * k - t))
            streams = streams.reshape(n, steps, k, d).transpose(1, 2).reshape(n * k, steps, d)
            y = self.lstm(streams)[0]
            y = y.reshape(n, k, steps, -1).transpose(1, 2).reshape(n, steps * k, -1)[:, :t]
        if self.norm is not None:
            y = self.norm(y.transpose(1, 2)).transpose(1, 2)
        if self.bypass is not None:
            y = y + self.bypass(x)
        return self.drop(y)


class TdnnLstmAcousticModel(AcousticModel):
    """TDNN-LSTM: ``[N, l + T + r, F]`` -> ``[N, ceil(T / f), S]``; recurrent (unidirectional):
    output j depends on input frames ``0 .. j*f + l + r`` only."""

    default_chunk_frames = 40

    def __init__(self, config: TdnnLstmConfig):
        super().__init__(config)
        k = config.tdnn_context
        self.left_context = config.left_context + k
        self.right_context = k + config.right_context
        self.subsampling_factor = f = config.subsampling_factor
        self.recurrent = True
        plan = config.layer_plan()
        # Layers from subsample_before on run on every f-th frame (len(plan): only the output).
        self.subsample_before = len(plan)
        if f > 1:
            for i in range(len(plan) - 1, -1, -1):
                if plan[i][2] % f:
                    break
                self.subsample_before = i
        layers: List[nn.Module] = []
        dim = config.feat_dim
        for i, (kind, kernel, step) in enumerate(plan):
            if i >= self.subsample_before:
                step //= f
            if kind == "tdnn":
                layers.append(_Tdnn(dim, config.hidden_dim, kernel, step, config.dropout))
                dim = config.hidden_dim
            else:
                layers.append(_DelayedLstmp(dim, config.lstm_dim, config.proj_dim, step, config.dropout,
                                            config.lstm_norm, config.lstm_bypass))
                dim = min(config.proj_dim, config.lstm_dim)
        self.layers = nn.ModuleList(layers)
        self.plan = plan
        self.output = nn.Linear(dim, config.num_pdfs)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """See :class:`AcousticModel`."""
        f = self.subsampling_factor
        # Row i of the running sequence holds input frame start + i * stride.
        start, stride = 0, 1
        target = self.left_context + self.config.right_context  # input frame read for output 0
        for i, (layer, (kind, kernel, dilation)) in enumerate(zip(self.layers, self.plan)):
            if i == self.subsample_before and f > 1:
                x, start, stride = self._subsample(x, start, target)
            x = layer(x)
            if kind == "tdnn":
                start += (kernel - 1) // 2 * dilation  # in input frames at any rate
        if self.subsample_before == len(self.plan) and f > 1:
            x, start, stride = self._subsample(x, start, target)
        first = (target - start) // stride
        out_frames = int(self.output_lengths(lengths).max()) if lengths.numel() else 0
        x = x[:, first : first + out_frames]
        return torch.log_softmax(self.output(x), dim=-1), self.output_lengths(lengths)

    def _subsample(self, x: torch.Tensor, start: int, target: int) -> Tuple[torch.Tensor, int, int]:
        """Every f-th row of ``x`` (row i = input frame ``start + i``), keeping the rows of
        input frames ``target + j*f``; returns the rows, the new start and the stride f."""
        f = self.subsampling_factor
        offset = (target - start) % f
        return x[:, offset::f], start + offset, f
