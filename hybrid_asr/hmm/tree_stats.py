"""Sufficient statistics for phonetic decision-tree clustering.

For every context-dependent HMM state seen in the alignments, ``(left phone, phone, right phone,
HMM state)``, we keep the statistics of a single diagonal Gaussian over the (CMVN-normalized,
unspliced) features of its frames: frame count, sum and sum of squares. These are enough to
compute the maximum-likelihood log-likelihood of any pooled set of states, which is what tree
building maximizes (Young, Odell & Woodland 1994, "Tree-based state tying for high accuracy
acoustic modelling"; Kaldi ``acc-tree-stats``).

At utterance edges the missing context is :data:`BOUNDARY`.
"""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Mapping, Tuple, Union

import numpy as np

from hybrid_asr.errors import InputError
from hybrid_asr.features.cmvn import CmvnStats
from hybrid_asr.hmm.alignment import segments_from_marks
from hybrid_asr.hmm.topology import HmmTopology
from hybrid_asr.utils import atomic_path

BOUNDARY = "<b>"
"""Context symbol before the first and after the last phone of an utterance."""

Context = Tuple[str, str, str, int]
"""``(left phone, central phone, right phone, HMM state index)``."""

VAR_FLOOR = 1e-3
"""Variance floor of the diagonal Gaussians (features are CMVN-normalized, so variance ~1)."""


@dataclass
class GaussStats(CmvnStats):
    """Count, sum and sum of squares of a set of frames (float64 ``[F]`` vectors; the fields of
    :class:`~hybrid_asr.features.cmvn.CmvnStats`), with the log-likelihood of their maximum-
    likelihood diagonal Gaussian and the sums and differences tree building needs."""

    @classmethod
    def zeros(cls, dim: int) -> "GaussStats":
        """Empty statistics of dimension ``dim``."""
        return cls(0.0, np.zeros(dim), np.zeros(dim))

    @classmethod
    def of(cls, frames: np.ndarray) -> "GaussStats":
        """Statistics of a ``[N, F]`` array of frames."""
        x = np.asarray(frames, dtype=np.float64)
        return cls(float(x.shape[0]), x.sum(axis=0), (x * x).sum(axis=0))

    def __add__(self, other: "GaussStats") -> "GaussStats":
        return GaussStats(self.count + other.count, self.sum + other.sum, self.sumsq + other.sumsq)

    def __sub__(self, other: "GaussStats") -> "GaussStats":
        """Statistics of this set without a subset ``other`` of it."""
        return GaussStats(self.count - other.count, self.sum - other.sum, self.sumsq - other.sumsq)

    def log_likelihood(self) -> float:
        """Total log-likelihood (nats) of the frames under their own ML diagonal Gaussian.

        With ``n`` frames, variance ``v_d = sumsq_d/n - (sum_d/n)^2`` (floored at
        :data:`VAR_FLOOR`): ``-n/2 * sum_d (log(2 pi v_d) + 1)``. 0 for an empty set.
        """
        if self.count <= 0:
            return 0.0
        mean = self.sum / self.count
        var = np.maximum(self.sumsq / self.count - mean * mean, VAR_FLOOR)
        return float(-0.5 * self.count * np.sum(np.log(2 * math.pi * var) + 1.0))


def sum_stats(items: Iterable[GaussStats], dim: int) -> GaussStats:
    """Sum of statistics (empty statistics of dimension ``dim`` for no items)."""
    total = GaussStats.zeros(dim)
    for s in items:
        total = total + s
    return total


def accumulate_tree_stats(
    alignments: Mapping[str, np.ndarray],
    marks: Mapping[str, np.ndarray],
    features,
    topo: HmmTopology,
    frame_subsampling: int = 1,
) -> Dict[Context, GaussStats]:
    """Accumulate per-triphone-state statistics from monophone alignments.

    Args:
        alignments: ``utt_id -> int [T]`` monophone pdf-ids (``pdf_id == hmm state`` of ``topo``).
        marks: ``utt_id -> int [T]`` phone-start marks of the same alignments (phones.txt id on
            each phone's first frame, 0 elsewhere).
        features: ``utt_id -> float [T, F]`` normalized features (e.g. ``FeatureStore.normalized``).
        topo: the monophone topology the alignments refer to.
        frame_subsampling: f; only frames 0, f, 2f, ... of each utterance are counted (a phone
            shorter than f frames may then go unseen in one instance; its context still gets a
            leaf from the tree's questions).

    Returns:
        ``{(left, phone, right, state): GaussStats}`` for every context seen.

    Raises:
        AlignmentError: the marks of an utterance do not start a phone on its first frame.
    """
    state_of = np.concatenate([np.arange(n) for n in topo.num_states])
    width = int(max(topo.num_states))
    triphones: Dict[Tuple[str, str, str], int] = {}
    acc = _KeyedSums()
    for utt, ali in alignments.items():
        segs = segments_from_marks(marks[utt], topo.phone_names)
        if not segs:
            continue
        phones = [BOUNDARY] + [p for p, _, _ in segs] + [BOUNDARY]
        ids = [triphones.setdefault((phones[i], phone, phones[i + 2]), len(triphones))
               for i, (phone, _, _) in enumerate(segs)]
        # segments are contiguous from frame 0: one key per frame, triphone * width + HMM state
        keys = np.repeat(np.asarray(ids, dtype=np.int64) * width, [e - s for _, s, e in segs])
        keys += state_of[np.asarray(ali)]
        frames = np.asarray(features(utt), dtype=np.float64)
        acc.add(keys[::frame_subsampling], frames[::frame_subsampling])
    stats: Dict[Context, GaussStats] = {}
    for (left, phone, right), t in triphones.items():
        for state in range(width):
            key = t * width + state
            if key < len(acc.count) and acc.count[key] > 0:
                stats[(left, phone, right, state)] = GaussStats(float(acc.count[key]), acc.sum[key].copy(),
                                                               acc.sumsq[key].copy())
    return stats


