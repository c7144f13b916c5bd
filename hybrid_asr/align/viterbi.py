"""Viterbi forced alignment with k2: best path of H o L o transcript through the frame scores."""

import logging
from typing import Dict, List, Sequence, Tuple

import k2
import numpy as np
import torch

from hybrid_asr.hmm.alignment import FrameAlignment
from hybrid_asr.likelihoods import dense_fsa_vec
from hybrid_asr.graph.training import TrainingGraphCompiler
from hybrid_asr.utils import progress

log = logging.getLogger(__name__)


def viterbi_align(
    compiler: TrainingGraphCompiler,
    texts: Sequence[str],
    scores: Sequence[torch.Tensor],
    output_beam: float = 20.0,
) -> List[FrameAlignment]:
    """Forced-align a batch of utterances.

    Args:
        compiler: builds the training graph of each transcript.
        texts: transcripts, one per utterance.
        scores: per utterance ``[T_i, S]`` float32 log-likelihoods (already acoustically scaled).
        output_beam: pruning beam of ``k2.intersect_dense`` (log base e).

    Returns:
        Per utterance a :class:`FrameAlignment`: int32 ``[T_i]`` pdf-ids (monophone states or
        senones, whatever H's labels are), the phone-start marks read from the graph's
        ``phones`` attribute and, where the graphs carry ``hmm_states``, the monophone HMM state
        of every frame. Both are empty where no path of the graph fits the frames (too few
        frames for the text; k2 then returns an empty best path).
    """
    dense, order = dense_fsa_vec(scores, 1.0)
    graphs = compiler.compile([texts[i] for i in order])
    lattice = k2.intersect_dense(graphs, dense, output_beam=output_beam)
    best = k2.shortest_path(lattice, use_double_scores=True)
    empty = np.zeros(0, dtype=np.int32)
    out: List[FrameAlignment] = [FrameAlignment(empty, empty)] * len(texts)
    for k, j in enumerate(order):
        path = best[k]
        frames = path.labels > 0
        ali = (path.labels[frames] - 1).numpy().astype(np.int32)
        if len(ali) == scores[j].shape[0]:
            states = (path.hmm_states[frames] - 1).numpy().astype(np.int32) if hasattr(path, "hmm_states") else None
            out[j] = FrameAlignment(ali, path.phones[frames].numpy().astype(np.int32), states)
    return out


def align_dataset(
    compiler: TrainingGraphCompiler,
    utts: Sequence[Tuple[str, str]],
    score_fn,
    batch_size: int = 16,
) -> Tuple[Dict[str, FrameAlignment], List[str]]:
    """Align many utterances in batches, with a progress bar.

    Args:
        compiler: training-graph compiler.
        utts: ``(utt_id, transcript)`` pairs.
        score_fn: ``utt_id -> [T, S]`` log-likelihoods.
        batch_size: utterances per k2 call.

    Returns:
        ``(alignments of the utterances that aligned, ids of those that did not)``.
    """
    done: Dict[str, FrameAlignment] = {}
    failed: List[str] = []
    for start in progress(range(0, len(utts), batch_size), desc="align", unit="batch"):
        batch = utts[start : start + batch_size]
        alis = viterbi_align(compiler, [t for _, t in batch], [score_fn(u) for u, _ in batch])
        for (utt, _), ali in zip(batch, alis):
            if len(ali.pdfs):
                done[utt] = ali
            else:
                failed.append(utt)
    if failed:
        log.warning("%d utterances failed to align (e.g. %s)", len(failed), failed[:3])
    return done, failed
