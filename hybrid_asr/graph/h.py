"""H: the HMM transducer from pdf-id sequences to phone sequences."""

from typing import List, Tuple

import k2

from hybrid_asr.hmm.topology import HmmTopology


def make_h(topo: HmmTopology, transition_scale: float = 1.0) -> k2.Fsa:
    """Build H over all phones of ``topo``, epsilon-free on the input side.

    k2's dense intersection reads score column ``l`` for graph label ``l`` and has no input
    epsilon, so every arc consumes one frame: labels are ``pdf_id + 1`` (label 0 is never used)
    and the phone is emitted on the arc entering the phone's first state. Instead of a shared
    epsilon "hub" between phones, the last state of every phone connects directly to the first
    state of every phone (``P^2`` arcs)::

        start --pdf(p,0)+1 : p--> p.0   (for every phone p)
        p.j   --pdf(p,j)+1 : eps--> p.j            self-loop, log p_loop(p,j)
        p.j   --pdf(p,j+1)+1 : eps--> p.j+1        forward,   log(1 - p_loop(p,j))
        p.last --pdf(q,0)+1 : q--> q.0             phone change, log(1 - p_loop(p,last))
        p.last --(-1) : (-1)--> final              end,          log(1 - p_loop(p,last))

    Args:
        topo: phone HMMs and self-loop probabilities.
        transition_scale: multiplies every transition log-probability. 1 for alignment; for
            decoding, about the acoustic scale, so that transitions and acoustics keep their
            relative weight and only the LM is boosted (Kaldi's ``--transition-scale`` /
            ``--self-loop-scale`` in ``mkgraph.sh``).

    Returns:
        k2 transducer: ``labels`` = pdf-id + 1 (int32), ``aux_labels`` = phones.txt id on phone
        entries, 0 elsewhere; scores are log transition probabilities (base e) x ``transition_scale``.
        States: ``1 + num_pdfs + 1``; arcs: ``P + 2*num_pdfs - P + P*P + P`` for P phones.
    """
    loop_lp, fwd_lp = (transition_scale * lp for lp in topo.loop_log_probs())
    state_of = lambda pdf: pdf + 1  # noqa: E731  state 0 is the start state
    final = topo.num_pdfs + 1
    entries: List[Tuple[int, int]] = []  # (first pdf, phone id)
    lasts: List[int] = []
    for phone, phone_id in zip(topo.phones, topo.phone_ids):
        first, end = topo.pdf_range(phone)
        entries.append((first, phone_id))
        lasts.append(end - 1)
    arcs = [(0, state_of(first), first + 1, pid, 0.0) for first, pid in entries]
    for phone in topo.phones:
        first, end = topo.pdf_range(phone)
        for pdf in range(first, end):
            arcs.append((state_of(pdf), state_of(pdf), pdf + 1, 0, loop_lp[pdf]))
            if pdf + 1 < end:
                arcs.append((state_of(pdf), state_of(pdf + 1), pdf + 2, 0, fwd_lp[pdf]))
    for last in lasts:
        for first, pid in entries:
            arcs.append((state_of(last), state_of(first), first + 1, pid, fwd_lp[last]))
        arcs.append((state_of(last), final, -1, -1, fwd_lp[last]))
    arcs.sort(key=lambda a: a[0])
    text = "\n".join(f"{s} {d} {l} {o} {w:.6f}" for s, d, l, o, w in arcs) + f"\n{final}\n"
    return k2.arc_sort(k2.Fsa.from_str(text, acceptor=False))