def add_tree_stats(parts: Iterable[Mapping[Context, GaussStats]]) -> Dict[Context, GaussStats]:
    """The statistics of several sets of utterances together (Kaldi's ``sum-tree-stats``): per
    context, the sum of the parts' statistics."""
    total: Dict[Context, GaussStats] = {}
    for part in parts:
        for context, s in part.items():
            total[context] = total[context] + s if context in total else s
    return total


def save_tree_stats(path: Union[str, Path], stats: Mapping[Context, GaussStats]) -> None:
    """Write statistics atomically as ``.npz`` of plain arrays (no pickled objects): ``phones``
    (str ``[P]``), ``contexts`` (int64 ``[N, 4]``: left, central, right phone as indices into
    ``phones``, HMM state), ``count`` (float64 ``[N]``), ``sum`` and ``sumsq`` (float64 ``[N, F]``)."""
    contexts = sorted(stats)
    phones = sorted({p for c in contexts for p in c[:3]})
    index = {p: i for i, p in enumerate(phones)}
    dim = len(next(iter(stats.values())).sum) if stats else 0
    with atomic_path(path) as tmp:
        np.savez(tmp, phones=np.array(phones, dtype=str),
                 contexts=np.array([[index[a], index[b], index[c], k] for a, b, c, k in contexts],
                                   dtype=np.int64).reshape(-1, 4),
                 count=np.array([stats[c].count for c in contexts], dtype=np.float64),
                 sum=np.array([stats[c].sum for c in contexts], dtype=np.float64).reshape(-1, dim),
                 sumsq=np.array([stats[c].sumsq for c in contexts], dtype=np.float64).reshape(-1, dim))


def load_tree_stats(path: Union[str, Path]) -> Dict[Context, GaussStats]:
    """Read statistics written by :func:`save_tree_stats`.

    Raises:
        InputError: the file is missing or not such a file.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            phones = [str(p) for p in z["phones"]]
            contexts, count, sums, sumsq = z["contexts"], z["count"], z["sum"], z["sumsq"]
    except (OSError, ValueError, KeyError) as e:
        raise InputError(path, f"not a tree statistics file: {str(e).splitlines()[0][:200]}") from None
    return {(phones[a], phones[b], phones[c], int(k)): GaussStats(float(n), s, q)
            for (a, b, c, k), n, s, q in zip(contexts.tolist(), count, sums, sumsq)}


class _KeyedSums:
    """Count, sum and sum of squares of frames grouped by an integer key, grown as keys appear."""

    def __init__(self) -> None:
        self.count = np.zeros(0)
        self.sum = self.sumsq = np.zeros((0, 0))

    def add(self, keys: np.ndarray, frames: np.ndarray) -> None:
        """Add ``frames`` float64 ``[T, F]`` under ``keys`` int64 ``[T]`` (one sort per call)."""
        order = np.argsort(keys, kind="stable")
        uniq, first = np.unique(keys[order], return_index=True)
        x = frames[order]
        need = int(uniq[-1]) + 1
        if need > len(self.count):
            size, n = max(need, 2 * len(self.count)), len(self.count)
            count, sums, sumsq = np.zeros(size), np.zeros((size, x.shape[1])), np.zeros((size, x.shape[1]))
            if n:
                count[:n], sums[:n], sumsq[:n] = self.count, self.sum, self.sumsq
            self.count, self.sum, self.sumsq = count, sums, sumsq
        self.count[uniq] += np.diff(np.append(first, len(keys)))
        self.sum[uniq] += np.add.reduceat(x, first, axis=0)
        self.sumsq[uniq] += np.add.reduceat(x * x, first, axis=0)
