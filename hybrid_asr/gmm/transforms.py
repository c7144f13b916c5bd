"""Linear feature transforms estimated for GMM-HMM systems: LDA and MLLT (semi-tied covariance).

Kaldi's ``train_lda_mllt.sh`` splices +-3 frames of 13 MFCCs (91 dimensions), projects them to
40 by linear discriminant analysis with the HMM states (pdf-ids) of an alignment as classes, and
then learns a square maximum likelihood linear transform (MLLT) of those 40 dimensions, the
transform that makes the diagonal-covariance Gaussians fit best (Gopinath 1998, "Maximum
likelihood modeling with Gaussian distributions for classification"; Gales 1999, "Semi-tied
covariance matrices for hidden Markov models"). Both are ours (numpy, float64); the statistics
are weighted, so that silence frames can be left out as Kaldi does (``weight-silence-post 0``).
"""

from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence, Tuple

import numpy as np
import torch

from hybrid_asr.gmm.diag_gmm import DiagGmmSet


def _check_frames(feats: torch.Tensor, labels: torch.Tensor, weights: Optional[torch.Tensor]) -> None:
    if feats.dim() != 2 or labels.shape != feats.shape[:1] or (weights is not None and weights.shape != labels.shape):
        raise ValueError(f"expected frames [T, D] with labels [T] and weights [T], got {tuple(feats.shape)}, "
                         f"{tuple(labels.shape)}, {None if weights is None else tuple(weights.shape)}")


@dataclass
class LdaStats:
    """Statistics of linear discriminant analysis: per class the (weighted) count and sum of
    the frames, and the total second moment.

    Attributes:
        count: float64 ``[C]``.
        sums: float64 ``[C, D]``.
        second: float64 ``[D, D]``, ``sum_t w_t x_t x_t^T``.
    """

    count: np.ndarray
    sums: np.ndarray
    second: np.ndarray

    @classmethod
    def zeros(cls, num_classes: int, dim: int) -> "LdaStats":
        """Empty statistics for ``num_classes`` classes of ``dim``-dimensional frames."""
        return cls(np.zeros(num_classes), np.zeros((num_classes, dim)), np.zeros((dim, dim)))

    def accumulate(self, feats: torch.Tensor, classes: torch.Tensor, weights: Optional[torch.Tensor] = None) -> None:
        """Add frames.

        Args:
            feats: float ``[T, D]``.
            classes: int ``[T]`` class of every frame (``0 .. C - 1``).
            weights: float ``[T]`` weight of every frame (None: 1).

        Raises:
            ValueError: shapes disagree or a class is out of range.
        """
        _check_frames(feats, classes, weights)
        if len(classes) and (int(classes.min()) < 0 or int(classes.max()) >= len(self.count)):
            raise ValueError(f"classes must be in [0, {len(self.count)})")
        x = feats.double()
        w = torch.ones(len(x), dtype=torch.float64) if weights is None else weights.double()
        idx = classes.long()
        self.count += torch.zeros(len(self.count), dtype=torch.float64).index_add_(0, idx, w).numpy()
        self.sums += torch.zeros(self.sums.shape, dtype=torch.float64).index_add_(0, idx, x * w[:, None]).numpy()
        self.second += (x.T @ (x * w[:, None])).numpy()

    def scatter(self) -> "tuple[np.ndarray, np.ndarray, np.ndarray]":
        """``(within-class covariance W, between-class covariance B, global mean)``, covariances
        float64 ``[D, D]`` per frame (``W + B`` is the total covariance)."""
        n = self.count.sum()
        if n <= 0:
            raise ValueError("LDA statistics hold no frames")
        mean = self.sums.sum(0) / n
        seen = self.count > 0
        class_means_sq = (self.sums[seen].T / self.count[seen]) @ self.sums[seen] / n
        within = self.second / n - class_means_sq
        between = class_means_sq - np.outer(mean, mean)
        return (within + within.T) / 2, (between + between.T) / 2, mean

    def estimate(self, dim: int) -> np.ndarray:
        """The LDA projection to ``dim`` dimensions (Fukunaga, *Introduction to Statistical
        Pattern Recognition*, ch. 10; Kaldi ``est-lda``): the rows are the generalized
        eigenvectors ``B a = lambda W a`` of the ``dim`` largest eigenvalues, scaled so that the
        projected within-class covariance is the identity; the last column moves the global
        mean to 0.

        Returns:
            float64 ``[dim, D + 1]``: ``y = M[:, :D] x + M[:, D]``.

        Raises:
            ValueError: ``dim`` not in ``1 .. D``, no frames, or a singular within-class
                covariance (fewer frames than dimensions in the classes).
        """
        D = self.second.shape[0]
        if not 1 <= dim <= D:
            raise ValueError(f"LDA dimension must be in 1..{D}, got {dim}")
        within, between, mean = self.scatter()
        try:
            chol = np.linalg.cholesky(within)
        except np.linalg.LinAlgError:
            raise ValueError("the within-class covariance is singular: too few frames per class") from None
        inv_chol = np.linalg.inv(chol)
        values, vectors = np.linalg.eigh(inv_chol @ between @ inv_chol.T)
        top = vectors[:, np.argsort(values)[::-1][:dim]]
        proj = top.T @ inv_chol
        return np.concatenate([proj, -(proj @ mean)[:, None]], axis=1)


