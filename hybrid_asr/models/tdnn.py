"""Time-delay neural network (TDNN) and factored TDNN (TDNN-F) acoustic models.

A TDNN layer is a 1-D convolution over time with a dilation (Waibel et al. 1989; Peddinti, Povey &
Khudanpur 2015, "A time delay neural network architecture for efficient modeling of long temporal
contexts"): narrow kernels in the lower layers, wider dilations above, so the top layers see a long
context cheaply. Convolutions are unpadded ("valid"), so the model consumes exactly its declared
context. A TDNN-F layer (Povey et al. 2018, "Semi-orthogonal low-rank matrix factorization for deep
neural networks") factors each layer's matrix through a bottleneck whose first factor is kept
semi-orthogonal, and adds a scaled bypass from the layer's input.
"""

from dataclasses import dataclass
from typing import List, Tuple

import torch
from torch import nn

from hybrid_asr.bounds import bounded, check_bounds
from hybrid_asr.errors import ConfigError
from hybrid_asr.models.base import AcousticModel, ModelConfig


@dataclass(frozen=True)
class TdnnConfig(ModelConfig):
    """Architecture of :class:`TdnnAcousticModel`.

    Attributes:
        feat_dim: F.
        num_pdfs: S.
        kernels: kernel size (frames) of each layer, odd.
        dilations: dilation of each layer (same length as ``kernels``). The default, kernels
            5,3,3,3,3,3 with dilations 1,1,1,3,3,3, is Kaldi's ``tdnn_1a`` splicing
            ({-2..2}, {-1,0,1} x2, {-3,0,3} x3): 13 frames of context on each side.
        hidden_dim: channels of every layer.
        bottleneck_dim: 0 for plain TDNN layers; > 0 makes every layer after the first a
            TDNN-F layer through a semi-orthogonal bottleneck of this size.
        bypass_scale: TDNN-F only: weight of the input added to each factored layer's output.
        dropout: dropout after every layer.
        subsampling_factor: f; outputs at every f-th frame only. The layers from the first one
            whose dilation, and every later one's, is a multiple of f run on every f-th frame
            with their dilations divided by f (the frames they would skip are never computed, as
            nnet3 computes a chain TDNN's upper layers: the default dilations 1,1,1,3,3,3 at
            f = 3 run the top three layers at a third of the frame rate); the outputs are the
            same as those of the full-rate layers at every f-th frame. With no such layer, the
            last layer alone is strided.
    """

    type = "tdnn"

    kernels: Tuple[int, ...] = bounded((5, 3, 3, 3, 3, 3), ge=1)
    dilations: Tuple[int, ...] = bounded((1, 1, 1, 3, 3, 3), ge=1)
    hidden_dim: int = bounded(512, ge=1)
    bottleneck_dim: int = bounded(0, ge=0)
    bypass_scale: float = bounded(0.66, ge=0)
    dropout: float = bounded(0.1, ge=0, lt=1)
    subsampling_factor: int = bounded(1, ge=1)

    def __post_init__(self) -> None:
        check_bounds(self)
        object.__setattr__(self, "kernels", tuple(self.kernels))
        object.__setattr__(self, "dilations", tuple(self.dilations))
        if len(self.kernels) != len(self.dilations) or not self.kernels:
            raise ConfigError("kernels and dilations must be non-empty and of the same length")
        if any(k % 2 == 0 for k in self.kernels):
            raise ConfigError("kernels must be odd")

    @property
    def context(self) -> int:
        """Frames of context on each side: ``sum((k - 1) / 2 * d)``."""
        return sum((k - 1) // 2 * d for k, d in zip(self.kernels, self.dilations))


class _TdnnLayer(nn.Module):
    """Conv1d (valid) -> ReLU -> BatchNorm -> dropout, on ``[N, C, T]``."""

    def __init__(self, in_dim: int, out_dim: int, kernel: int, dilation: int, dropout: float, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv1d(in_dim, out_dim, kernel, dilation=dilation, stride=stride)
        self.norm = nn.BatchNorm1d(out_dim)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.norm(torch.relu(self.conv(x))))


class _TdnnFLayer(nn.Module):
    """Factored TDNN layer: the kernel's taps split around a bottleneck.

    ``kernel`` taps at offsets ``-c*d .. c*d`` (c = (kernel-1)/2) become a first factor over the
    left half ``-c*d .. 0`` into the bottleneck (kept semi-orthogonal) and a second over the right
    half ``0 .. c*d`` back to ``hidden_dim`` (Kaldi's ``tdnnf-layer`` with time-stride d), then
    ReLU, BatchNorm, dropout, plus ``bypass_scale`` times the input frame at the same time.
    """

    def __init__(self, dim: int, bottleneck: int, kernel: int, dilation: int, dropout: float,
                 bypass_scale: float, stride: int = 1):
        super().__init__()
        half = (kernel - 1) // 2 + 1
        self.context = (kernel - 1) // 2 * dilation
        self.stride = stride
        self.factor1 = nn.Conv1d(dim, bottleneck, half, dilation=dilation, bias=False)
        self.factor2 = nn.Conv1d(bottleneck, dim, half, dilation=dilation, stride=stride)
        self.norm = nn.BatchNorm1d(dim)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.bypass_scale = bypass_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.drop(self.norm(torch.relu(self.factor2(self.factor1(x)))))
        c = self.context
        bypass = x[:, :, c : x.shape[2] - c : self.stride] if c else x[:, :, :: self.stride]
        return y + self.bypass_scale * bypass

    @torch.no_grad()
    def constrain(self) -> None:
        """One step of Povey et al. 2018's update towards a semi-orthogonal first factor.

        With M the ``[bottleneck, dim * taps]`` matrix, P = M M^T and alpha^2 = tr(P P^T) / tr(P),
        M <- M - 1 / (2 alpha^2) (P - alpha^2 I) M (section 2.2, "floating" scale, nu = 1/8).
        """
        w = self.factor1.weight
        m = w.reshape(w.shape[0], -1)
        p = m @ m.t()
        alpha2 = (p * p).sum() / p.trace().clamp(min=1e-10)
        q = p - alpha2 * torch.eye(p.shape[0], dtype=p.dtype, device=p.device)
        w.copy_((m - (q @ m) / (2 * alpha2)).reshape_as(w))


def first_subsampled_layer(dilations: Tuple[int, ...], factor: int) -> int:
    """Index of the layer that takes every ``factor``-th frame: the first from which on every
    dilation is a multiple of ``factor``, else the last layer (:attr:`TdnnConfig.subsampling_factor`)."""
    n = len(dilations)
    if factor == 1:
        return n - 1
    first = n - 1
    for i in range(n - 1, 0, -1):
        if dilations[i] % factor:
            break
        first = i
    return first


class TdnnAcousticModel(AcousticModel):
    """TDNN / TDNN-F: ``[N, l + T + r, F]`` -> ``[N, ceil(T / f), S]`` log-posteriors.

    Feed-forward: output j sees input frames ``j*f .. j*f + l + r`` with ``l = r =``
    :attr:`TdnnConfig.context`.
    """

    default_chunk_frames = 8  # Kaldi's frames-per-eg for TDNNs

    def __init__(self, config: TdnnConfig):
        super().__init__(config)
        self.left_context = self.right_context = config.context
        self.subsampling_factor = config.subsampling_factor
        layers: List[nn.Module] = []
        f, n = config.subsampling_factor, len(config.kernels)
        self.strided_layer = first_subsampled_layer(config.dilations, f)
        for i, (k, d) in enumerate(zip(config.kernels, config.dilations)):
            stride = f if i == self.strided_layer else 1
            if i > self.strided_layer:
                d //= f  # the input is already at every f-th frame
            if i > 0 and config.bottleneck_dim > 0:
                layers.append(_TdnnFLayer(config.hidden_dim, config.bottleneck_dim, k, d, config.dropout,
                                          config.bypass_scale, stride))
            else:
                in_dim = config.feat_dim if i == 0 else config.hidden_dim
                layers.append(_TdnnLayer(in_dim, config.hidden_dim, k, d, config.dropout, stride))
        self.layers = nn.Sequential(*layers)
        self.output = nn.Linear(config.hidden_dim, config.num_pdfs)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """See :class:`AcousticModel`."""
        y = self.layers(x.transpose(1, 2)).transpose(1, 2)  # [N, T_out, C]
        return torch.log_softmax(self.output(y), dim=-1), self.output_lengths(lengths)

    def after_optimizer_step(self, step: int) -> None:
        """Every 4th step, move the TDNN-F bottleneck factors towards semi-orthogonality (as
        Kaldi does every few minibatches)."""
        if step % 4 == 0:
            for layer in self.layers:
                if isinstance(layer, _TdnnFLayer):
                    layer.constrain()

