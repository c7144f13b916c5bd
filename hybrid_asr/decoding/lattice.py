"""k2 lattices of one utterance: N-best lists and word confidences from paths sampled from the
lattice's posterior (the sampling icefall's N-best rescoring uses)."""

from collections import Counter
from typing import Dict, List, Sequence, Tuple

import k2
import kaldialign
import numpy as np
import torch

from hybrid_asr.bundle import SearchConfig
from hybrid_asr.likelihoods import dense_fsa_vec


def lattice_of(graph: k2.Fsa, scores: torch.Tensor, config: SearchConfig) -> k2.Fsa:
    """The pruned lattice of one utterance (``k2.intersect_dense_pruned``, output beam
    ``config.output_beam``); arc scores = graph score + acoustic scale x log-likelihood, both
    divided by the LM scale (:meth:`SearchConfig.normalized`).

    Args:
        graph: decoding graph (labels = pdf-id + 1, ragged word ``aux_labels``), searched as
            given: a word insertion penalty must already be in its scores
            (:meth:`hybrid_asr.decoding.search.Searcher.graph_for`).
        scores: ``[T, S]`` float32 unscaled log-likelihoods.
        config: acoustic and LM scales and beams.

    Returns:
        FsaVec of one lattice (empty when no path survived), attribute ``frame`` = output frame
        of each arc.
    """
    config = config.normalized()
    dense, _ = dense_fsa_vec([scores], config.acoustic_scale)
    return k2.intersect_dense_pruned(graph, dense, search_beam=config.search_beam,
                                     output_beam=config.output_beam, min_active_states=config.min_active_states,
                                     max_active_states=config.max_active_states, frame_idx_name="frame")


def word_nbest(lattice: k2.Fsa, n: int, min_arc_posterior: float = 1e-6) -> List[Tuple[Tuple[int, ...], float]]:
    """The exact ``n`` best distinct word sequences of a one-lattice FsaVec with the score of
    the best path of each (as Kaldi's ``lattice-to-nbest``): arcs whose posterior is below
    ``min_arc_posterior`` are pruned (``k2.prune_on_arc_post``; the best path always stays),
    the lattice becomes an OpenFst acceptor over its words, epsilons removed, determinized in the
    tropical semiring (the best score of each word sequence survives), then ``n``-shortest paths
    (all through kaldifst).

    Returns:
        ``(word ids, score)`` best first; scores are lattice scores (graph + scaled acoustic,
        log base e). Empty for an empty lattice.
    """
    import kaldifst

    from hybrid_asr.graph.openfst import to_openfst

    if lattice.num_arcs == 0:
        return []
    if min_arc_posterior > 0:
        lattice = k2.connect(k2.prune_on_arc_post(lattice, min_arc_posterior, True))
    fst = to_openfst(lattice[0], words_only=True)
    kaldifst.rmepsilon(fst)
    best = kaldifst.shortest_path(kaldifst.determinize(fst), n=n)
    out = []
    for path in kaldifst.convert_nbest_to_vector(best):
        _, _, words, weight = kaldifst.get_linear_symbol_sequence(path)
        out.append((tuple(int(w) for w in words), -float(weight.value)))
    return sorted(out, key=lambda x: -x[1])


def sample_word_sequences(lattice: k2.Fsa, num_paths: int) -> List[Tuple[Tuple[int, ...], float]]:
    """Sample paths of a one-lattice FsaVec in proportion to their posterior (``k2.random_paths``,
    log semiring) and read their words.

    Returns:
        ``(word ids, path score)`` per sampled path (a path may be drawn several times).
    """
    if lattice.num_arcs == 0:
        return []
    paths = k2.random_paths(lattice, use_double_scores=True, num_paths=num_paths)  # [fsa][path][arc]
    arcs = paths.values.long()
    lengths = np.diff(paths.shape.row_splits(2).long().numpy())
    words, _ = lattice.aux_labels.index(arcs.to(torch.int32), axis=0)  # [arc of a path][word]
    path_of_arc = np.repeat(np.arange(len(lengths)), lengths)
    word_counts = np.diff(words.shape.row_splits(1).long().numpy())
    per_path = np.bincount(path_of_arc, weights=word_counts, minlength=len(lengths)).astype(np.int64)
    values = words.values.long().numpy()
    arc_scores = lattice.scores.detach().double().numpy()[arcs.numpy()]
    path_scores = np.bincount(path_of_arc, weights=arc_scores, minlength=len(lengths))
    return [(tuple(int(x) for x in w if x > 0), float(sc))
            for w, sc in zip(np.split(values, np.cumsum(per_path)[:-1]), path_scores)]


def nbest_from_samples(samples: Sequence[Tuple[Tuple[int, ...], float]], n: int) -> List[Tuple[Tuple[int, ...], float]]:
    """The ``n`` distinct word sequences drawn most often, with their estimated posterior (share
    of the samples), most probable first; ties broken by the best path score drawn."""
    counts = Counter(w for w, _ in samples)
    best: Dict[Tuple[int, ...], float] = {}
    for words, score in samples:
        best[words] = max(score, best.get(words, -np.inf))
    ranked = sorted(counts, key=lambda w: (-counts[w], -best[w]))[:n]
    return [(w, counts[w] / len(samples)) for w in ranked]


def word_confidences(hyp: Sequence[int], samples: Sequence[Tuple[Tuple[int, ...], float]]) -> List[float]:
    """Posterior of each word of ``hyp``: the share of sampled paths that, aligned to ``hyp`` by
    edit distance (kaldialign), have the same word at that position; a Monte-Carlo estimate of
    the word posteriors a confusion network gives (Mangu, Brill & Stolcke 2000).

    Returns:
        one value in [0, 1] per word of ``hyp`` (1.0 each if there are no samples).
    """
    if not samples:
        return [1.0] * len(hyp)
    hits = np.zeros(len(hyp))
    ref = [str(w) for w in hyp]
    for words, count in Counter(w for w, _ in samples).items():
        i = 0
        for a, b in kaldialign.align(ref, [str(w) for w in words], "*"):
            if a == "*":
                continue
            if a == b:
                hits[i] += count
            i += 1
    return list(hits / len(samples))