def lda_objective(proj: np.ndarray, within: np.ndarray, between: np.ndarray) -> float:
    """Fisher's criterion that LDA maximizes over ``[d, D]`` projections: ``trace((P W P^T)^-1
    P B P^T)``, the between-class spread measured in units of the within-class spread."""
    p = np.asarray(proj)[:, : within.shape[0]]
    return float(np.trace(np.linalg.solve(p @ within @ p.T, p @ between @ p.T)))


@dataclass
class MlltStats:
    """Statistics of the semi-tied covariance (MLLT) update for diagonal GMMs.

    For the frames' Gaussian posteriors ``gamma_tm`` within the pdf each frame is aligned to,
    ``G_i = sum_{t,m} gamma_tm (x_t - mu_m)(x_t - mu_m)^T / sigma2_mi`` for every dimension ``i``
    and the total posterior ``beta`` (Gales 1999, eq. 16-19; Kaldi ``MlltAccs``).

    Attributes:
        beta: total weighted occupancy.
        G: float64 ``[D, D, D]``, ``G[i]`` the matrix of dimension ``i``.
    """

    beta: float = 0.0
    G: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))

    @classmethod
    def zeros(cls, dim: int) -> "MlltStats":
        """Empty statistics of ``dim``-dimensional features."""
        return cls(0.0, np.zeros((dim, dim, dim)))

    def accumulate(self, gmms: DiagGmmSet, feats: torch.Tensor, pdfs: torch.Tensor,
                   weights: Optional[torch.Tensor] = None, min_posterior: float = 1e-4) -> None:
        """Add aligned frames.

        Args:
            gmms: the current model (in the feature space of ``feats``).
            feats: float ``[T, D]``.
            pdfs: int ``[T]`` aligned pdf-id of every frame.
            weights: float ``[T]`` frame weights (None: 1; 0 leaves a frame out, e.g. silence).
            min_posterior: Gaussian posteriors below this are dropped (and the rest not
                renormalized), as Kaldi's ``--rand-prune`` thins small ones.
        """
        _check_frames(feats, pdfs, weights)
        D = gmms.dim
        post = gmms.component_posteriors(feats, pdfs)  # [T, G]
        if weights is not None:
            post = post * weights.double()[:, None]
        t, g = torch.nonzero(post >= min_posterior, as_tuple=True)
        if not len(t):
            return
        p = pdfs.long()[t]
        gamma = post[t, g]
        mean = torch.from_numpy(gmms.means)[p, g]
        inv_var = 1.0 / torch.from_numpy(gmms.variances)[p, g]
        diff = feats.double()[t] - mean
        # per pair the outer product diff diff^T, weighted per dimension i by gamma / sigma2_i
        for start in range(0, len(t), 4096):
            d = diff[start:start + 4096]
            w = gamma[start:start + 4096, None] * inv_var[start:start + 4096]  # [n, D]
            outer = (d[:, :, None] * d[:, None, :]).reshape(len(d), D * D)
            self.G += (w.T @ outer).reshape(D, D, D).numpy()
        self.beta += float(gamma.sum())

    def objective(self, transform: np.ndarray) -> float:
        """The auxiliary function the update maximizes: ``beta log|det A| - 1/2 sum_i a_i G_i
        a_i^T`` (``a_i`` the rows of ``A``; log base e)."""
        A = np.asarray(transform, dtype=np.float64)
        quad = sum(float(A[i] @ self.G[i] @ A[i]) for i in range(len(A)))
        return float(self.beta * np.linalg.slogdet(A)[1] - 0.5 * quad)

    def estimate(self, num_iters: int = 10,
                 on_row: Optional[Callable[[np.ndarray], None]] = None) -> np.ndarray:
        """The MLLT matrix by Gales' row-by-row update, from the identity: for each row ``i``,
        ``a_i = c_i G_i^-1 sqrt(beta / (c_i G_i^-1 c_i^T))`` with ``c_i`` the row of cofactors;
        every row update maximizes the objective over that row, so the objective never falls.

        Args:
            num_iters: passes over all rows (Kaldi: 10).
            on_row: called with the matrix after every row update (for tests and logging).

        Returns:
            float64 ``[D, D]`` ``A``: the new features are ``A x``, the new means ``A mu``.

        Raises:
            ValueError: no statistics.
        """
        D = self.G.shape[0]
        if self.beta <= 0:
            raise ValueError("MLLT statistics hold no frames")
        A = np.eye(D)
        inv_G = [np.linalg.inv(self.G[i]) for i in range(D)]
        for _ in range(num_iters):
            for i in range(D):
                cof = np.linalg.inv(A).T[i]  # the cofactor row up to det(A), which cancels below
                row = cof @ inv_G[i]
                A[i] = row * np.sqrt(self.beta / float(row @ cof))
                if on_row is not None:
                    on_row(A)
        return A




