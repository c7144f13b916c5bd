"""A GMM-HMM's emission model behind the acoustic-model interface, so that alignment, graphs and
decoding treat it as they treat the neural models.

Its outputs are the mixtures' log-likelihoods ``log p(x_t | s)`` rather than log-posteriors; the
bundle it is saved in carries zero log priors, so the scores the graphs read are these
log-likelihoods unchanged (Kaldi's ``DecodableAmDiagGmmScaled``). An LDA+MLLT system splices
+-c frames and applies its affine feature transform inside the model (Kaldi's
``splice-feats | transform-feats``), so the model reads the same feature store as it would
unspliced. Training is
:mod:`hybrid_asr.training.gmm`'s Viterbi EM, not gradient descent: the model has no parameters,
only buffers.
"""

import copy
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import torch

from hybrid_asr.bounds import bounded
from hybrid_asr.gmm.diag_gmm import DiagGmmSet
from hybrid_asr.models.base import AcousticModel, ModelConfig


@dataclass(frozen=True)
class GmmModelConfig(ModelConfig):
    """Shape of a saved GMM acoustic model.

    Attributes:
        max_gauss: G, Gaussians of the largest mixture (the padded size of the arrays).
        splice_context: c, frames spliced on each side before the transform (0: none).
        transform_dim: rows of the affine feature transform applied after splicing (0: no
            transform; the GMMs then read the spliced frames).
    """

    type = "gmm"

    max_gauss: int = bounded(1, ge=1)
    splice_context: int = bounded(0, ge=0)
    transform_dim: int = bounded(0, ge=0)

    @property
    def spliced_dim(self) -> int:
        """``(2c + 1) F``."""
        return (2 * self.splice_context + 1) * self.feat_dim

    @property
    def gmm_dim(self) -> int:
        """Dimension of the frames the Gaussians model."""
        return self.transform_dim or self.spliced_dim


