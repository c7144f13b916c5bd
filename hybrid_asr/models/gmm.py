"""A GMM-HMM's emission model behind the acoustic-model interface, so that alignment, graphs and
decoding treat it as they treat the neural models.

Its outputs are the mixtures' log-likelihoods ``log p(x_t | s)`` rather than log-posteriors; the
bundle it is saved in carries zero log priors, so the scores the graphs read are these
log-likelihoods unchanged (Kaldi's ``DecodableAmDiagGmmScaled``). Training is
:mod:`hybrid_asr.training.gmm`'s Viterbi EM, not gradient descent: the model has no parameters,
only buffers.
"""

from dataclasses import dataclass
from typing import Tuple

import torch

from hybrid_asr.bounds import bounded
from hybrid_asr.gmm.diag_gmm import DiagGmmSet
from hybrid_asr.models.base import AcousticModel, ModelConfig


@dataclass(frozen=True)
class GmmModelConfig(ModelConfig):
    """Shape of a saved GMM acoustic model.

    Attributes:
        max_gauss: G, Gaussians of the largest mixture (the padded size of the arrays).
    """

    type = "gmm"

    max_gauss: int = bounded(1, ge=1)


class GmmAcousticModel(AcousticModel):
    """Diagonal-covariance GMM per pdf-id (no context, no subsampling).

    Buffers (saved in ``model.pt``): ``num_gauss`` int64 ``[S]``, ``weights`` float64 ``[S, G]``,
    ``means`` and ``variances`` float64 ``[S, G, F]`` (:class:`~hybrid_asr.gmm.DiagGmmSet`'s
    arrays).
    """

    def __init__(self, config: GmmModelConfig):
        super().__init__(config)
        S, G, F = config.num_pdfs, config.max_gauss, config.feat_dim
        self.register_buffer("num_gauss", torch.ones(S, dtype=torch.int64))
        self.register_buffer("weights", torch.cat([torch.ones(S, 1), torch.zeros(S, G - 1)], 1).double())
        self.register_buffer("means", torch.zeros(S, G, F, dtype=torch.float64))
        self.register_buffer("variances", torch.ones(S, G, F, dtype=torch.float64))

    @classmethod
    def from_gmms(cls, gmms: DiagGmmSet) -> "GmmAcousticModel":
        """The model holding ``gmms``' parameters (copied)."""
        model = cls(GmmModelConfig(feat_dim=gmms.dim, num_pdfs=gmms.num_pdfs, max_gauss=gmms.weights.shape[1]))
        model.num_gauss.copy_(torch.from_numpy(gmms.num_gauss))
        model.weights.copy_(torch.from_numpy(gmms.weights))
        model.means.copy_(torch.from_numpy(gmms.means))
        model.variances.copy_(torch.from_numpy(gmms.variances))
        return model

    def gmms(self) -> DiagGmmSet:
        """The parameters as a :class:`~hybrid_asr.gmm.DiagGmmSet` (copies, on the CPU)."""
        return DiagGmmSet(*(t.cpu().numpy().copy() for t in (self.num_gauss, self.weights, self.means,
                                                               self.variances)))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Log-likelihoods of every frame under every pdf's mixture.

        Args:
            x: float32 ``[N, T, F]``.
            lengths: int64 ``[N]``.

        Returns:
            ``(log p(x_t | s) [N, T, S] float32 (log base e), lengths [N])``.
        """
        N, T, F = x.shape
        scores = self.gmms().log_likelihoods(x.reshape(N * T, F).cpu())
        return scores.view(N, T, -1).to(x.device), lengths


__all__ = ["GmmAcousticModel", "GmmModelConfig"]
