"""H: the HMM transducer from pdf-id sequences to phone sequences.

Both the monophone H (:func:`make_h`) and the context-dependent one
(:func:`hybrid_asr.graph.h_cd.make_h_cd`) are first described as an :class:`HmmGraph`: which HMM
state every FSA state is, and which transitions enter it, then rendered with their self-loops
(:meth:`HmmGraph.with_self_loops`) for alignment, training graphs and the composed decoding graph.
Kaldi-style graph construction uses the self-loop-free H of :mod:`hybrid_asr.graph.h_windows`,
labelled by the :class:`HmmLabels` defined here.
"""

from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

import k2
import numpy as np
import torch

from hybrid_asr.hmm.topology import HmmTopology
from hybrid_asr.lang.fsa import fsa_from_arcs

StateKey = Tuple[int, int, int]
"""``(phone id, HMM state index within the phone, pdf-id)`` of an FSA state of H."""


@dataclass(frozen=True)
class HmmLabels:
    """What an HMM-state label of the self-loop-free H stands for (index 0 is unused).

    The label of an arc is the HMM state it enters, identified by ``(phone, state index, pdf)``
    as Kaldi's transition-ids identify ``(phone, HMM state, pdf)``: two triphones with the same
    centre phone and the same senone in a state share that state's label, so determinization can
    merge their paths until their senones differ.

    Attributes:
        pdf: int64 ``[L + 1]`` pdf-id (senone) of each label.
        loop_score: float32 ``[L + 1]`` self-loop score, ``self_loop_scale * log p_loop`` (base e).
        first_disambig: label of the first disambiguation symbol (``L + 1``); disambiguation
            label ``first_disambig + k`` passes phones.txt's ``#k`` through H.
    """

    pdf: torch.Tensor
    loop_score: torch.Tensor

    @property
    def first_disambig(self) -> int:
        return int(self.pdf.numel())

    @classmethod
    def for_keys(cls, hmm_state: Dict[StateKey, int], topo: HmmTopology,
                 self_loop_scale: float) -> Tuple["HmmLabels", Dict[StateKey, int]]:
        """Number the HMM-state keys ``1 .. L`` in sorted order.

        Args:
            hmm_state: every key used, with the topology's pdf index whose self-loop
                probability applies to it (the monophone HMM state).
            topo: self-loop probabilities.
            self_loop_scale: multiplies the self-loop log-probabilities.

        Returns:
            ``(labels, label_of)``: the table and the label of every key.
        """
        loop_lp = self_loop_scale * topo.loop_log_probs()[0]
        order = sorted(hmm_state)
        label_of = {key: i + 1 for i, key in enumerate(order)}
        loop = np.zeros(len(order) + 1, dtype=np.float32)
        loop[1:] = [loop_lp[hmm_state[key]] for key in order]
        pdf = torch.tensor([-1] + [key[2] for key in order], dtype=torch.int64)
        return cls(pdf=pdf, loop_score=torch.from_numpy(loop)), label_of


