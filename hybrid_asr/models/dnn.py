"""Feed-forward DNN acoustic model over spliced frames (Linear-BatchNorm-ReLU blocks)."""

from dataclasses import dataclass

import torch
from torch import nn

from hybrid_asr.utils import JsonDataclass


@dataclass(frozen=True)
class DnnConfig(JsonDataclass):
    """Architecture of :class:`DnnAcousticModel`.

    Attributes:
        feat_dim: F, dimension of one (unspliced) frame.
        left_context: frames of left context spliced in.
        right_context: frames of right context spliced in.
        hidden_dim: width of every hidden layer.
        num_layers: number of Linear-BatchNorm-ReLU blocks.
        dropout: dropout after every block (0 disables).
        num_pdfs: S, the number of senones (output classes).
    """

    json_what = "model config"

    feat_dim: int
    num_pdfs: int
    left_context: int = 5
    right_context: int = 5
    hidden_dim: int = 512
    num_layers: int = 4
    dropout: float = 0.1

    @property
    def input_dim(self) -> int:
        """``(left + 1 + right) * F``: the spliced input dimension."""
        return (self.left_context + 1 + self.right_context) * self.feat_dim



class DnnAcousticModel(nn.Module):
    """Hybrid DNN: spliced frames -> senone log-posteriors (Hinton et al. 2012, "Deep neural
    networks for acoustic modeling in speech recognition"; Dahl et al. 2012).

    ``[..., (l+1+r)*F]`` float32 -> ``[..., S]`` log p(s | x) (log base e, log-softmax).
    The input is CMVN-normalized features spliced with :func:`hybrid_asr.features.splice`.
    """

    def __init__(self, config: DnnConfig):
        super().__init__()
        self.config = config
        layers = []
        dim = config.input_dim
        for _ in range(config.num_layers):
            layers += [nn.Linear(dim, config.hidden_dim), nn.BatchNorm1d(config.hidden_dim), nn.ReLU()]
            if config.dropout > 0:
                layers.append(nn.Dropout(config.dropout))
            dim = config.hidden_dim
        self.body = nn.Sequential(*layers)
        self.output = nn.Linear(dim, config.num_pdfs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Log-posteriors ``[..., S]`` of spliced frames ``[..., input_dim]``."""
        shape = x.shape[:-1]
        y = self.output(self.body(x.reshape(-1, x.shape[-1])))
        return torch.log_softmax(y, dim=-1).reshape(*shape, -1)