@dataclass
class FmllrStats:
    """Statistics of a feature-space MLLR (constrained MLLR) transform of one speaker, for
    diagonal GMMs: with ``xi_t = [x_t; 1]`` and the posteriors ``gamma_tm`` of the Gaussians,
    ``beta = sum gamma``, ``K = sum_tm gamma_tm (mu_m / sigma2_m) xi_t^T`` and for every dimension
    ``G_i = sum_tm gamma_tm / sigma2_mi xi_t xi_t^T`` (Gales 1998, "Maximum likelihood linear
    transformations for HMM-based speech recognition", sec. 4 and appendix; Kaldi
    ``FmllrDiagGmmAccs``).

    Attributes:
        beta: total weighted occupancy.
        K: float64 ``[D, D + 1]``.
        G: float64 ``[D, D + 1, D + 1]``.
    """

    beta: float = 0.0
    K: np.ndarray = field(default_factory=lambda: np.zeros((0, 1)))
    G: np.ndarray = field(default_factory=lambda: np.zeros((0, 1, 1)))

    @classmethod
    def zeros(cls, dim: int) -> "FmllrStats":
        """Empty statistics of ``dim``-dimensional features."""
        return cls(0.0, np.zeros((dim, dim + 1)), np.zeros((dim, dim + 1, dim + 1)))

    def accumulate(self, gmms: DiagGmmSet, feats: torch.Tensor, pdfs: torch.Tensor,
                   weights: Optional[torch.Tensor] = None, min_posterior: float = 1e-4) -> None:
        """Add aligned frames of the speaker (untransformed features).

        Args:
            gmms: the model the transform is estimated for.
            feats: float ``[T, D]``.
            pdfs: int ``[T]`` aligned pdf-id of every frame.
            weights: float ``[T]`` frame weights (None: 1; e.g. 0 for silence, or a posterior).
            min_posterior: Gaussian posteriors below this are dropped.
        """
        _check_frames(feats, pdfs, weights)
        D = gmms.dim
        post = gmms.component_posteriors(feats, pdfs)
        if weights is not None:
            post = post * weights.double()[:, None]
        t, g = torch.nonzero(post >= min_posterior, as_tuple=True)
        if not len(t):
            return
        p = pdfs.long()[t]
        gamma = post[t, g]
        inv_var = 1.0 / torch.from_numpy(gmms.variances)[p, g]  # [n, D]
        scaled_mean = torch.from_numpy(gmms.means)[p, g] * inv_var  # mu / sigma2
        xi = torch.cat([feats.double()[t], torch.ones(len(t), 1, dtype=torch.float64)], 1)  # [n, D + 1]
        self.K += ((scaled_mean * gamma[:, None]).T @ xi).numpy()
        for start in range(0, len(t), 4096):
            x = xi[start:start + 4096]
            w = gamma[start:start + 4096, None] * inv_var[start:start + 4096]
            outer = (x[:, :, None] * x[:, None, :]).reshape(len(x), -1)
            self.G += (w.T @ outer).reshape(D, D + 1, D + 1).numpy()
        self.beta += float(gamma.sum())

    def objective(self, transform: np.ndarray) -> float:
        """The auxiliary function of a ``[D, D + 1]`` transform ``W = [A b]``: ``beta log|det A|
        + sum_i (w_i k_i^T - 1/2 w_i G_i w_i^T)`` (log base e; up to a constant, the gain in
        the speaker's log-likelihood)."""
        W = np.asarray(transform, dtype=np.float64)
        D = W.shape[0]
        quad = sum(float(W[i] @ self.K[i] - 0.5 * W[i] @ self.G[i] @ W[i]) for i in range(D))
        return float(self.beta * np.linalg.slogdet(W[:, :D])[1] + quad)

    def estimate(self, num_iters: int = 10, start: Optional[np.ndarray] = None,
                 on_row: Optional[Callable[[np.ndarray], None]] = None, update: str = "full") -> np.ndarray:
        """The transform by Gales' row-by-row update: ``w_i = (alpha p_i + k_i) G_i^-1``, ``p_i``
        the cofactor row of ``A`` extended by 0, ``alpha`` the root of ``alpha^2 p G^-1 p^T +
        alpha p G^-1 k^T - beta = 0`` that maximizes the objective. Each row update maximizes the
        objective over that row, so it never falls. With fewer free parameters (Kaldi's
        ``--fmllr-update-type``; for little data, e.g. one short file) the same update runs on
        each row's free entries only: ``"diag"`` (``a_ii`` and the offset ``b_i``: a scale and a
        shift per dimension) or ``"offset"`` (``b_i`` alone: no determinant term, so ``b_i`` is the
        quadratic's maximum); the others keep their values in ``start``.

        Args:
            num_iters: passes over all rows (Kaldi: 10).
            start: ``[D, D + 1]`` transform to start from (None: the identity; with ``"diag"``
                or ``"offset"`` it should be diagonal).
            on_row: called with the transform after every row update.
            update: ``"full"``, ``"diag"`` or ``"offset"``.

        Returns:
            float64 ``[D, D + 1]`` ``W``: the adapted features are ``W [x; 1]``.

        Raises:
            ValueError: no statistics, or an unknown ``update``.
        """
        D = self.K.shape[0]
        if self.beta <= 0:
            raise ValueError("fMLLR statistics hold no frames")
        if update not in FMLLR_UPDATES:
            raise ValueError(f"fMLLR update must be one of {', '.join(FMLLR_UPDATES)}, got {update!r}")
        W = np.concatenate([np.eye(D), np.zeros((D, 1))], 1) if start is None else np.array(start, dtype=np.float64)
        free = [np.arange(D + 1) if update == "full" else np.array([i, D]) if update == "diag" else np.array([D])
                for i in range(D)]
        fixed = [np.setdiff1d(np.arange(D + 1), J) for J in free]
        inv_G = [np.linalg.inv(self.G[i][np.ix_(free[i], free[i])]) for i in range(D)]
        G_fixed = [self.G[i][np.ix_(free[i], fixed[i])] for i in range(D)]
        for _ in range(num_iters):
            for i in range(D):
                J = free[i]
                k = self.K[i, J] - G_fixed[i] @ W[i, fixed[i]]
                if update == "offset":
                    W[i, J] = k @ inv_G[i]
                else:
                    cof = np.append(np.linalg.inv(W[:, :D]).T[i], 0.0)[J]  # cofactors up to det(A)
                    p_inv = cof @ inv_G[i]
                    e1, e2 = float(p_inv @ cof), float(p_inv @ k)
                    disc = np.sqrt(e2 * e2 + 4 * e1 * self.beta)
                    # of the two roots, the one with the larger objective (Kaldi's
                    # FmllrInnerUpdate): substituting w_J = (alpha p + k) G^-1, the objective is
                    # beta log|alpha e1 + e2| - alpha^2 e1 / 2 plus terms free of alpha, exactly
                    # so when the fixed entries' cofactor terms vanish ("full": none are fixed;
                    # "diag" from a diagonal start: the fixed ones stay 0), as the update assumes
                    alpha = max(((-e2 + disc) / (2 * e1), (-e2 - disc) / (2 * e1)),
                                key=lambda a: self.beta * np.log(abs(a * e1 + e2)) - 0.5 * a * a * e1)
                    W[i, J] = (alpha * cof + k) @ inv_G[i]
                if on_row is not None:
                    on_row(W)
        return W


