"""Senone priors from alignment counts."""

from typing import Iterable

import numpy as np
import torch


def estimate_log_priors(alignments: Iterable[np.ndarray], num_pdfs: int, floor: float = 1e-5) -> torch.Tensor:
    """Log prior p(s) of every senone from the frame counts of the alignments.

    In a hybrid system the network estimates p(s|x); dividing by p(s) gives the scaled
    likelihood p(x|s)/p(x) used as the HMM emission score (Bourlard & Morgan 1994,
    *Connectionist Speech Recognition*, chapter 7). Priors are floored so that a senone rare in
    training does not get a huge likelihood boost.

    Args:
        alignments: ``[T]`` int pdf-ids per utterance.
        num_pdfs: S.
        floor: minimum prior probability before renormalization.

    Returns:
        float32 ``[S]`` log p(s), log base e.
    """
    counts = np.zeros(num_pdfs, dtype=np.float64)
    for ali in alignments:
        counts += np.bincount(np.asarray(ali), minlength=num_pdfs)
    if counts.sum() == 0:
        raise ValueError("no aligned frames to estimate priors from")
    p = np.maximum(counts / counts.sum(), floor)
    p /= p.sum()
    return torch.from_numpy(np.log(p).astype(np.float32))
