"""Convert monophone alignments to context-dependent senone alignments with a decision tree."""

from typing import Dict, Mapping

import numpy as np

from hybrid_asr.hmm.alignment import segments_from_marks
from hybrid_asr.hmm.topology import HmmTopology
from hybrid_asr.hmm.tree import DecisionTree
from hybrid_asr.hmm.tree_stats import BOUNDARY


def to_senones(alignments: Mapping[str, np.ndarray], marks: Mapping[str, np.ndarray], topo: HmmTopology,
               tree: DecisionTree) -> Dict[str, np.ndarray]:
    """Map every frame's monophone HMM state to the senone of its triphone state.

    The phone instances and their neighbours come from the phone-start marks; the first and last
    phone of an utterance have :data:`BOUNDARY` as outer context (as in the graphs).

    Args:
        alignments: ``utt_id -> int [T]`` monophone pdf-ids of ``topo``.
        marks: ``utt_id -> int [T]`` phone-start marks of the same alignments
            (:func:`hybrid_asr.hmm.alignment.load_alignment_dir`).
        topo: the monophone topology.
        tree: the decision tree.

    Raises:
        AlignmentError: the marks of an utterance do not start a phone on its first frame.

    Returns:
        ``utt_id -> int32 [T]`` senone ids (``0 .. tree.num_pdfs - 1``).
    """
    state_of = np.concatenate([np.arange(n) for n in topo.num_states])
    out: Dict[str, np.ndarray] = {}
    for utt, ali in alignments.items():
        ali = np.asarray(ali)
        segs = segments_from_marks(marks[utt], topo.phone_names)
        phones = [BOUNDARY] + [p for p, _, _ in segs] + [BOUNDARY]
        senones = np.empty(len(ali), dtype=np.int32)
        for i, (phone, start, end) in enumerate(segs):
            n = topo.states_of(phone)
            table = [tree.pdf_id(phones[i], phone, phones[i + 2], j) for j in range(n)]
            senones[start:end] = np.asarray(table, dtype=np.int32)[state_of[ali[start:end]]]
        out[utt] = senones
    return out
