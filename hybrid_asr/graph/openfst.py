"""OpenFst (through ``kaldifst``) for the graph operations Kaldi's mkgraph runs on large graphs
(composition, determinization, minimization), and conversion between k2 graphs and OpenFst
``StdVectorFst``.

k2 keeps what only it does: epsilon removal with several words per arc (ragged ``aux_labels``),
dense intersection and lattices. OpenFst's C++ determinization and minimization build the
decoding graph of a large LM in a fraction of the time and memory of ``k2.determinize``
(benchmarks/README.md, "Graph size against LM size").
"""

import k2
import numpy as np


def to_openfst(graph: k2.Fsa, words_only: bool = False):
    """Convert a k2 transducer (``labels``, ``aux_labels`` linear or ragged) to a
    ``kaldifst.StdVectorFst`` with the same paths; with ``words_only`` an acceptor over the
    ``aux_labels`` (input label = output label = word, 0 where an arc has none), e.g. the word
    lattice of a k2 lattice.

    Costs are negated scores (log base e, tropical semiring); ragged ``aux_labels`` are spread
    over extra epsilon-input arcs (``k2.expand_ragged_attributes``); the arcs into k2's final
    state (label -1) become final weights of their source states (the best one where several).
    Label 0 is epsilon in OpenFst (k2's dense intersection reads it as a symbol: see
    ``K2_NOTES``), so graphs for k2 search must not use it.

    Returns:
        ``kaldifst.StdVectorFst``, start state 0, arc-sorted on input labels.
    """
    import kaldifst

    g = k2.expand_ragged_attributes(graph) if isinstance(graph.aux_labels, k2.RaggedTensor) else graph
    arcs = g.arcs.values()[:, :3].long().numpy()
    costs = -g.scores.detach().numpy().astype(np.float64)
    aux = g.aux_labels.long().numpy()
    final = arcs[:, 2] == -1
    if words_only:
        arcs = arcs.copy()
        arcs[:, 2] = np.where(final, -1, aux)
    lines = [f"{s} {d} {i} {o} {c:.7g}" for (s, d, i), o, c in zip(arcs[~final].tolist(), aux[~final].tolist(),
                                                                    costs[~final].tolist())]
    best_final = {}
    for s, c in zip(arcs[final, 0].tolist(), costs[final].tolist()):
        best_final[s] = min(c, best_final.get(s, np.inf))
    lines += [f"{s} {c:.7g}" for s, c in best_final.items()]
    fst = kaldifst.compile("\n".join(lines) + "\n", acceptor=False)
    kaldifst.arcsort(fst, sort_type="ilabel")
    return fst


def from_openfst(fst, ragged: bool = False) -> k2.Fsa:
    """Convert a ``kaldifst`` transducer back to k2: scores are negated costs, final weights
    become arcs labelled -1 into k2's final state; ``aux_labels`` linear (0 = epsilon), or with
    ``ragged`` a ragged tensor of one value per arc (what :func:`k2.remove_epsilon` combines)."""
    out = k2.Fsa.from_openfst(fst.to_str(), acceptor=False)
    if ragged:
        out.aux_labels = k2.ragged.create_ragged_tensor(out.aux_labels.unsqueeze(1))
    return out


def determinized_composition(left, right, minimize: bool):
    """``det(left o right)`` as Kaldi's mkgraph computes LG and HCLG (``fsttablecompose``, then
    ``fstdeterminizestar --use-log=true``, then ``fstminimizeencoded``): OpenFst composition with
    the sequence filter, Kaldi's DeterminizeStar in the log semiring (epsilons removed in the same
    step; Mohri, Pereira & Riley 2002, section 4), and optionally encoded minimization (labels and
    quantized weights as one symbol, delta 1/1024).

    Args:
        left, right: ``kaldifst.StdVectorFst``; the output labels of ``left`` meet the input
            labels of ``right``; both are arc-sorted here (in place). ``left o right`` must be
            determinizable: keep the disambiguation symbols in until after this step.
        minimize: minimize the result.

    Returns:
        ``kaldifst.StdVectorFst``, deterministic on input labels, arc-sorted on them.

    Raises:
        RuntimeError: the composition is empty (no common path).
    """
    import kaldifst

    kaldifst.arcsort(left, sort_type="olabel")
    kaldifst.arcsort(right, sort_type="ilabel")
    fst = kaldifst.compose(left, right, connect=True)
    if fst.num_states == 0:
        raise RuntimeError("the composition is empty: the two transducers share no path")
    kaldifst.determinize_star(fst, use_log=True)
    if minimize:
        kaldifst.minimize_encoded(fst)
    kaldifst.arcsort(fst, sort_type="ilabel")
    return fst
