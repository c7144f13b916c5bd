"""Phone n-gram LMs for the denominator of sequence training (LF-MMI).

The denominator graph of lattice-free MMI (Povey et al., "Purely sequence-trained neural networks
for ASR based on lattice-free MMI", Interspeech 2016, section 2.2) is a phone LM composed with the
senone H. Kaldi estimates it on the phone sequences of the training alignments (a 4-gram without
pruning below the trigram, ``chain-est-phone-lm --no-prune-ngram-order=3``, plus a limited number
of extra higher-order states). We do the same with interpolated Witten-Bell smoothing (Witten &
Bell 1991; Chen & Goodman 1998, section 2.5) and a cap on the number of history states:

- every history of up to ``order - 1`` phones seen in the data gets a probability for every
  phone and for the end of the utterance, interpolated down to a uniform distribution, so the
  probabilities of every history sum to one;
- the FSA has a state per kept history; all histories of up to ``full_order - 1`` phones are
  kept, longer ones only if they are among the ``max_extra_states`` most frequent. A transition
  into a history that is not kept goes to its longest kept suffix, which is where Witten-Bell's
  interpolation puts an unseen history's mass anyway, so the FSA is epsilon-free (no back-off
  arcs: k2's dense intersection has no input epsilon) and its arcs out of every state are a
  probability distribution.
"""

import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Dict, Iterable, List, Sequence, Tuple

import k2
import torch

from hybrid_asr.bounds import bounded, check_bounds
from hybrid_asr.errors import ConfigError
from hybrid_asr.lang.fsa import fsa_from_arcs
from hybrid_asr.utils import JsonDataclass

History = Tuple[int, ...]
BOS = -1
"""Marker of the utterance start inside histories (never a label)."""
EOS = -2
"""The end-of-utterance "phone" (the final arc of the FSA)."""


@dataclass(frozen=True)
class PhoneLmConfig(JsonDataclass):
    """Settings of the denominator phone LM.

    Attributes:
        order: n of the phone n-gram (Kaldi's chain default is 4).
        full_order: histories of up to ``full_order - 1`` phones are all kept (Kaldi:
            ``no-prune-ngram-order`` 3).
        max_extra_states: longer histories kept, the most frequent first (Kaldi's
            ``num-extra-lm-states`` default is 2000).
    """

    json_what = "phone LM config"

    order: int = bounded(4, ge=1)
    full_order: int = bounded(3, ge=1)
    max_extra_states: int = bounded(2000, ge=0)

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.full_order > self.order:
            raise ConfigError(f"full_order must not exceed order, got {self.full_order} > {self.order}")


