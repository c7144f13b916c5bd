"""Search: pruned intersection of the decoding graph with the scaled log-likelihoods, best path to
words, with k2 or (``SearchConfig.backend == "kaldi"``) Kaldi's FasterDecoder."""

import math
from dataclasses import replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import k2
import torch

from hybrid_asr.bundle import SearchConfig, load_openfst
from hybrid_asr.likelihoods import dense_fsa_vec


def best_path_words(best: k2.Fsa) -> List[List[int]]:
    """Word ids along each best path of an FsaVec of linear paths with ragged ``aux_labels``."""
    out: List[List[int]] = []
    for i in range(best.shape[0]):
        aux = best[i].aux_labels
        values = aux.values if isinstance(aux, k2.RaggedTensor) else aux
        out.append([int(w) for w in values.tolist() if w > 0])
    return out


def words_per_arc(graph: k2.Fsa) -> torch.Tensor:
    """float32 ``[num_arcs]``: how many words (``aux_labels`` > 0) each arc of a graph emits."""
    aux = graph.aux_labels
    if isinstance(aux, k2.RaggedTensor):
        is_word = (aux.values > 0).to(torch.float32)
        return torch.zeros(graph.num_arcs, dtype=torch.float32, device=is_word.device).index_add_(
            0, aux.shape.row_ids(1).long(), is_word)
    return (aux > 0).to(torch.float32)


def with_word_insertion_penalty(graph: k2.Fsa, penalty: float) -> k2.Fsa:
    """A copy of a decoding graph whose arc scores are lowered by ``penalty`` for every word the
    arc emits (Kaldi's ``lattice-add-penalty``, applied to the graph before the search instead
    of to the lattice after it; the best path is the same).

    Args:
        graph: decoding graph (labels = pdf-id + 1, ``aux_labels`` = word ids, ragged or linear;
            0 and the final arcs' -1 are not words).
        penalty: cost per word (log base e, graph units); 0 returns ``graph`` itself.

    Returns:
        The graph with ``scores - penalty * words per arc`` (the input is not modified).
    """
    if penalty == 0:
        return graph
    out = graph.clone()
    out.scores = graph.scores.detach() - penalty * words_per_arc(graph).to(graph.scores.dtype)
    return out


def decode_scores(graph: k2.Fsa, scores: Sequence[torch.Tensor], config: SearchConfig) -> List[List[int]]:
    """Decode a batch of utterances.

    Args:
        graph: decoding graph (labels = pdf-id + 1, ragged aux_labels = word ids), on the CPU or a
            GPU (the search runs where it is), searched as given: ``config.word_insertion_penalty``
            is not applied here (:class:`Searcher` applies it).
        scores: per utterance ``[T_i, S]`` float32 log-likelihoods (unscaled).
        config: acoustic and LM scales and beams.

    Returns:
        Word ids of the best path of each utterance (empty list where the search found no path).
    """
    config = config.normalized()
    dense, order = dense_fsa_vec(scores, config.acoustic_scale, graph.device)
    lattice = k2.intersect_dense_pruned(
        graph, dense, search_beam=config.search_beam, output_beam=config.output_beam,
        min_active_states=config.min_active_states, max_active_states=config.max_active_states,
    )
    best = k2.shortest_path(lattice, use_double_scores=True)
    words = best_path_words(best)
    out: List[List[int]] = [[] for _ in scores]
    for k, i in enumerate(order):
        out[i] = words[k]
    return out


