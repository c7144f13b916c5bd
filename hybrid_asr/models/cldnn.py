"""CLDNN: convolution over frequency, then LSTM layers, then DNN layers.

Sainath, Vinyals, Senior & Sak 2015, "Convolutional, long short-term memory, fully connected deep
neural networks": a convolutional layer with max-pooling over frequency reduces spectral variation,
a linear layer lowers the dimension, LSTMP layers model time, and fully connected layers make the
output easier to predict. The convolution also spans ``conv_time`` frames, which adds
``(conv_time - 1) / 2`` frames of structural context on each side to the chunk context.
"""

from dataclasses import dataclass
from typing import Tuple

import torch
from torch import nn

from hybrid_asr.bounds import bounded, check_bounds
from hybrid_asr.errors import ConfigError
from hybrid_asr.models.base import AcousticModel, ModelConfig
from hybrid_asr.models.lstm import run_lstm


@dataclass(frozen=True)
class CldnnConfig(ModelConfig):
    """Architecture of :class:`CldnnAcousticModel`.

    Attributes:
        feat_dim: F (filterbank bins: the convolution runs over them).
        num_pdfs: S.
        conv_channels: feature maps of the convolution.
        conv_freq: kernel size over frequency (bins).
        conv_time: kernel size over time (frames, odd).
        pool_freq: max-pooling size (and stride) over frequency.
        linear_dim: the dimension-reducing linear layer after the convolution.
        lstm_dim: LSTM cells per layer.
        proj_dim: recurrent projection of each LSTM layer.
        lstm_layers: stacked LSTMP layers.
        dnn_dim: width of the fully connected layers.
        dnn_layers: fully connected ReLU layers before the output.
        left_context: chunk left context (state warm-up), on top of the convolution's.
        right_context: output delay of the (unidirectional) LSTM, on top of the convolution's
            context, as :attr:`hybrid_asr.models.lstm.LstmConfig.right_context`.
        dropout: dropout after the LSTM and the fully connected layers.
        decode_chunk_frames: as :attr:`hybrid_asr.models.lstm.LstmConfig.decode_chunk_frames`.
    """

    type = "cldnn"

    conv_channels: int = bounded(64, ge=1)
    conv_freq: int = bounded(8, ge=1)
    conv_time: int = bounded(3, ge=1)
    pool_freq: int = bounded(3, ge=1)
    linear_dim: int = bounded(256, ge=1)
    lstm_dim: int = bounded(512, ge=1)
    proj_dim: int = bounded(128, ge=0)
    lstm_layers: int = bounded(2, ge=1)
    dnn_dim: int = bounded(512, ge=1)
    dnn_layers: int = bounded(1, ge=0)
    left_context: int = bounded(40, ge=0)
    right_context: int = bounded(5, ge=0)
    dropout: float = bounded(0.1, ge=0, lt=1)
    decode_chunk_frames: int = bounded(0, ge=0)

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.conv_time % 2 == 0 or self.conv_freq > self.feat_dim:
            raise ConfigError("conv_time must be odd and conv_freq at most feat_dim")

    @property
    def pooled_bins(self) -> int:
        """Frequency positions after convolution and pooling."""
        return (self.feat_dim - self.conv_freq + 1) // self.pool_freq


class CldnnAcousticModel(AcousticModel):
    """CLDNN: ``[N, l + T + r, F]`` -> ``[N, T, S]``; recurrent (see :class:`AcousticModel`)."""

    default_chunk_frames = 20

    def __init__(self, config: CldnnConfig):
        super().__init__(config)
        conv_ctx = (config.conv_time - 1) // 2
        self.conv_context = conv_ctx
        self.left_context = config.left_context + conv_ctx
        self.right_context = config.right_context + conv_ctx
        self.recurrent = True
        self.conv = nn.Conv2d(1, config.conv_channels, (config.conv_time, config.conv_freq))
        self.pool = nn.MaxPool2d((1, config.pool_freq))
        self.linear = nn.Linear(config.conv_channels * config.pooled_bins, config.linear_dim)
        self.lstm = nn.LSTM(config.linear_dim, config.lstm_dim, num_layers=config.lstm_layers, batch_first=True,
                            dropout=config.dropout if config.lstm_layers > 1 else 0.0, proj_size=config.proj_dim)
        dnn = []
        dim = config.proj_dim or config.lstm_dim
        for _ in range(config.dnn_layers):
            dnn += [nn.Linear(dim, config.dnn_dim), nn.ReLU()]
            if config.dropout > 0:
                dnn.append(nn.Dropout(config.dropout))
            dim = config.dnn_dim
        self.dnn = nn.Sequential(*dnn)
        self.output = nn.Linear(dim, config.num_pdfs)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """See :class:`AcousticModel`."""
        c = torch.relu(self.conv(x.unsqueeze(1)))  # [N, C, T_in - 2c, F']
        c = self.pool(c)  # [N, C, T', bins]
        n, ch, t, bins = c.shape
        h = self.linear(c.permute(0, 2, 1, 3).reshape(n, t, ch * bins))
        y = run_lstm(self.lstm, h, (lengths - 2 * self.conv_context).clamp(min=1))
        cfg = self.config
        y = y[:, cfg.left_context + cfg.right_context :]  # label of frame j read at step l + j + r
        return torch.log_softmax(self.output(self.dnn(y)), dim=-1), self.output_lengths(lengths)
