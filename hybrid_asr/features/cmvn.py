"""Cepstral mean and variance normalization statistics (Kaldi ``compute-cmvn-stats``)."""

from dataclasses import dataclass
from typing import Dict, Iterable, List

import numpy as np
import torch


@dataclass
class CmvnStats:
    """Sufficient statistics of features for mean and variance normalization.

    Attributes:
        count: number of frames accumulated.
        sum: float64 ``[F]`` sum of the features.
        sumsq: float64 ``[F]`` sum of the squared features.
    """

    count: float
    sum: np.ndarray
    sumsq: np.ndarray

    @classmethod
    def from_features(cls, feats: torch.Tensor) -> "CmvnStats":
        """Statistics of one ``[T, F]`` feature matrix."""
        x = feats.double().numpy()
        return cls(float(x.shape[0]), x.sum(axis=0), (x * x).sum(axis=0))

    @classmethod
    def merge(cls, stats: Iterable["CmvnStats"]) -> "CmvnStats":
        """Sum several statistics (e.g. all speakers -> global stats)."""
        items: List[CmvnStats] = list(stats)
        if not items:
            raise ValueError("cannot merge an empty list of CMVN statistics")
        return cls(
            sum(s.count for s in items),
            np.sum([s.sum for s in items], axis=0),
            np.sum([s.sumsq for s in items], axis=0),
        )

    def mean_std(self, var_floor: float = 1e-4):
        """Return ``(mean, std)`` as float32 tensors ``[F]``; variance floored at ``var_floor``."""
        mean = self.sum / self.count
        var = np.maximum(self.sumsq / self.count - mean * mean, var_floor)
        return torch.from_numpy(mean.astype(np.float32)), torch.from_numpy(np.sqrt(var).astype(np.float32))

    def apply(self, feats: torch.Tensor) -> torch.Tensor:
        """Normalize ``[T, F]`` features to zero mean and unit variance; returns a new tensor."""
        mean, std = self.mean_std()
        return (feats - mean) / std

    def to_dict(self) -> Dict[str, object]:
        """JSON-serializable form."""
        return {"count": self.count, "sum": self.sum.tolist(), "sumsq": self.sumsq.tolist()}

    @classmethod
    def from_dict(cls, d: Dict[str, object]) -> "CmvnStats":
        """Inverse of :meth:`to_dict`."""
        return cls(float(d["count"]), np.asarray(d["sum"], dtype=np.float64), np.asarray(d["sumsq"], dtype=np.float64))
