"""Search: pruned intersection of the decoding graph with the scaled log-likelihoods, best path to
words, with k2 or (``SearchConfig.backend == "kaldi"``) Kaldi's FasterDecoder."""

from typing import List, Optional, Sequence

import k2
import torch

from hybrid_asr.bundle import SearchConfig
from hybrid_asr.likelihoods import dense_fsa_vec


def best_path_words(best: k2.Fsa) -> List[List[int]]:
    """Word ids along each best path of an FsaVec of linear paths with ragged ``aux_labels``."""
    out: List[List[int]] = []
    for i in range(best.shape[0]):
        aux = best[i].aux_labels
        values = aux.values if isinstance(aux, k2.RaggedTensor) else aux
        out.append([int(w) for w in values.tolist() if w > 0])
    return out


def decode_scores(hlg: k2.Fsa, scores: Sequence[torch.Tensor], config: SearchConfig) -> List[List[int]]:
    """Decode a batch of utterances.

    Args:
        hlg: decoding graph (labels = pdf-id + 1, ragged aux_labels = word ids), on CPU.
        scores: per utterance ``[T_i, S]`` float32 log-likelihoods (unscaled).
        config: acoustic and LM scales and beams.

    Returns:
        Word ids of the best path of each utterance (empty list where the search found no path).
    """
    config = config.normalized()
    dense, order = dense_fsa_vec(scores, config.acoustic_scale)
    lattice = k2.intersect_dense_pruned(
        hlg, dense, search_beam=config.search_beam, output_beam=config.output_beam,
        min_active_states=config.min_active_states, max_active_states=config.max_active_states,
    )
    best = k2.shortest_path(lattice, use_double_scores=True)
    words = best_path_words(best)
    out: List[List[int]] = [[] for _ in scores]
    for k, i in enumerate(order):
        out[i] = words[k]
    return out


class Searcher:
    """Best-path search over one decoding graph with the backend each call's config names; the
    graph is converted for Kaldi's FasterDecoder once, on first use.

    Args:
        graph: decoding graph (labels = pdf-id + 1, ragged aux_labels = word ids), on CPU.
    """

    def __init__(self, graph: k2.Fsa):
        self.graph = graph
        self._kaldi = None

    def __call__(self, scores: Sequence[torch.Tensor], config: SearchConfig) -> List[List[int]]:
        """Word ids of the best path of each utterance (``[T_i, S]`` float32 unscaled
        log-likelihoods); an empty list where no path was found."""
        if config.backend == "kaldi":
            from hybrid_asr.decoding.kaldi_search import KaldiSearch

            if self._kaldi is None:
                self._kaldi: Optional[KaldiSearch] = KaldiSearch(self.graph, config)
            self._kaldi.set_config(config)
            return self._kaldi.decode(scores)
        return decode_scores(self.graph, scores, config)
