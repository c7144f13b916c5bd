"""Context-dependent H: senone sequences -> phone sequences, with the triphone context expansion
(the job of Kaldi's C transducer) built into the HMM transducer.

Every triphone ``(l, c, r)`` is an HMM chain whose states carry the senones the decision tree
gives ``(l, c, r, j)``. Triphones with the same centre, right context and senone sequence share
one chain (the left context only selects which chain is entered), which keeps the graph small.
The chain of ``(l, c, r)`` is entered on the first frame of ``c`` (emitting phone ``c``) and its
last state connects straight to the first state of every chain ``(c, r, y)`` (emitting ``r``), so
the graph stays epsilon-free on the input side as k2's dense intersection needs. The first
phone of an utterance has left context :data:`BOUNDARY`; only chains with right context
:data:`BOUNDARY` may end it. Contexts cross word boundaries (cross-word triphones); optional
silence is an ordinary context, and SIL/SPN themselves are context-independent in the tree.
"""

from typing import Dict, Tuple

import k2

from hybrid_asr.graph.h import HmmGraph
from hybrid_asr.hmm.topology import HmmTopology
from hybrid_asr.hmm.tree import DecisionTree
from hybrid_asr.hmm.tree_stats import BOUNDARY

ChainKey = Tuple[str, str, Tuple[int, ...]]
"""``(centre phone, right context, senone of every state)``."""


def cd_hmm_graph(topo: HmmTopology, tree: DecisionTree) -> HmmGraph:
    """The context-dependent H as an :class:`~hybrid_asr.graph.h.HmmGraph` (chains as described
    in the module docstring; state keys carry the centre phone, state index and senone).

    Args:
        topo: phones, phone ids, states per phone (and, when rendered, self-loop probabilities
            per monophone HMM state, shared by all contexts).
        tree: maps ``(left, phone, right, state)`` to a senone.
    """
    phone_id = dict(zip(topo.phones, topo.phone_ids))
    n_states = dict(zip(topo.phones, topo.num_states))
    contexts = list(topo.phones) + [BOUNDARY]

    def key(left: str, centre: str, right: str) -> ChainKey:
        return centre, right, tuple(tree.pdf_id(left, centre, right, j) for j in range(n_states[centre]))

    g = HmmGraph()
    chains: Dict[ChainKey, int] = {}  # key -> first state id

    def chain(k: ChainKey) -> int:
        if k not in chains:
            c, _, pdfs = k
            states = [g.add_state((phone_id[c], j, pdf), topo.pdf_id(c, j)) for j, pdf in enumerate(pdfs)]
            g.entries.extend((a, b, 0) for a, b in zip(states, states[1:]))
            chains[k] = states[0]
        return chains[k]

    for c in topo.phones:
        for r in contexts:
            g.entries.append((0, chain(key(BOUNDARY, c, r)), phone_id[c]))
    done = set()
    todo = list(chains)
    while todo:
        k = todo.pop()
        if k in done:
            continue
        done.add(k)
        c, r, pdfs = k
        last = chains[k] + len(pdfs) - 1
        if r == BOUNDARY:
            g.exits.append(last)
            continue
        for y in contexts:
            k2_ = key(c, r, y)
            g.entries.append((last, chain(k2_), phone_id[r]))
            if k2_ not in done:
                todo.append(k2_)
    return g


def make_h_cd(topo: HmmTopology, tree: DecisionTree, self_loop_scale: float = 1.0, hmm_states: bool = False) -> k2.Fsa:
    """Build the context-dependent H over all phones of ``topo``.

    Args:
        topo: phones, phone ids, states per phone and self-loop probabilities (per monophone
            HMM state, shared by all contexts).
        tree: maps ``(left, phone, right, state)`` to a senone.
        self_loop_scale: scale of the transition log-probabilities (see :func:`hybrid_asr.graph.h.make_h`).
        hmm_states: add the monophone HMM state of every arc as attribute ``hmm_states``
            (:meth:`~hybrid_asr.graph.h.HmmGraph.with_self_loops`).

    Returns:
        k2 transducer: ``labels`` = senone + 1 (never 0), ``aux_labels`` = phones.txt id of the
        phone entered, 0 elsewhere; scores = scaled log transition probabilities.
    """
    return cd_hmm_graph(topo, tree).with_self_loops(topo, self_loop_scale, hmm_states)