class GmmAcousticModel(AcousticModel):
    """Diagonal-covariance GMM per pdf-id, optionally over spliced and transformed frames (left
    and right context ``splice_context``, no subsampling).

    Buffers: ``num_gauss`` int64 ``[S]``, ``weights`` float64 ``[S, G]``, ``means`` and
    ``variances`` float64 ``[S, G, F']`` (:class:`~hybrid_asr.gmm.DiagGmmSet`'s padded arrays,
    ``F'`` = :attr:`GmmModelConfig.gmm_dim`) and, with a transform, ``transform`` float64
    ``[transform_dim, (2c + 1) F + 1]`` (last column: the offset). The state dict (``model.pt``)
    holds the mixtures packed, without the padding: ``weights`` float64 ``[N]``, ``means`` and
    ``variances`` float64 ``[N, F']`` for the ``N = sum(num_gauss)`` Gaussians in pdf order (a
    tree of a few thousand leaves with up to G Gaussians each would otherwise store S x G rows);
    padded state dicts of earlier versions load too.
    """

    def __init__(self, config: GmmModelConfig):
        super().__init__(config)
        S, G, F = config.num_pdfs, config.max_gauss, config.gmm_dim
        self.left_context = self.right_context = config.splice_context
        if config.transform_dim:
            eye = torch.eye(config.transform_dim, config.spliced_dim + 1, dtype=torch.float64)
            self.register_buffer("transform", eye)
        else:
            self.transform = None
        self.register_buffer("num_gauss", torch.ones(S, dtype=torch.int64))
        self.register_buffer("weights", torch.cat([torch.ones(S, 1), torch.zeros(S, G - 1)], 1).double())
        self.register_buffer("means", torch.zeros(S, G, F, dtype=torch.float64))
        self.register_buffer("variances", torch.ones(S, G, F, dtype=torch.float64))

    @classmethod
    def from_gmms(cls, gmms: DiagGmmSet, transform: Optional[np.ndarray] = None, splice_context: int = 0,
                  feat_dim: Optional[int] = None) -> "GmmAcousticModel":
        """The model holding ``gmms``' parameters (copied).

        Args:
            gmms: the mixtures.
            transform: float ``[gmms.dim, (2c + 1) F + 1]`` affine transform of the spliced
                frames, or None.
            splice_context: c.
            feat_dim: F, the dimension of an input frame (needed with splicing or a transform;
                else ``gmms.dim``).

        Raises:
            ValueError: the shapes disagree.
        """
        F = gmms.dim if feat_dim is None else feat_dim
        config = GmmModelConfig(feat_dim=F, num_pdfs=gmms.num_pdfs, max_gauss=gmms.weights.shape[1],
                                splice_context=splice_context, transform_dim=0 if transform is None else gmms.dim)
        if config.gmm_dim != gmms.dim or (transform is not None and tuple(transform.shape) != (gmms.dim, config.spliced_dim + 1)):
            raise ValueError(f"GMMs of dimension {gmms.dim} cannot read {F}-dimensional frames spliced +-{splice_context}"
                             f"{'' if transform is None else f' through a transform of shape {tuple(transform.shape)}'}")
        model = cls(config)
        if transform is not None:
            model.transform.copy_(torch.from_numpy(np.asarray(transform, dtype=np.float64)))
        model.num_gauss.copy_(torch.from_numpy(gmms.num_gauss))
        model.weights.copy_(torch.from_numpy(gmms.weights))
        model.means.copy_(torch.from_numpy(gmms.means))
        model.variances.copy_(torch.from_numpy(gmms.variances))
        return model

    def with_transform(self, transform: np.ndarray) -> "GmmAcousticModel":
        """This model with another feature transform (e.g. composed with a speaker's fMLLR), sharing
        its mixtures: the same buffers and the same precomputed scorer, so a model per speaker
        costs one ``[F', (2c + 1) F + 1]`` matrix instead of a copy of every Gaussian.

        Args:
            transform: float ``[gmm_dim, (2c + 1) F + 1]`` affine transform of the spliced frames.

        Raises:
            ValueError: the model has no transform (it reads spliced frames directly), or the shape
                differs from the model's transform.
        """
        if self.transform is None:
            raise ValueError("a GMM model without a feature transform cannot take one")
        new = torch.as_tensor(np.asarray(transform, dtype=np.float64)).to(self.transform.device)
        if new.shape != self.transform.shape:
            raise ValueError(f"transform of shape {tuple(new.shape)}, the model's is {tuple(self.transform.shape)}")
        self._scorer()  # built once here, shared by every copy
        out = copy.copy(self)
        out._buffers = dict(self._buffers)
        out._buffers["transform"] = new
        return out

    PACKED = ("weights", "means", "variances")

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        """Writes the mixtures packed (class docstring)."""
        super()._save_to_state_dict(destination, prefix, keep_vars)
        used = torch.arange(self.means.shape[1], device=self.num_gauss.device)[None, :] < self.num_gauss[:, None]
        for name in self.PACKED:
            destination[prefix + name] = getattr(self, name)[used]

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        """Reads packed mixtures (and the padded ones of earlier files) into the padded buffers."""
        num_gauss = state_dict.get(prefix + "num_gauss")
        packed = prefix + "weights" in state_dict and state_dict[prefix + "weights"].dim() == 1
        if packed and num_gauss is not None:
            S, G = self.weights.shape
            if num_gauss.shape != (S,) or int(num_gauss.min()) < 1 or int(num_gauss.max()) > G or \
                    int(num_gauss.sum()) != len(state_dict[prefix + "weights"]):
                error_msgs.append(f"packed GMMs: num_gauss does not fit {S} pdfs of at most {G} Gaussians and "
                                  f"{len(state_dict[prefix + 'weights'])} stored Gaussians")
                return
            used = torch.arange(G)[None, :] < num_gauss[:, None]
            state_dict = dict(state_dict)
            for name, fill in zip(self.PACKED, (0.0, 0.0, 1.0)):
                flat = state_dict[prefix + name]
                padded = torch.full(getattr(self, name).shape, fill, dtype=torch.float64)
                if flat.shape[1:] != padded.shape[2:]:
                    error_msgs.append(f"packed GMMs: {name} has shape {tuple(flat.shape)}, expected "
                                      f"[{int(num_gauss.sum())}{''.join(f', {d}' for d in padded.shape[2:])}]")
                    return
                padded[used] = flat.double()
                state_dict[prefix + name] = padded
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def gmms(self) -> DiagGmmSet:
        """The parameters as a :class:`~hybrid_asr.gmm.DiagGmmSet` (copies, on the CPU)."""
        return DiagGmmSet(*(t.cpu().numpy().copy() for t in (self.num_gauss, self.weights, self.means,
                                                               self.variances)))

    def _scorer(self):
        """The mixtures' scoring function, rebuilt only when a parameter buffer changed (by
        identity or an in-place write, e.g. ``load_state_dict``)."""
        key = tuple((t.data_ptr(), t._version) for t in (self.num_gauss, self.weights, self.means, self.variances))
        if getattr(self, "_scorer_key", None) != key:
            self._scorer_fn, self._scorer_key = self.gmms().scorer(), key
        return self._scorer_fn

    def gmm_features(self, x: torch.Tensor) -> torch.Tensor:
        """The frames the Gaussians read: ``[N, T, F]`` with context -> float32
        ``[N, T - 2c, F']`` (spliced, then transformed if the model has a transform)."""
        c = self.left_context
        if c:
            x = x.unfold(1, 2 * c + 1, 1).transpose(2, 3).reshape(x.shape[0], -1, (2 * c + 1) * x.shape[2])
        if self.transform is not None:
            A = self.transform.to(x.device)
            x = (x.double() @ A[:, :-1].T + A[:, -1]).float()
        return x

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Log-likelihoods of every frame under every pdf's mixture.

        Args:
            x: float32 ``[N, T, F]`` with ``splice_context`` frames of context on each side.
            lengths: int64 ``[N]``.

        Returns:
            ``(log p(x_t | s) [N, T - 2c, S] float32 (log base e), output lengths [N])``.
        """
        y = self.gmm_features(x)
        N, T, F = y.shape
        scores = self._scorer()(y.reshape(N * T, F).cpu())
        return scores.view(N, T, -1).to(x.device), self.output_lengths(lengths)


__all__ = ["GmmAcousticModel", "GmmModelConfig"]
