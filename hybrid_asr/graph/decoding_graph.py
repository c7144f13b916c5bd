"""The decoding graph: HLG (monophone H) or HCLG (context-dependent H).

Two constructions (:class:`GraphConfig.construction`):

- ``mkgraph`` (default), as Kaldi's ``mkgraph.sh``: ``LG = min(det(L o G))`` with the
  disambiguation symbols still in; ``CLG = C o LG`` by Kaldi's ``ComposeContext`` (triphone
  windows for a model with a tree, single phones otherwise); the self-loop-free H over those
  windows (:mod:`hybrid_asr.graph.h_windows`), labelled by HMM states, composed with CLG; the
  result determinized (log semiring) and minimized; disambiguation symbols and the epsilons they
  leave removed; then the self-loops added back with the self-loop scale (:func:`add_self_loops`).
  Composition, determinization and minimization run in OpenFst (``kaldifst``,
  :mod:`hybrid_asr.graph.openfst`), the epsilon removal and the self-loops in k2. Determinizing
  on HMM-state labels merges the paths of triphones that share senones, which the composed
  graph keeps apart.
- ``compose``: ``H o LG`` with H's self-loops inside, never determinized (smaller to build,
  larger to search).

Both are epsilon-free on the input side, as ``k2.intersect_dense_pruned`` needs: every arc
consumes one frame, its label is ``pdf-id + 1``. Both give every pdf sequence the same best
word sequence and score (tests/test_graph.py checks it).
"""

import logging
import time
from dataclasses import dataclass

from typing import Optional

import k2
import numpy as np
import torch

from hybrid_asr.bounds import bounded, check_bounds
from hybrid_asr.errors import ConfigError
from hybrid_asr.graph.h import HmmLabels, monophone_hmm_graph
from hybrid_asr.graph.h_cd import cd_hmm_graph
from hybrid_asr.graph.h_windows import context_width, make_window_h
from hybrid_asr.graph.openfst import determinized_composition, from_openfst, to_openfst
from hybrid_asr.hmm.topology import HmmTopology
from hybrid_asr.hmm.tree import DecisionTree
from hybrid_asr.lang.lang_dir import Lang
from hybrid_asr.utils import JsonDataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GraphConfig(JsonDataclass):
    """How ``make-graph`` builds the decoding graph (saved in ``graph_info.json``).

    Attributes:
        self_loop_scale: multiplies the HMM transition log-probabilities (self-loops and the
            forward transitions that complement them; Kaldi's ``--self-loop-scale``). About the
            acoustic scale, so that transitions and acoustics keep their relative weight and only
            the LM is boosted. 0.3 comes from an AN4 comparison of 0, 0.3 and 1 made before the
            recipe had a dev set, i.e. on test (docs/recipes/an4.md); it has not been re-tuned on dev.
        construction: ``mkgraph`` (determinized, self-loops added last) or ``compose`` (H with
            self-loops composed with LG, not determinized).
        minimize: minimize LG and (``mkgraph``) the determinized graph (OpenFst's encoded
            minimization, as Kaldi's ``fstminimizeencoded``; weights quantized to 1/1024).
    """

    self_loop_scale: float = bounded(0.3, ge=0)
    construction: str = "mkgraph"
    minimize: bool = True

    json_what = "graph config"

    def __post_init__(self):
        check_bounds(self)
        if self.construction not in ("mkgraph", "compose"):
            raise ConfigError(f"construction must be mkgraph or compose, not {self.construction!r}")


def make_lg(lang: Lang, keep_disambig: bool = False, minimize: bool = True, lg_openfst=None) -> k2.Fsa:
    """``det(L_disambig o G)``, minimized (Mohri, Pereira & Riley 2002, section 4; built in
    OpenFst: :func:`~hybrid_asr.graph.openfst.determinized_composition`).

    Args:
        lang: lang directory (L_disambig, G).
        keep_disambig: keep the disambiguation symbols (for composing with a self-loop-free H
            and determinizing again); else they are replaced by epsilon (phones >= ``#0``, the
            word ``#0`` and above) and removed with ``k2.remove_epsilon``.
        minimize: minimize after determinizing (as Kaldi's mkgraph does).
        lg_openfst: :func:`make_lg_openfst` of ``lang`` and ``minimize`` made earlier (e.g. kept
            with the lang dir), used instead of building it again.

    Returns:
        arc-sorted k2 transducer: ``labels`` = phone ids, ragged ``aux_labels`` = word ids.
    """
    LG = from_openfst(lg_openfst if lg_openfst is not None else make_lg_openfst(lang, minimize), ragged=True)
    if not keep_disambig:
        LG = _remove_disambig(LG, lang.first_phone_disambig, lang.first_word_disambig)
    return k2.arc_sort(LG)