@dataclass
class HmmGraph:
    """An HMM transducer described by its states and the transitions that enter them.

    State 0 is the start state (no HMM state); states ``1 .. num_states - 1`` are HMM states; the
    final state is added when rendering. Every entry ``(src, dst, phone)`` consumes one frame of
    ``dst``'s pdf; ``phone`` (phones.txt id, 0 = none) is output where a phone is entered. States
    in ``exits`` may end the utterance.

    Attributes:
        num_states: states including the start state (the final state not included).
        keys: ``(phone id, state index, pdf-id)`` per state; ``keys[0]`` is unused.
        hmm_state: per state, the topology's pdf index whose self-loop probability applies
            (the monophone HMM state; shared by all contexts); ``hmm_state[0]`` is unused.
        entries: ``(src, dst, phone)`` transitions.
        exits: states with a transition to the final state.
    """

    num_states: int = 1
    keys: List[StateKey] = field(default_factory=lambda: [(0, 0, -1)])
    hmm_state: List[int] = field(default_factory=lambda: [-1])
    entries: List[Tuple[int, int, int]] = field(default_factory=list)
    exits: List[int] = field(default_factory=list)

    def add_state(self, key: StateKey, hmm_state: int) -> int:
        """Append an HMM state; returns its FSA state id."""
        self.keys.append(key)
        self.hmm_state.append(hmm_state)
        self.num_states += 1
        return self.num_states - 1

    def with_self_loops(self, topo: HmmTopology, self_loop_scale: float = 1.0, hmm_states: bool = False) -> k2.Fsa:
        """Render H with self-loops: the transducer alignment and the composed graph use.

        Scores: a self-loop on state ``s`` is ``log p_loop(s)``, every transition leaving ``s``
        (to the next state, the next phone or the end) ``log(1 - p_loop(s))``, all times
        ``self_loop_scale``; arcs from the start state score 0.

        Args:
            topo: the self-loop probabilities.
            self_loop_scale: multiplies every transition log-probability.
            hmm_states: also label every arc with the monophone HMM state it enters, so that an
                alignment through a context-dependent H keeps the HMM state of every frame.

        Returns:
            k2 transducer, ``labels`` = pdf-id + 1 (never 0), ``aux_labels`` = phone id on the
            arcs that enter a phone, 0 elsewhere; with ``hmm_states``, int32 attribute
            ``hmm_states`` = the topology's pdf index of the HMM state entered + 1 (0 on the final
            arcs). The final state is ``num_states``.
        """
        loop_lp, fwd_lp = (self_loop_scale * lp for lp in topo.loop_log_probs())
        hmm, final = self.hmm_state, self.num_states
        arcs = [(s, d, self.keys[d][2] + 1, p, 0.0 if s == 0 else float(fwd_lp[hmm[s]])) for s, d, p in self.entries]
        arcs += [(s, s, self.keys[s][2] + 1, 0, float(loop_lp[hmm[s]])) for s in range(1, self.num_states)]
        arcs += [(s, final, -1, -1, float(fwd_lp[hmm[s]])) for s in self.exits]
        extra = {"hmm_states": [hmm[d] + 1 if d != final else 0 for _, d, _, _, _ in arcs]} if hmm_states else None
        return fsa_from_arcs([(s, d, lab, w) for s, d, lab, _, w in arcs], final, [o for _, _, _, o, _ in arcs],
                             extra)


def monophone_hmm_graph(topo: HmmTopology) -> HmmGraph:
    """The monophone H as an :class:`HmmGraph`.

    State ``pdf + 1`` is the HMM state of that pdf. Instead of a shared epsilon "hub" between
    phones, the last state of every phone connects directly to the first state of every phone
    (``P^2`` arcs), so every arc consumes a frame::

        start --pdf(p,0)+1 : p--> p.0   (for every phone p)
        p.j   --pdf(p,j+1)+1 : eps--> p.j+1        forward
        p.last --pdf(q,0)+1 : q--> q.0             phone change
        p.last --> final                           end
    """
    g = HmmGraph()
    firsts: List[Tuple[int, int]] = []  # (first state, phone id)
    lasts: List[int] = []
    for phone, phone_id in zip(topo.phones, topo.phone_ids):
        first, end = topo.pdf_range(phone)
        states = [g.add_state((phone_id, j, pdf), pdf) for j, pdf in enumerate(range(first, end))]
        g.entries += [(a, b, 0) for a, b in zip(states, states[1:])]
        firsts.append((states[0], phone_id))
        lasts.append(states[-1])
    g.entries = [(0, s, p) for s, p in firsts] + g.entries + [(last, s, p) for last in lasts for s, p in firsts]
    g.exits = lasts
    return g


def make_h(topo: HmmTopology, self_loop_scale: float = 1.0, hmm_states: bool = False) -> k2.Fsa:
    """Build the monophone H over all phones of ``topo``, epsilon-free on the input side.

    k2's dense intersection reads score column ``l`` for graph label ``l`` and has no input
    epsilon, so every arc consumes one frame: labels are ``pdf_id + 1`` (label 0 is never used)
    and the phone is emitted on the arc entering the phone's first state
    (:func:`monophone_hmm_graph` draws it).

    Args:
        topo: phone HMMs and self-loop probabilities.
        self_loop_scale: multiplies every transition log-probability (our topologies have only a
            self-loop and a forward transition per state, so this is Kaldi's
            ``--self-loop-scale``). 1 for alignment; for decoding, about the acoustic scale, so
            that transitions and acoustics keep their relative weight and only the LM is boosted.
        hmm_states: add the ``hmm_states`` arc attribute (:meth:`HmmGraph.with_self_loops`).

    Returns:
        k2 transducer: ``labels`` = pdf-id + 1 (int32), ``aux_labels`` = phones.txt id on phone
        entries, 0 elsewhere; scores are log transition probabilities (base e) x ``self_loop_scale``.
        States: ``1 + num_pdfs + 1``; arcs: ``P + 2*num_pdfs - P + P*P + P`` for P phones.
    """
    return monophone_hmm_graph(topo).with_self_loops(topo, self_loop_scale, hmm_states)