class Searcher:
    """Best-path search over one decoding graph with the backend and word insertion penalty each
    call's config names; the graph of each penalty is made, and converted for Kaldi's
    FasterDecoder, once, on first use.

    Args:
        graph: decoding graph (labels = pdf-id + 1, ragged aux_labels = word ids), on CPU.
        device: where k2's searches run (a copy of the graph is moved there once per penalty);
            Kaldi's FasterDecoder always runs on the CPU.
        model_dir: the model directory ``graph`` was loaded from: Kaldi's search (without a word
            insertion penalty) reads the OpenFst copy ``make-graph`` stored there
            (:func:`~hybrid_asr.bundle.load_openfst`) instead of converting ``graph``.
    """

    def __init__(self, graph: k2.Fsa, device: torch.device = torch.device("cpu"),
                 model_dir: Optional[Union[str, Path]] = None):
        self.graph = graph
        self.device = torch.device(device)
        self.model_dir = model_dir
        self._graphs: Dict[float, k2.Fsa] = {0.0: graph}
        self._device_graphs: Dict[float, k2.Fsa] = {}
        self._kaldi: Dict[float, object] = {}
        self._lattice_graphs: Dict[float, k2.Fsa] = {}

    def graph_for(self, config: SearchConfig) -> k2.Fsa:
        """The graph with ``config``'s word insertion penalty (in the units of
        :meth:`SearchConfig.normalized`) in its arc scores."""
        penalty = config.normalized().word_insertion_penalty
        if penalty not in self._graphs:
            self._graphs[penalty] = with_word_insertion_penalty(self.graph, penalty)
        return self._graphs[penalty]

    def __call__(self, scores: Sequence[torch.Tensor], config: SearchConfig) -> List[List[int]]:
        """Word ids of the best path of each utterance (``[T_i, S]`` float32 unscaled
        log-likelihoods); an empty list where no path was found."""
        graph = self.graph_for(config)
        if config.backend == "kaldi":
            from hybrid_asr.decoding.kaldi_search import KaldiSearch

            penalty = config.normalized().word_insertion_penalty
            if penalty not in self._kaldi:
                stored = load_openfst(self.model_dir) if penalty == 0 and self.model_dir is not None else None
                self._kaldi[penalty] = KaldiSearch(graph, config, stored)
            kaldi: KaldiSearch = self._kaldi[penalty]
            kaldi.set_config(config)
            return kaldi.decode(scores)
        if self.device.type == "cpu":
            return decode_scores(graph, scores, config)
        penalty = config.normalized().word_insertion_penalty
        if penalty not in self._device_graphs:
            self._device_graphs[penalty] = graph.to(self.device)
        return decode_scores(self._device_graphs[penalty], scores, config)

    def sweep(self, scores: Sequence[torch.Tensor], searches: Sequence[SearchConfig]) -> List[List[List[int]]]:
        """The best path of every search setting through one k2 lattice per utterance (what
        :attr:`SearchConfig.sweep` ``"lattice"`` means; Kaldi scores its lattices this way,
        ``lattice-scale`` + ``lattice-add-penalty`` + ``lattice-best-path`` per LM weight).

        The lattice is searched with the beams of ``searches[0]`` at the middle of the settings
        (normalized): acoustic scale ``sqrt(min x max)``, word insertion penalty ``(min + max) / 2``.
        Each arc keeps its graph score and word count, so its log-likelihood part is
        ``(score - graph score + middle penalty x words) / middle scale``, and a setting's arc score
        is ``graph score - penalty x words + its scale x log-likelihood``. A setting's best path is
        in the lattice only where it is within ``output_beam`` of the searched one; a setting at
        the middle gets the words of a plain k2 search.

        Args:
            scores: per utterance ``[T_i, S]`` float32 unscaled log-likelihoods.
            searches: the settings (same beams and LM scale; acoustic scales and word insertion
                penalties vary). The backend is ignored: lattices come from k2.

        Returns:
            per setting, per utterance, word ids (an empty list where no path survived).
        """
        settings = [s.normalized() for s in searches]
        scales = [s.acoustic_scale for s in settings]
        penalties = [s.word_insertion_penalty for s in settings]
        middle = math.sqrt(min(scales) * max(scales))
        middle_penalty = (min(penalties) + max(penalties)) / 2
        graph = self._lattice_graphs.get(middle_penalty)
        if graph is None:
            graph = with_word_insertion_penalty(self.graph, middle_penalty).clone()
            graph.graph_scores = self.graph.scores.detach().clone()
            graph.word_counts = words_per_arc(self.graph)
            self._lattice_graphs = {middle_penalty: graph.to(self.device)}
            graph = self._lattice_graphs[middle_penalty]
        config = settings[0]
        dense, order = dense_fsa_vec(scores, middle, graph.device)
        lattice = k2.intersect_dense_pruned(
            graph, dense, search_beam=config.search_beam, output_beam=config.output_beam,
            min_active_states=config.min_active_states, max_active_states=config.max_active_states,
        )
        graph_scores = lattice.graph_scores
        searched_graph_scores = graph_scores - middle_penalty * lattice.word_counts
        log_likelihood = (lattice.scores.detach() - searched_graph_scores) / middle
        out: List[List[List[int]]] = []
        for setting in settings:
            lattice.scores = graph_scores - setting.word_insertion_penalty * lattice.word_counts \
                + setting.acoustic_scale * log_likelihood
            words = best_path_words(k2.shortest_path(lattice, use_double_scores=True))
            per_utt: List[List[int]] = [[] for _ in scores]
            for k, i in enumerate(order):
                per_utt[i] = words[k]
            out.append(per_utt)
        return out