def make_lg_openfst(lang: Lang, minimize: bool = True):
    """``det(L_disambig o G)`` (minimized when ``minimize``) as a ``kaldifst.StdVectorFst``,
    disambiguation symbols kept: the part of every decoding graph that depends only on the lang
    dir (Kaldi's mkgraph.sh keeps it as ``lang/tmp/LG.fst``)."""
    return determinized_composition(to_openfst(lang.L_disambig), to_openfst(lang.G), minimize)


def _remove_disambig(fsa: k2.Fsa, first_label_disambig: int, first_word_disambig: int) -> k2.Fsa:
    """Disambiguation labels and words -> epsilon, then ``k2.remove_epsilon``; ``fsa`` itself is
    left as it was."""
    fsa = fsa.clone()
    labels = fsa.labels.clone()
    labels[labels >= first_label_disambig] = 0
    fsa.labels = labels
    aux = fsa.aux_labels.clone()
    aux.values[aux.values >= first_word_disambig] = 0
    fsa.aux_labels = aux
    fsa = k2.connect(k2.remove_epsilon(fsa))
    fsa.aux_labels = fsa.aux_labels.remove_values_eq(0)
    return fsa


def make_decoding_graph(lang: Lang, topo: HmmTopology, tree: Optional[DecisionTree] = None,
                        config: GraphConfig = GraphConfig(), lg_openfst=None) -> k2.Fsa:
    """Build HLG (monophone model, ``tree`` None) or HCLG (context-dependent model).

    Args:
        lang: lang directory (L_disambig, G, symbol tables).
        topo: HMM topology (phones, self-loop probabilities).
        tree: the model's decision tree (triphone senones), or None for a monophone model.
        config: construction and self-loop scale.
        lg_openfst: :func:`make_lg_openfst` of ``lang`` and ``config.minimize``, if made earlier.

    Returns:
        arc-sorted k2 Fsa, ``labels`` = pdf-id + 1 (never 0), ragged ``aux_labels`` = word ids;
        scores = scaled log transition probs + log LM probs + log silence probs (base e).

    Raises:
        RuntimeError: the graph is empty (L, G and the topology share no path).
    """
    start = time.time()
    if config.construction == "compose":
        hmm = cd_hmm_graph(topo, tree) if tree is not None else monophone_hmm_graph(topo)
        LG = make_lg(lang, minimize=config.minimize, lg_openfst=lg_openfst)
        graph = k2.arc_sort(k2.connect(k2.compose(hmm.with_self_loops(topo, config.self_loop_scale), LG)))
        log.info("graph (compose): %d states, %d arcs (LG %d states, %d arcs)", graph.shape[0],
                 graph.num_arcs, LG.shape[0], LG.num_arcs)
    else:
        graph = _mkgraph(lang, topo, tree, config, lg_openfst)
    if graph.num_arcs == 0:
        raise RuntimeError("the decoding graph is empty: L, G and the topology share no path")
    assert int((graph.labels == 0).sum()) == 0, "the decoding graph must be epsilon-free on the input side"
    log.info("decoding graph built in %.1f s", time.time() - start)
    return graph


def _mkgraph(lang: Lang, topo: HmmTopology, tree: Optional[DecisionTree], config: GraphConfig,
             lg_openfst=None) -> k2.Fsa:
    """The ``mkgraph`` construction (module docstring); intermediate graphs are freed as soon as
    they are used, since for a large LM each is several times the size of the result."""
    import kaldifst

    first = lang.first_phone_disambig
    num_disambig = max(lang.phone_table[s] for s in lang.phone_table.symbols) - first + 1
    LG = lg_openfst if lg_openfst is not None else make_lg_openfst(lang, config.minimize)
    lg_states = LG.num_states
    width, centre = context_width(tree)
    CLG, windows = kaldifst.compose_context(list(range(first, first + num_disambig)), width, centre, LG)
    del LG
    clg_states = CLG.num_states
    H, labels = make_window_h(topo, tree, windows, config.self_loop_scale, first, num_disambig)
    det = determinized_composition(H, CLG, config.minimize)
    del H, CLG
    det_states = det.num_states
    fsa = from_openfst(det, ragged=True)
    del det
    fsa = _remove_disambig(fsa, labels.first_disambig, lang.first_word_disambig)
    graph = k2.arc_sort(add_self_loops(fsa, labels))
    log.info("graph (mkgraph): LG %d states, CLG %d states (%d context windows), det(H o CLG) %d states; without "
             "disambiguation symbols %d states, %d arcs; with self-loops %d states, %d arcs", lg_states, clg_states,
             len(windows), det_states, fsa.shape[0], fsa.num_arcs, graph.shape[0], graph.num_arcs)
    return graph


