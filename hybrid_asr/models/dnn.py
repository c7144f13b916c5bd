"""Feed-forward DNN acoustic model over spliced frames (Linear-BatchNorm-ReLU blocks)."""

from dataclasses import dataclass
from typing import Tuple

import torch
from torch import nn

from hybrid_asr.bounds import bounded, check_bounds
from hybrid_asr.models.base import AcousticModel, ModelConfig


@dataclass(frozen=True)
class DnnConfig(ModelConfig):
    """Architecture of :class:`DnnAcousticModel`.

    Attributes:
        feat_dim: F, dimension of one (unspliced) frame.
        num_pdfs: S, the number of senones (output classes).
        left_context: frames of left context spliced in.
        right_context: frames of right context spliced in.
        hidden_dim: width of every hidden layer.
        num_layers: number of Linear-BatchNorm-ReLU blocks.
        dropout: dropout after every block (0 disables).
    """

    type = "dnn"

    left_context: int = bounded(5, ge=0)
    right_context: int = bounded(5, ge=0)
    hidden_dim: int = bounded(512, ge=1)
    num_layers: int = bounded(4, ge=1)
    dropout: float = bounded(0.1, ge=0, lt=1)

    def __post_init__(self) -> None:
        check_bounds(self)

    @property
    def input_dim(self) -> int:
        """``(left + 1 + right) * F``: the spliced input dimension."""
        return (self.left_context + 1 + self.right_context) * self.feat_dim


class DnnAcousticModel(AcousticModel):
    """Hybrid DNN: spliced frames -> senone log-posteriors (Hinton et al. 2012, "Deep neural
    networks for acoustic modeling in speech recognition"; Dahl et al. 2012).

    Output frame t sees input frames ``t .. t + l + r`` (spliced in order, as Kaldi's
    ``splice-feats``); no subsampling. Trained on single-frame chunks by default, which is
    frame-level shuffling as in the classic recipes.
    """

    default_chunk_frames = 1

    def __init__(self, config: DnnConfig):
        super().__init__(config)
        self.left_context, self.right_context = config.left_context, config.right_context
        layers = []
        dim = config.input_dim
        for _ in range(config.num_layers):
            layers += [nn.Linear(dim, config.hidden_dim), nn.BatchNorm1d(config.hidden_dim), nn.ReLU()]
            if config.dropout > 0:
                layers.append(nn.Dropout(config.dropout))
            dim = config.hidden_dim
        self.body = nn.Sequential(*layers)
        self.output = nn.Linear(dim, config.num_pdfs)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``[N, T_in, F]`` -> ``([N, T_in - l - r, S], lengths)``; see :class:`AcousticModel`."""
        n, _, f = x.shape
        k = self.left_context + 1 + self.right_context
        windows = x.unfold(1, k, 1)  # [N, T_out, F, K]
        t_out = windows.shape[1]
        spliced = windows.transpose(2, 3).reshape(n * t_out, k * f)  # frame order t-l .. t+r
        y = self.output(self.body(spliced))
        return torch.log_softmax(y, dim=-1).reshape(n, t_out, -1), self.output_lengths(lengths)
