"""The lexicon transducer L (phones -> words) with optional silence, as a k2 ``Fsa``."""

import math
from typing import List, Optional, Sequence, Tuple

import k2

from hybrid_asr.lang.fsa import fsa_from_arcs
from hybrid_asr.lang.lexicon import Pronunciation


def make_lexicon_fst(
    entries: Sequence[Pronunciation],
    phone_ids: dict,
    word_ids: dict,
    sil_phone: str,
    sil_prob: float = 0.5,
    disambig_loop: Optional[Tuple[int, int]] = None,
) -> k2.Fsa:
    """Build L: a transducer from phone sequences to word sequences with optional silence.

    Topology (Kaldi ``make_lexicon_fst.py`` with ``--sil-prob``; Mohri et al. 2002)::

        start --eps:eps/log(1-p)--> loop          start --eps:eps/log(p)--> sil
        sil   --SIL:eps-----------> loop
        loop  --p1:WORD--> ... --pn:eps/log(1-p)--> loop    (and --pn:eps/log(p)--> sil)
        loop is final

    So silence may begin the utterance and follow any word, with probability ``sil_prob``.

    Args:
        entries: ``(word, phones)`` pairs; phones may end in disambiguation symbols (``#1``).
        phone_ids: phone (and disambiguation symbol) -> id; 0 is epsilon.
        word_ids: word -> id; 0 is epsilon.
        sil_phone: the optional-silence phone.
        sil_prob: probability of silence after a word / at the start, in (0, 1).
        disambig_loop: ``(phone #0 id, word #0 id)`` to add as a self-loop on the loop state
            (needed in L_disambig so that G's back-off arcs pass through).

    Returns:
        k2 transducer, ``labels`` = phone ids, ``aux_labels`` = word ids, scores in log base e.

    Raises:
        KeyError: a phone or word is missing from its table.
    """
    if not 0.0 < sil_prob < 1.0:
        raise ValueError(f"sil_prob must be in (0, 1), got {sil_prob}")
    sil_score, no_sil_score = math.log(sil_prob), math.log(1.0 - sil_prob)
    start, loop, sil = 0, 1, 2
    next_state = 3
    arcs: List[Tuple[int, int, int, int, float]] = [
        (start, loop, 0, 0, no_sil_score),
        (start, sil, 0, 0, sil_score),
        (sil, loop, phone_ids[sil_phone], 0, 0.0),
    ]
    if disambig_loop is not None:
        arcs.append((loop, loop, disambig_loop[0], disambig_loop[1], 0.0))
    for word, pron in entries:
        word_id = word_ids[word]
        cur = loop
        for i, phone in enumerate(pron[:-1]):
            arcs.append((cur, next_state, phone_ids[phone], word_id if i == 0 else 0, 0.0))
            cur = next_state
            next_state += 1
        last = phone_ids[pron[-1]]
        out = word_id if len(pron) == 1 else 0
        arcs.append((cur, loop, last, out, no_sil_score))
        arcs.append((cur, sil, last, out, sil_score))
    final = next_state
    arcs.append((loop, final, -1, -1, 0.0))
    return fsa_from_arcs([(s, d, lab, w) for s, d, lab, _, w in arcs], final, [o for _, _, _, o, _ in arcs])
