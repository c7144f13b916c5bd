"""H over the phone windows of Kaldi's context transducer C: the H of the mkgraph construction.

Kaldi builds ``CLG = C o LG`` with ``ComposeContext`` (here through ``kaldifst.compose_context``):
its input labels are indices into a list of phone *windows*, e.g. ``[l, c, r]`` for a triphone
(0 = utterance boundary), ``[-k]`` for the disambiguation symbol whose phones.txt id is ``k``,
``[0]`` for Kaldi's ``#-1`` (the start, where C has read no phone yet) and ``[]`` (index 0) for
epsilon. C reads the window once its right context is known, so ``C o LG`` stays close to the size
of LG instead of enumerating every future right context (Mohri, Pereira & Riley 2002, section
3.3; Kaldi's "Decoding graph construction" and "How context dependency is handled" pages).

The H that maps HMM states to those windows is a "flower" (Kaldi's ``GetHTransducer``): from one
hub state, one chain of HMM states per window, whose first arc outputs the window's index and
whose last state returns to the hub on epsilon. Chains with the same centre phone and senone
sequence are shared. Input labels are :class:`~hybrid_asr.graph.h.HmmLabels` labels; self-loops
are left out and added after determinization
(:func:`hybrid_asr.graph.decoding_graph.add_self_loops`; Povey et al., "Generating exact lattices
in the WFST framework", 2012, section 2).
"""

from typing import Dict, List, Optional, Sequence, Tuple

from hybrid_asr.graph.h import HmmLabels, StateKey
from hybrid_asr.hmm.topology import HmmTopology
from hybrid_asr.hmm.tree import DecisionTree
from hybrid_asr.hmm.tree_stats import BOUNDARY


def context_width(tree: Optional[DecisionTree]) -> Tuple[int, int]:
    """``(N, P)`` of Kaldi's context: window size and centre position (3, 1 with a tree, else 1, 0)."""
    return (3, 1) if tree is not None else (1, 0)


def make_window_h(topo: HmmTopology, tree: Optional[DecisionTree], windows: Sequence[Sequence[int]],
                  self_loop_scale: float, first_phone_disambig: int, num_disambig: int):
    """The self-loop-free H whose outputs are the window indices of ``C o LG``.

    Scores: the arc entering an HMM state ``s`` carries ``self_loop_scale * log(1 - p_loop(s))``
    (the weight of leaving ``s``, so that a path's score is unchanged once the self-loops are
    added with their own ``self_loop_scale * log p_loop(s)``); the epsilon arcs back to the hub
    score 0. Log base e; the OpenFst costs are their negations.

    Args:
        topo: phones, phone ids, states per phone and self-loop probabilities (per monophone
            HMM state, shared by all contexts).
        tree: maps ``(left, phone, right, state)`` to a senone; None for a monophone model
            (windows of one phone, pdf-ids from ``topo``).
        windows: ``kaldifst.compose_context``'s list, as described in the module docstring.
        self_loop_scale: multiplies every HMM transition log-probability.
        first_phone_disambig: phones.txt id of ``#0``.
        num_disambig: number of phone disambiguation symbols (``#0`` .. ``#{num_disambig-1}``).

    Returns:
        ``(H, labels)``: H a ``kaldifst.StdVectorFst`` (start and only final state 0), input
        labels = HMM-state labels ``1 .. L`` or disambiguation labels ``>= labels.first_disambig``
        (``#k`` -> ``first_disambig + k``, ``#-1`` -> ``first_disambig + num_disambig``), output
        labels = window indices.

    Raises:
        ValueError: a window that is neither a phone window of the expected width nor a
            disambiguation symbol, or that names a phone the topology lacks.
    """
    import kaldifst

    width, centre = context_width(tree)
    name = dict(zip(topo.phone_ids, topo.phones))
    n_states = dict(zip(topo.phones, topo.num_states))

    def pdfs_of(window: Sequence[int]) -> Tuple[int, ...]:
        if len(window) != width or window[centre] not in name or any(p != 0 and p not in name for p in window):
            raise ValueError(f"context window {list(window)} is not a window of {width} phones of the topology")
        phone = name[window[centre]]
        if tree is None:
            return tuple(range(*topo.pdf_range(phone)))
        left, right = (name.get(p, BOUNDARY) for p in (window[0], window[2]))
        return tuple(tree.pdf_id(left, phone, right, j) for j in range(n_states[phone]))

    chain_of_window: List[Tuple[int, Tuple[StateKey, ...]]] = []  # (window index, keys of its chain)
    disambig_of_window: List[Tuple[int, int]] = []  # (window index, disambiguation number; num_disambig = #-1)
    for i, window in enumerate(windows):
        if i == 0:
            continue
        if len(window) == 1 and window[0] <= 0:
            k = num_disambig if window[0] == 0 else -window[0] - first_phone_disambig
            if not 0 <= k <= num_disambig:
                raise ValueError(f"context window {list(window)} is not a disambiguation symbol of the lang dir")
            disambig_of_window.append((i, k))
            continue
        pdfs = pdfs_of(window)
        phone_id = window[centre]
        chain_of_window.append((i, tuple((phone_id, j, pdf) for j, pdf in enumerate(pdfs))))

    hmm_state: Dict[StateKey, int] = {key: topo.pdf_id(name[key[0]], key[1])
                                      for _, keys in chain_of_window for key in keys}
    labels, label_of = HmmLabels.for_keys(hmm_state, topo, self_loop_scale)
    _, fwd_lp = (self_loop_scale * lp for lp in topo.loop_log_probs())

    def cost(key: StateKey) -> str:
        return f"{-fwd_lp[hmm_state[key]]:.7g}"

    lines = [f"0 0 {labels.first_disambig + k} {i} 0" for i, k in disambig_of_window]
    chain_start: Dict[Tuple[StateKey, ...], int] = {}
    num_states = 1
    for i, keys in chain_of_window:
        if keys not in chain_start:
            first = chain_start[keys] = num_states
            num_states += len(keys)
            lines += [f"{first + j - 1} {first + j} {label_of[keys[j]]} 0 {cost(keys[j])}" for j in range(1, len(keys))]
            lines.append(f"{first + len(keys) - 1} 0 0 0 0")
        lines.append(f"0 {chain_start[keys]} {label_of[keys[0]]} {i} {cost(keys[0])}")
    lines.append("0 0")
    return kaldifst.compile("\n".join(lines) + "\n", acceptor=False), labels