FMLLR_UPDATES = ("full", "diag", "offset")
"""The forms of an fMLLR transform :meth:`FmllrStats.estimate` can estimate."""


def apply_affine(transform: np.ndarray, feats: torch.Tensor) -> torch.Tensor:
    """``W [x; 1]`` for every frame: ``transform`` float ``[D', D + 1]``, ``feats`` float
    ``[T, D]`` -> float32 ``[T, D']``."""
    W = torch.from_numpy(np.asarray(transform, dtype=np.float64))
    return (feats.double() @ W[:, :-1].T + W[:, -1]).float()



def compose_affine(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The affine transform ``x -> outer(inner(x))``: ``outer`` ``[D, E + 1]``, ``inner``
    ``[E, F + 1]`` -> ``[D, F + 1]``."""
    E = inner.shape[0]
    return np.concatenate([outer[:, :E] @ inner[:, :-1], (outer[:, :E] @ inner[:, -1] + outer[:, E])[:, None]], 1)


def estimate_fmllr(gmms: DiagGmmSet, frames: Sequence[Tuple[torch.Tensor, np.ndarray, np.ndarray]],
                   silence: np.ndarray, silence_weight: float = 0.0, min_count: float = 0.0,
                   update: str = "full") -> Tuple[np.ndarray, float]:
    """One speaker's fMLLR transform from its aligned frames.

    Args:
        gmms: the model.
        frames: per utterance ``(features float [T, D], pdf-ids [T], HMM states [T])``.
        silence: the HMM states (topology pdf-ids) of silence, weighted by ``silence_weight``.
        silence_weight: weight of silence frames.
        min_count: fewer weighted frames than this give the identity (Kaldi's
            ``--fmllr-min-count``).
        update: which entries are estimated (:meth:`FmllrStats.estimate`).

    Returns:
        ``(W float64 [D, D + 1], objective gain per frame)``; the identity with gain 0 when the
        speaker has no weighted frames, or fewer than ``min_count``.
    """
    stats = FmllrStats.zeros(gmms.dim)
    for x, pdfs, states in frames:
        weights = torch.from_numpy(np.where(np.isin(states, silence), silence_weight, 1.0))
        stats.accumulate(gmms, x, torch.from_numpy(np.asarray(pdfs, dtype=np.int64)), weights)
    identity = np.concatenate([np.eye(gmms.dim), np.zeros((gmms.dim, 1))], 1)
    if stats.beta <= 0 or stats.beta < min_count:
        return identity, 0.0
    W = stats.estimate(update=update)
    return W, (stats.objective(W) - stats.objective(identity)) / stats.beta

__all__ = ["FMLLR_UPDATES", "FmllrStats", "LdaStats", "MlltStats", "apply_affine", "compose_affine", "estimate_fmllr", "lda_objective"]
