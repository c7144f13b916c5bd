"""Diagonal-covariance GMM acoustic models: one mixture of Gaussians per pdf-id (senone).

The GMM-HMM half of a Kaldi recipe (``gmm-init-mono``, ``gmm-acc-stats-ali``, ``gmm-est``): each
pdf-id ``p`` has a mixture ``sum_g w_pg N(x; mu_pg, diag(sigma2_pg))`` over feature frames
``x`` (float32 ``[D]``), trained by Viterbi EM on frame-level alignments (Young, Evermann et al.,
*The HTK Book*, ch. 8; Povey et al. 2011, "The Kaldi speech recognition toolkit"). The GMM gives
log-likelihoods ``log p(x | p)`` directly, so decoding needs no priors.

The maximum-likelihood update, the variance floor, the removal of Gaussians with too little
occupancy and the choice of how many Gaussians each pdf gets at mix-up (occupancy to the power
0.2) are kaldi-hmm-gmm's (k2-fsa's bindings of Kaldi's GMM code); ours are the parameters kept as
plain arrays (saved as ``.npz`` without pickle), the batched log-likelihoods in torch, and a
seeded mix-up (the library's split perturbation cannot be seeded).
"""

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Tuple, Union

import numpy as np
import torch

from hybrid_asr.bounds import bounded, check_bounds
from hybrid_asr.errors import InputError
from hybrid_asr.native import kaldi_hmm_gmm_modules
from hybrid_asr.utils import JsonDataclass

log = logging.getLogger(__name__)

ARRAYS = ("num_gauss", "weights", "means", "variances")


@dataclass(frozen=True)
class GmmConfig(JsonDataclass):
    """Settings of the maximum-likelihood update and the mix-up (Kaldi ``gmm-est``'s defaults).

    Attributes:
        min_variance: variance floor of every dimension (features are CMVN-normalized).
        min_gaussian_weight: Gaussians with a smaller weight are removed at the update.
        min_gaussian_occupancy: Gaussians with fewer frames (summed posteriors) are removed.
        mixup_power: at mix-up a pdf gets Gaussians in proportion to its occupancy to this power.
        mixup_min_count: a pdf gets at most one Gaussian per this many frames at mix-up.
        perturb_factor: a split Gaussian's two means move this many standard deviations apart
            (times a standard normal draw per dimension).
    """

    json_what = "GMM config"

    min_variance: float = bounded(1e-3, gt=0)
    min_gaussian_weight: float = bounded(1e-5, ge=0, lt=1)
    min_gaussian_occupancy: float = bounded(10.0, ge=0)
    mixup_power: float = bounded(0.2, ge=0, le=1)
    mixup_min_count: float = bounded(20.0, gt=0)
    perturb_factor: float = bounded(0.01, ge=0)

    def __post_init__(self) -> None:
        check_bounds(self)


