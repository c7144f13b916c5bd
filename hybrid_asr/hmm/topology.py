"""HMM topology: left-to-right phone HMMs, their pdf-ids and transition probabilities.

Every phone is a left-to-right chain of emitting states, each with a self-loop and a forward
transition (Kaldi's standard 3-state topology; Rabiner 1989, Young et al., *The HTK Book*,
section 7.2)::

    phone p, n states:   -> [s0] -> [s1] -> [s2] ->      (each state also loops onto itself)

An *HMM state* is a (phone, state index) pair, numbered densely in phone order; in this monophone
system each HMM state has its own pdf-id (senone), so ``pdf_id == hmm_state``. The transition
probability of a state is its self-loop probability; the forward probability is one minus it.
"""

from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

import numpy as np

from hybrid_asr.utils import JsonDataclass, phone_set_fingerprint


@dataclass
class HmmTopology(JsonDataclass):
    """Phones, their numbers of states, pdf-ids and self-loop probabilities.

    Attributes:
        phones: phone names in phones.txt id order (no epsilon, no disambiguation symbols).
        phone_ids: id of each phone in phones.txt (same order as ``phones``).
        num_states: emitting states per phone (same order).
        self_loop_prob: ``[num_hmm_states]`` self-loop probability of every HMM state.

    Example::

        >>> topo = HmmTopology.create(["SIL", "AA"], [1, 2], {"SIL": 5}, default_states=3)
        >>> topo.num_pdfs, topo.pdf_id("AA", 2)
        (8, 7)
    """

    json_what = "HMM topology"

    phones: List[str]
    phone_ids: List[int]
    num_states: List[int]
    self_loop_prob: List[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not (len(self.phones) == len(self.phone_ids) == len(self.num_states)):
            raise ValueError("phones, phone_ids and num_states must have the same length")
        self._offsets = np.concatenate([[0], np.cumsum(self.num_states)]).astype(int).tolist()
        self._index = {p: i for i, p in enumerate(self.phones)}
        if not self.self_loop_prob:
            self.self_loop_prob = [0.5] * self.num_pdfs
        if len(self.self_loop_prob) != self.num_pdfs:
            raise ValueError("self_loop_prob must have one entry per HMM state")

    @classmethod
    def create(
        cls,
        phones: Sequence[str],
        phone_ids: Sequence[int],
        states_per_phone: Dict[str, int],
        default_states: int = 3,
    ) -> "HmmTopology":
        """Topology with ``default_states`` states per phone, overridden by ``states_per_phone``."""
        return cls(list(phones), list(phone_ids), [states_per_phone.get(p, default_states) for p in phones])

    @property
    def num_pdfs(self) -> int:
        """Number of pdf-ids S (senones): the acoustic model's output dimension."""
        return self._offsets[-1]

    def phone_set_fingerprint(self) -> str:
        """SHA-256 of the phones and their ids (:func:`hybrid_asr.utils.phone_set_fingerprint`)."""
        return phone_set_fingerprint(zip(self.phones, self.phone_ids))

    @property
    def phone_names(self) -> Dict[int, str]:
        """phones.txt id -> phone."""
        return dict(zip(self.phone_ids, self.phones))

    def states_of(self, phone: str) -> int:
        """Number of HMM states of ``phone``."""
        return self.num_states[self._index[phone]]

    def pdf_id(self, phone: str, state: int) -> int:
        """pdf-id of state ``state`` (0-based) of ``phone``."""
        i = self._index[phone]
        if not 0 <= state < self.num_states[i]:
            raise ValueError(f"phone {phone} has {self.num_states[i]} states, asked for {state}")
        return self._offsets[i] + state

    def pdf_range(self, phone: str) -> Tuple[int, int]:
        """``[first, last + 1)`` pdf-ids of a phone."""
        i = self._index[phone]
        return self._offsets[i], self._offsets[i + 1]

    def loop_log_probs(self) -> Tuple[np.ndarray, np.ndarray]:
        """``(log p(self-loop), log p(forward))`` per HMM state, float64 ``[num_pdfs]``, log base e."""
        p = np.clip(np.asarray(self.self_loop_prob, dtype=np.float64), 1e-3, 1 - 1e-3)
        return np.log(p), np.log1p(-p)

    def estimate_transitions(self, alignments: Sequence[np.ndarray], floor: float = 0.05) -> None:
        """Re-estimate self-loop probabilities from frame alignments (maximum likelihood).

        For each HMM state, p(loop) = (frames in state - visits) / frames in state, where a visit
        is a maximal run of frames; states never seen keep their value. Clipped to
        ``[floor, 1 - floor]``.

        Args:
            alignments: ``[T]`` int pdf-ids per utterance.
        """
        frames = np.zeros(self.num_pdfs)
        visits = np.zeros(self.num_pdfs)
        for ali in alignments:
            ali = np.asarray(ali)
            if ali.size == 0:
                continue
            starts = np.concatenate([[True], ali[1:] != ali[:-1]])
            frames += np.bincount(ali, minlength=self.num_pdfs)
            visits += np.bincount(ali[starts], minlength=self.num_pdfs)
        seen = frames > 0
        probs = np.asarray(self.self_loop_prob, dtype=np.float64)
        probs[seen] = (frames[seen] - visits[seen]) / frames[seen]
        self.self_loop_prob = np.clip(probs, floor, 1 - floor).tolist()


