"""Conversion between k2 graphs and OpenFst ``StdVectorFst`` (``kaldifst``), for the OpenFst
operations k2 lacks (minimization) and for Kaldi's decoders."""

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


def from_openfst(fst) -> k2.Fsa:
    """Convert a ``kaldifst`` transducer back to k2: scores are negated costs, final weights
    become arcs labelled -1 into k2's final state; ``aux_labels`` are linear (0 = epsilon)."""
    return k2.Fsa.from_openfst(fst.to_str(), acceptor=False)


def minimize(graph: k2.Fsa) -> k2.Fsa:
    """Minimize a deterministic k2 transducer with OpenFst (Kaldi's ``fstminimizeencoded``: labels
    and weights encoded together, weights quantized to 1/1024, acceptor minimization).

    Returns:
        the minimized graph, epsilon-free again (``k2.remove_epsilon`` removes the epsilon arcs
        that carried the extra words of ragged ``aux_labels``), ``aux_labels`` ragged.
    """
    import kaldifst

    fst = to_openfst(graph)
    kaldifst.minimize_encoded(fst)
    out = k2.connect(k2.remove_epsilon(from_openfst(fst)))
    out.aux_labels = out.aux_labels.remove_values_eq(0)
    return out