def add_self_loops(graph: k2.Fsa, labels: HmmLabels) -> k2.Fsa:
    """Add the HMM self-loops to a graph over HMM-state labels and relabel it with pdf-ids.

    Every state entered by arcs labelled with HMM state ``h`` gets ``h``'s self-loop (label
    ``pdf(h) + 1``, score ``labels.loop_score[h]``), like Kaldi's ``AddSelfLoops`` without
    reordering. A state entered by arcs of several HMM states is split into one copy per HMM
    state, each with all of the state's outgoing arcs, so that the graph stays epsilon-free (k2's
    dense intersection has no input epsilons).

    Args:
        graph: epsilon-free on the input side, ``labels`` = HMM-state labels (1 .. L) or -1 on
            final arcs, ragged ``aux_labels``.
        labels: the table of the self-loop-free H (:func:`~hybrid_asr.graph.h_windows.make_window_h`).

    Returns:
        k2 Fsa with ``labels`` = pdf-id + 1 and the same ``aux_labels`` on every copied arc (none
        on the self-loops).
    """
    row_splits = graph.arcs.shape().row_splits(1).long().numpy()
    arcs = graph.arcs.values()
    dst = arcs[:, 1].long().numpy()
    lab = graph.labels.long().numpy()
    scores = graph.scores.detach().numpy()
    final = graph.shape[0] - 1
    m = labels.first_disambig
    entering = lab > 0
    pairs = np.unique(dst[entering] * m + lab[entering])  # (state, HMM state) pairs, sorted by state
    pair_state, pair_label = pairs // m, pairs % m
    first = np.r_[True, pair_state[1:] != pair_state[:-1]] & (pair_state != 0)  # the start state keeps no loop
    num_copies = int((~first).sum())
    new_state = np.where(first, pair_state, final + np.cumsum(~first) - 1)
    new_final = final + num_copies
    # states of the result (except the final one): originals, then copies; their HMM states
    orig = np.r_[np.arange(final), pair_state[~first]]
    state_label = np.zeros(new_final, dtype=np.int64)
    state_label[new_state] = pair_label
    # every state carries the outgoing arcs of its original
    counts = row_splits[orig + 1] - row_splits[orig]
    offsets = np.cumsum(counts) - counts
    arc_index = np.repeat(row_splits[orig] - offsets, counts) + np.arange(int(counts.sum()))
    out_src = np.repeat(np.arange(new_final), counts)
    a_dst, a_lab = dst[arc_index], lab[arc_index]
    out_dst = np.full_like(a_dst, new_final)
    enter = a_lab > 0
    out_dst[enter] = new_state[np.searchsorted(pairs, a_dst[enter] * m + a_lab[enter])]
    pdf = labels.pdf.numpy()
    out_lab = np.where(enter, pdf[np.maximum(a_lab, 0)] + 1, -1)
    looped = np.nonzero(state_label > 0)[0]
    all_src = np.r_[out_src, looped]
    order = np.argsort(all_src, kind="stable")
    table = np.stack([all_src, np.r_[out_dst, looped], np.r_[out_lab, pdf[state_label[looped]] + 1]], axis=1)[order]
    all_scores = np.r_[scores[arc_index], labels.loop_score.numpy()[state_label[looped]]].astype(np.float32)[order]
    rows = torch.from_numpy(np.concatenate([table, np.zeros((len(table), 1), dtype=np.int64)], axis=1)).to(torch.int32)
    rows[:, 3] = torch.from_numpy(all_scores).view(torch.int32)
    out = k2.Fsa(rows)
    aux_index = torch.from_numpy(np.r_[arc_index, np.full(len(looped), -1)][order]).to(torch.int32)
    out.aux_labels, _ = graph.aux_labels.index(aux_index, axis=0)
    if num_copies:
        log.info("self-loops: %d states entered from several HMM states were split (%d copies)",
                 len(np.unique(pair_state[~first])), num_copies)
    return out
