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

from typing import Dict, List, Tuple

import k2

from hybrid_asr.hmm.topology import HmmTopology
from hybrid_asr.hmm.tree import DecisionTree
from hybrid_asr.hmm.tree_stats import BOUNDARY

ChainKey = Tuple[str, str, Tuple[int, ...]]
"""``(centre phone, right context, senone of every state)``."""


def make_h_cd(topo: HmmTopology, tree: DecisionTree, transition_scale: float = 1.0) -> k2.Fsa:
    """Build the context-dependent H over all phones of ``topo``.

    Args:
        topo: phones, phone ids, states per phone and self-loop probabilities (per monophone
            HMM state, shared by all contexts).
        tree: maps ``(left, phone, right, state)`` to a senone.
        transition_scale: scale of the transition log-probabilities (see :func:`make_h`).

    Returns:
        k2 transducer: ``labels`` = senone + 1 (never 0), ``aux_labels`` = phones.txt id of the
        phone entered, 0 elsewhere; scores = scaled log transition probabilities.
    """
    loop_lp, fwd_lp = (transition_scale * lp for lp in topo.loop_log_probs())
    phone_id = dict(zip(topo.phones, topo.phone_ids))
    n_states = dict(zip(topo.phones, topo.num_states))
    contexts = list(topo.phones) + [BOUNDARY]

    def key(left: str, centre: str, right: str) -> ChainKey:
        return centre, right, tuple(tree.pdf_id(left, centre, right, j) for j in range(n_states[centre]))

    chains: Dict[ChainKey, int] = {}  # key -> first state id
    next_state = 1  # 0 is the start state

    def chain(k: ChainKey) -> int:
        nonlocal next_state
        if k not in chains:
            chains[k] = next_state
            next_state += len(k[2])
        return chains[k]

    arcs: List[Tuple[int, int, int, int, float]] = []
    for c in topo.phones:
        for r in contexts:
            k = key(BOUNDARY, c, r)
            arcs.append((0, chain(k), k[2][0] + 1, phone_id[c], 0.0))
    done = set()
    todo = list(chains)
    while todo:
        k = todo.pop()
        if k in done:
            continue
        done.add(k)
        c, r, pdfs = k
        first = chains[k]
        for j, pdf in enumerate(pdfs):
            hmm_state = topo.pdf_id(c, j)
            arcs.append((first + j, first + j, pdf + 1, 0, loop_lp[hmm_state]))
            if j + 1 < len(pdfs):
                arcs.append((first + j, first + j + 1, pdfs[j + 1] + 1, 0, fwd_lp[hmm_state]))
        last, exit_lp = first + len(pdfs) - 1, fwd_lp[topo.pdf_id(c, len(pdfs) - 1)]
        if r == BOUNDARY:
            arcs.append((last, -1, -1, -1, exit_lp))  # final; destination filled in below
            continue
        for y in contexts:
            k2_ = key(c, r, y)
            arcs.append((last, chain(k2_), k2_[2][0] + 1, phone_id[r], exit_lp))
            if k2_ not in done:
                todo.append(k2_)
    final = next_state
    arcs = [(s, final if d == -1 else d, l, o, w) for s, d, l, o, w in arcs]
    arcs.sort(key=lambda a: a[0])
    text = "\n".join(f"{s} {d} {l} {o} {w:.6f}" for s, d, l, o, w in arcs) + f"\n{final}\n"
    return k2.arc_sort(k2.Fsa.from_str(text, acceptor=False))
