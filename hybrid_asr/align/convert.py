"""Convert alignments: monophone states to context-dependent senones with a decision tree, and
one topology's states to another's (e.g. a chain model's one state per phone)."""

from typing import Dict, Mapping

import numpy as np

from hybrid_asr.errors import AlignmentError
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


def to_topology(marks: Mapping[str, np.ndarray], topo: HmmTopology, new_topo: HmmTopology) -> Dict[str, np.ndarray]:
    """Re-state alignments in another topology over the same phones, keeping every phone's frames.

    Each phone instance of ``n`` states in ``new_topo`` spends ``floor(k * n / L)`` as the state
    of its k-th of L frames: its frames are shared evenly and in order between its states (as a
    flat start shares them; for one state per phone, Kaldi's chain topology, the conversion is
    exact). Kaldi's ``convert-ali`` to a new topology instead maps state sequences through the
    transition models; with a one-state target the result is the same.

    Args:
        marks: ``utt_id -> int [T]`` phone-start marks (phones.txt ids on each phone's first frame).
        topo: the topology the marks refer to (its phone ids name the phones).
        new_topo: the target topology, over the same phones and ids.

    Returns:
        ``utt_id -> int32 [T]`` monophone pdf-ids (HMM states) of ``new_topo``.

    Raises:
        AlignmentError: a phone instance is shorter than its number of states in ``new_topo``
            (names the utterance), or the marks do not start a phone on the first frame.
        ValueError: the topologies have different phones.
    """
    if topo.phone_names != new_topo.phone_names:
        raise ValueError("the topologies have different phone sets")
    out: Dict[str, np.ndarray] = {}
    for utt, m in marks.items():
        states = np.empty(len(m), dtype=np.int32)
        for phone, start, end in segments_from_marks(m, topo.phone_names):
            n, length = new_topo.states_of(phone), end - start
            if length < n:
                raise AlignmentError(f"utterance {utt}: phone {phone} at frame {start} has {length} frame(s), "
                                     f"fewer than its {n} states")
            states[start:end] = new_topo.pdf_id(phone, 0) + np.arange(length) * n // length
        out[utt] = states
    return out