class DiagGmmSet:
    """The GMMs of all pdf-ids as padded arrays.

    Attributes:
        num_gauss: int64 ``[P]``, Gaussians of each pdf (1 or more).
        weights: float64 ``[P, G]``, mixture weights (0 in padding), each row sums to 1.
        means: float64 ``[P, G, D]``.
        variances: float64 ``[P, G, D]``, diagonal covariances (1 in padding).
    """

    def __init__(self, num_gauss: np.ndarray, weights: np.ndarray, means: np.ndarray, variances: np.ndarray):
        self.num_gauss = np.asarray(num_gauss, dtype=np.int64)
        self.weights = np.asarray(weights, dtype=np.float64)
        self.means = np.asarray(means, dtype=np.float64)
        self.variances = np.asarray(variances, dtype=np.float64)

    @property
    def num_pdfs(self) -> int:
        """P."""
        return len(self.num_gauss)

    @property
    def dim(self) -> int:
        """D, the feature dimension."""
        return self.means.shape[2]

    @classmethod
    def single_gaussians(cls, num_pdfs: int, feats: torch.Tensor) -> "DiagGmmSet":
        """Every pdf one Gaussian with the global mean and variance of ``feats`` (float ``[T, D]``),
        as Kaldi's ``gmm-init-mono`` starts."""
        x = feats.double()
        mean, var = x.mean(0).numpy(), x.var(0, unbiased=False).numpy()
        return cls(np.ones(num_pdfs), np.ones((num_pdfs, 1)), np.tile(mean, (num_pdfs, 1, 1)),
                   np.tile(np.maximum(var, 1e-6), (num_pdfs, 1, 1)))

    # ------------------------------------------------------------------ likelihoods
    def log_likelihoods(self, feats: torch.Tensor, chunk_frames: int = 20000) -> torch.Tensor:
        """``log p(x_t | p)`` of every frame under every pdf's mixture (log base e).

        Args:
            feats: float ``[T, D]``.
            chunk_frames: frames per matrix product (bounds the ``[chunk, P, G]`` temporary).

        Returns:
            float32 ``[T, P]``.
        """
        return self.scorer(chunk_frames)(feats)

    def scorer(self, chunk_frames: int = 20000) -> Callable[[torch.Tensor], torch.Tensor]:
        """:meth:`log_likelihoods` with the mixtures' linear form computed once: a function of
        ``feats`` float ``[T, D]`` -> float32 ``[T, P]``, for scoring many utterances with
        unchanged parameters.

        Raises (when called):
            ValueError: the features are not ``D``-dimensional.
        """
        P, G, D = self.means.shape
        # sum_d of -(x - mu)^2 / (2 var) = [x, x^2] . [mu / var, -1 / (2 var)] - sum mu^2 / (2 var),
        # over the M real Gaussians (no padding: one pdf may have many more than the rest); the
        # features are shifted by the mean of all means first, so that a large offset does not
        # cost float32 precision in the expansion. Per pdf, log-sum-exp by scatter: max, then sum.
        mask = np.arange(G)[None, :] < self.num_gauss[:, None]
        shift = self.means[mask].mean(0)
        mu, var = self.means[mask] - shift, self.variances[mask]
        inv = 1.0 / var
        const = (np.log(self.weights[mask]) - 0.5 * D * np.log(2 * np.pi) - 0.5 * np.log(var).sum(1)
                 - 0.5 * (mu * mu * inv).sum(1))
        W = torch.from_numpy(np.concatenate([mu * inv, -0.5 * inv], axis=1).T.copy()).float()  # [2D, M]
        b = torch.from_numpy(const).float()
        pdf_of = torch.from_numpy(np.repeat(np.arange(P), self.num_gauss))
        offset = torch.from_numpy(shift).float()

        def score(feats: torch.Tensor) -> torch.Tensor:
            if feats.shape[-1] != D:
                raise ValueError(f"features have dimension {feats.shape[-1]}, the GMMs {D}")
            x = feats.float() - offset
            out = []
            for i in range(0, x.shape[0], chunk_frames):
                xc = x[i:i + chunk_frames]
                ll = torch.addmm(b, torch.cat([xc, xc * xc], 1), W)  # [n, M]
                index = pdf_of.expand_as(ll)
                with warnings.catch_warnings():  # torch 1.13 calls scatter_reduce beta
                    warnings.simplefilter("ignore", UserWarning)
                    top = torch.full((len(xc), P), float("-inf")).scatter_reduce(1, index, ll, "amax")
                total = torch.zeros(len(xc), P).scatter_add_(1, index, torch.exp(ll - top.gather(1, index)))
                out.append(top + torch.log(total))
            return torch.cat(out) if out else torch.zeros(0, P)

        return score

    def component_posteriors(self, feats: torch.Tensor, pdfs: torch.Tensor, chunk_frames: int = 4096) -> torch.Tensor:
        """Posterior of every Gaussian of the pdf each frame is aligned to (Kaldi's
        ``gmm-acc-stats-ali`` posteriors).

        Args:
            feats: float ``[T, D]``.
            pdfs: int ``[T]`` pdf-id of every frame.
            chunk_frames: frames per step (bounds the ``[chunk, G, D]`` temporaries).

        Returns:
            float64 ``[T, G]``: row ``t`` holds the posteriors of pdf ``pdfs[t]``'s Gaussians
            (summing to 1), 0 in the padding.
        """
        means, variances = torch.from_numpy(self.means), torch.from_numpy(self.variances)
        log_w = torch.from_numpy(np.log(np.where(self.weights > 0, self.weights, 1.0)))
        pad = torch.from_numpy(np.arange(self.weights.shape[1])[None, :] >= self.num_gauss[:, None])
        out = []
        for start in range(0, len(pdfs), chunk_frames):
            p = pdfs[start:start + chunk_frames].long()
            x = feats[start:start + chunk_frames].double()[:, None, :]
            var = variances[p]
            ll = log_w[p] - 0.5 * (torch.log(var) + (x - means[p]) ** 2 / var).sum(2)
            out.append(torch.softmax(ll.masked_fill(pad[p], float("-inf")), dim=1))
        return torch.cat(out) if out else torch.zeros(0, self.weights.shape[1], dtype=torch.float64)

    def transform_means(self, transform: np.ndarray) -> None:
        """Replace every mean ``mu`` by ``A mu`` (``transform`` float ``[D, D]``) or
        ``A mu + b`` (``[D, D + 1]``), for a model whose features are transformed the same way
        (Kaldi ``gmm-transform-means``); variances are left for the next update."""
        A = np.asarray(transform, dtype=np.float64)
        D = self.dim
        if A.shape not in ((D, D), (D, D + 1)):
            raise ValueError(f"transform of shape {A.shape} for {D}-dimensional means")
        self.means = self.means @ A[:, :D].T + (A[:, D] if A.shape[1] > D else 0.0)

    # ------------------------------------------------------------------ training
    def ml_update(self, feats: torch.Tensor, pdfs: torch.Tensor, config: GmmConfig = GmmConfig()) -> Tuple[float, np.ndarray]:
        """One Viterbi EM step: statistics of the frames each pdf is aligned to, then the
        maximum-likelihood update of that pdf's mixture (pdfs with no frames are kept).

        Args:
            feats: float ``[T, D]`` frames of the whole training set.
            pdfs: int ``[T]`` pdf-id of each frame.
            config: floors and removal thresholds.

        Returns:
            ``(average log-likelihood per frame before the update, occupancy float64 [P])``.
        """
        khg, raw = kaldi_hmm_gmm_modules()
        am = self._to_library()
        acc = khg.AccumAmDiagGmm()
        acc.init(am, khg.GmmUpdateFlags.kGmmAll)
        x = np.ascontiguousarray(feats.float().numpy())
        ids = np.asarray(pdfs, dtype=np.int64)
        if len(ids) != len(x):
            raise ValueError(f"{len(x)} frames but {len(ids)} pdf-ids")
        if len(ids) and (ids.min() < 0 or ids.max() >= self.num_pdfs):
            raise ValueError(f"pdf-ids must be in [0, {self.num_pdfs}), got {ids.min()}..{ids.max()}")
        for t in range(len(x)):
            acc.accumulate_for_gmm(am, x[t], int(ids[t]), 1.0)
        average = acc.tot_log_like / max(acc.tot_count, 1e-10)
        occupancy = np.bincount(ids, minlength=self.num_pdfs).astype(np.float64)
        options = khg.MleDiagGmmOptions()
        options.min_variance = config.min_variance
        options.min_gaussian_weight = config.min_gaussian_weight
        options.min_gaussian_occupancy = config.min_gaussian_occupancy
        options.remove_low_count_gaussians = True
        for p in np.nonzero(occupancy > 0)[0]:
            raw.mle_diag_gmm_update(config=options, diag_gmm_acc=acc.get_acc(int(p)),
                                    flags=khg.GmmUpdateFlags.kGmmAll, gmm=am.get_pdf(int(p)))
        self._from_library(am)
        return float(average), occupancy

    def mix_up(self, target_gauss: int, occupancy: np.ndarray, rng: np.random.Generator,
               config: GmmConfig = GmmConfig()) -> None:
        """Split Gaussians until there are about ``target_gauss`` in all (Kaldi ``gmm-est
        --mix-up``): each pdf's share follows its occupancy to ``config.mixup_power``; within a pdf
        the heaviest Gaussian is split, halving its weight, and the two copies' means are moved
        ``+-perturb_factor`` standard deviations apart with draws from ``rng`` (seeded).

        Args:
            target_gauss: total Gaussians wanted; no change when already at or above it.
            occupancy: float ``[P]`` frames of each pdf (from :meth:`ml_update`).
            rng: the random draws of the perturbation.
            config: power, minimum count per Gaussian and perturbation.
        """
        khg, _ = kaldi_hmm_gmm_modules()
        am = self._to_library()
        am.split_by_count(state_occs=np.asarray(occupancy, np.float32), target_components=int(target_gauss),
                          perturb_factor=0.0, power=config.mixup_power, min_count=config.mixup_min_count)
        targets = np.array([am.num_gauss_in_pdf(p) for p in range(self.num_pdfs)])
        G = int(targets.max())
        weights = np.zeros((self.num_pdfs, G))
        means = np.zeros((self.num_pdfs, G, self.dim))
        variances = np.ones((self.num_pdfs, G, self.dim))
        for p in range(self.num_pdfs):
            n, target = int(self.num_gauss[p]), int(targets[p])
            w, m, v = (list(self.weights[p, :n]), list(self.means[p, :n]), list(self.variances[p, :n]))
            while len(w) < target:
                k = int(np.argmax(w))
                delta = config.perturb_factor * np.sqrt(v[k]) * rng.standard_normal(self.dim)
                w[k] /= 2
                w.append(w[k]), m.append(m[k] + delta), v.append(v[k].copy())
                m[k] = m[k] - delta
            weights[p, :len(w)], means[p, :len(w)], variances[p, :len(w)] = w, m, v
        self.num_gauss, self.weights, self.means, self.variances = targets.astype(np.int64), weights, means, variances

    def _to_library(self):
        khg, _ = kaldi_hmm_gmm_modules()
        am = khg.AmDiagGmm()
        for p in range(self.num_pdfs):
            n = int(self.num_gauss[p])
            g = khg.DiagGmm(nmix=n, dim=self.dim)
            g.set_weights(self.weights[p, :n].astype(np.float32))
            g.set_invvars_and_means((1 / self.variances[p, :n]).astype(np.float32), self.means[p, :n].astype(np.float32))
            g.compute_gconsts()
            am.add_pdf(g)
        return am

    def _from_library(self, am) -> None:
        num = np.array([am.num_gauss_in_pdf(p) for p in range(am.num_pdfs)], dtype=np.int64)
        G = int(num.max())
        self.weights = np.zeros((len(num), G))
        self.means = np.zeros((len(num), G, am.dim))
        self.variances = np.ones((len(num), G, am.dim))
        for p, n in enumerate(num):
            g = am.get_pdf(p)
            self.weights[p, :n], self.means[p, :n], self.variances[p, :n] = np.array(g.weights), g.means, g.vars
        self.num_gauss = num

    # ------------------------------------------------------------------ files
    def save(self, path: Union[str, Path]) -> None:
        """Write the arrays to ``path`` (``.npz``, atomically: a temporary file renamed)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **{name: getattr(self, name) for name in ARRAYS})
        tmp.replace(path)

    @classmethod
    def load(cls, path: Union[str, Path]) -> "DiagGmmSet":
        """Read arrays written by :meth:`save` (no pickle).

        Raises:
            InputError: unreadable, an array missing, shapes that disagree, non-finite values,
                weights that are not a distribution, or variances that are not positive.
        """
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays: Dict[str, np.ndarray] = {k: z[k] for k in ARRAYS}
        except (OSError, ValueError, KeyError) as e:
            raise InputError(path, f"not a GMM file: {e}") from None
        n, w, m, v = (arrays[k] for k in ARRAYS)
        if (n.ndim != 1 or w.ndim != 2 or m.ndim != 3 or v.shape != m.shape or w.shape != m.shape[:2]
                or len(n) != len(w) or len(n) == 0 or n.min() < 1 or n.max() > w.shape[1]):
            raise InputError(path, f"GMM arrays of inconsistent shapes {[a.shape for a in (n, w, m, v)]}")
        if not all(np.isfinite(a).all() for a in (w, m, v)):
            raise InputError(path, "GMM parameters hold NaN or Inf")
        if (v <= 0).any() or (w < 0).any() or not np.allclose(w.sum(1), 1, atol=1e-4):
            raise InputError(path, "GMM variances must be positive and each pdf's weights sum to 1")
        return cls(n, w, m, v)


__all__ = ["DiagGmmSet", "GmmConfig"]