class PhoneLm:
    """An interpolated Witten-Bell phone n-gram estimated from phone sequences.

    Args:
        sequences: phone sequences (phones.txt ids > 0), one per utterance.
        vocabulary: every phone id the LM may predict (the topology's phones).
        config: order and state limits.

    Attributes:
        counts: ``history -> Counter(next phone or EOS)`` for every history length below the order.
        state_histories: after :meth:`to_fsa`, the history of every FSA state (state id order).

    Raises:
        ValueError: a sequence holds a phone that is not in ``vocabulary``, or there is no data.
    """

    def __init__(self, sequences: Iterable[Sequence[int]], vocabulary: Sequence[int], config: PhoneLmConfig = PhoneLmConfig()):
        self.config = config
        self.vocabulary = sorted(set(int(p) for p in vocabulary))
        self.predicted = self.vocabulary + [EOS]
        allowed = set(self.vocabulary)
        n = config.order
        self.counts: Dict[History, Counter] = defaultdict(Counter)  # history -> next -> count
        num = 0
        for seq in sequences:
            seq = [int(p) for p in seq]
            bad = [p for p in seq if p not in allowed]
            if bad:
                raise ValueError(f"phone id {bad[0]} is not in the LM's vocabulary")
            x = [BOS] + seq + [EOS]
            for i in range(1, len(x)):
                for k in range(0, n):  # history lengths 0 .. n-1
                    if i - k < 0:
                        break
                    self.counts[tuple(x[i - k : i])][x[i]] += 1
            num += 1
        if num == 0:
            raise ValueError("no phone sequences to estimate the phone LM from")
        self._cache: Dict[History, Dict[int, float]] = {}

    def prob(self, next_phone: int, history: History) -> float:
        """P(next | history), interpolated Witten-Bell (``EOS`` for the end of the utterance).

        Args:
            next_phone: a vocabulary phone id or :data:`EOS`.
            history: the preceding phones, oldest first, starting with :data:`BOS` at the
                utterance start; only the last ``order - 1`` are used.
        """
        return self.distribution(history)[next_phone]

    def distribution(self, history: History) -> Dict[int, float]:
        """P(. | history) over the vocabulary and :data:`EOS` (sums to one)."""
        keep = self.config.order - 1
        history = tuple(history)[-keep:] if keep else ()
        if history in self._cache:
            return self._cache[history]
        if history == ():
            lower = {w: 1.0 / len(self.predicted) for w in self.predicted}
        else:
            lower = self.distribution(history[1:])
        c = self.counts.get(history)
        if not c:
            out = lower
        else:
            total, types = sum(c.values()), len(c)
            out = {w: (c.get(w, 0) + types * lower[w]) / (total + types) for w in self.predicted}
        self._cache[history] = out
        return out

    def kept_histories(self) -> List[History]:
        """The histories that become FSA states (see the module docstring), shortest first."""
        n, full = self.config.order, self.config.full_order
        seen = [h for h in self.counts if len(h) <= n - 1]
        keep = {h for h in seen if len(h) <= full - 1}
        extra = sorted((h for h in seen if len(h) > full - 1), key=lambda h: (-sum(self.counts[h].values()), h))
        keep.update(extra[: self.config.max_extra_states])
        # a kept history needs its suffixes (where its successors back off to); they are seen too
        for h in list(keep):
            for k in range(1, len(h)):
                keep.add(h[k:])
        return sorted(keep, key=lambda h: (len(h), h))

    def to_fsa(self) -> k2.Fsa:
        """The LM as an epsilon-free k2 acceptor over phone ids.

        State 0 is the history ``(BOS,)``; each kept history is a state whose arcs carry every
        vocabulary phone with score ``log P(phone | history)`` (base e) to the longest kept
        suffix of ``history + phone``, and a final arc (label -1) with ``log P(EOS | history)``.
        Histories only reachable from the start are the ones that begin with BOS.

        Returns:
            k2 acceptor, ``labels`` = phones.txt ids (int32), arc-sorted.
        """
        kept = self.kept_histories()
        keep = set(kept)
        reachable: Dict[History, int] = {}
        order: List[History] = []
        start = (BOS,) if self.config.order > 1 else ()

        def state(h: History) -> int:
            while h not in keep:
                h = h[1:]
            if h not in reachable:
                reachable[h] = len(order)
                order.append(h)
            return reachable[h]

        state(start)
        arcs: List[Tuple[int, int, int, float]] = []
        finals: List[Tuple[int, float]] = []
        i = 0
        while i < len(order):
            h = order[i]
            dist = self.distribution(h)
            for p in self.vocabulary:
                if dist[p] > 0:
                    nxt = (h + (p,))[-(self.config.order - 1):] if self.config.order > 1 else ()
                    arcs.append((i, state(nxt), p, math.log(dist[p])))
            finals.append((i, math.log(dist[EOS])))
            i += 1
        final = len(order)
        fsa = fsa_from_arcs(arcs + [(s, final, -1, w) for s, w in finals], final)
        self.state_histories = order
        return fsa


def phone_sequences(marks: Iterable[torch.Tensor]) -> List[List[int]]:
    """Phone sequences from per-frame phone-start marks (``phones.npz`` of an alignment dir:
    the phone id on the first frame of every phone, 0 elsewhere)."""
    out = []
    for m in marks:
        m = torch.as_tensor(m)
        out.append([int(p) for p in m[m > 0]])
    return out


__all__ = ["BOS", "EOS", "PhoneLm", "PhoneLmConfig", "phone_sequences"]
