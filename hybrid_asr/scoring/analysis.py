"""What a WER report adds to the totals: confusion pairs, a JSON summary, text normalisation,
and the comparison of two systems with a bootstrap confidence interval."""

import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from hybrid_asr.scoring.wer import EPS, WerResult


def confusions(result: WerResult) -> Dict[str, Counter]:
    """Counts of substitution pairs ``(ref, hyp)``, inserted words and deleted words."""
    subs, ins, dels = Counter(), Counter(), Counter()
    for u in result.utts:
        for r, h in u.alignment:
            if r == EPS:
                ins[h] += 1
            elif h == EPS:
                dels[r] += 1
            elif r != h:
                subs[(r, h)] += 1
    return {"substitutions": subs, "insertions": ins, "deletions": dels}


def format_confusions(result: WerResult, top: int = 10) -> List[str]:
    """Report lines: the ``top`` most frequent substitutions, insertions and deletions."""
    c = confusions(result)
    lines = [f"Most frequent substitutions (up to {top}): ref -> hyp  count"]
    lines += [f"  {r} -> {h}  {n}" for (r, h), n in c["substitutions"].most_common(top)] or ["  (none)"]
    for kind in ("insertions", "deletions"):
        lines.append(f"Most frequent {kind} (up to {top}): word  count")
        lines += [f"  {w}  {n}" for w, n in c[kind].most_common(top)] or ["  (none)"]
    return lines


def summary_dict(result: WerResult, breakdowns: Optional[Mapping[str, Mapping[str, str]]] = None,
                 top: int = 10) -> dict:
    """The machine-readable summary written next to a report (``<name>.json``)."""
    c = confusions(result)
    out = {"wer": result.wer, "ser": result.ser, "words": result.words, "errors": result.errors,
           "substitutions": result.substitutions, "deletions": result.deletions, "insertions": result.insertions,
           "sentences": result.sentences, "sentence_errors": result.sentence_errors,
           "top_substitutions": [[r, h, n] for (r, h), n in c["substitutions"].most_common(top)],
           "top_insertions": c["insertions"].most_common(top), "top_deletions": c["deletions"].most_common(top)}
    for title, utt2key in (breakdowns or {}).items():
        out[f"by_{title}"] = {k: {"wer": r.wer, "errors": r.errors, "words": r.words, "ser": r.ser}
                              for k, r in result.breakdown(utt2key).items()}
    return json.loads(json.dumps(out))


@dataclass(frozen=True)
class TextNormalizer:
    """Rules applied the same way to references and hypotheses before scoring.

    Attributes:
        case: ``"upper"``, ``"lower"`` or ``""`` (keep).
        strip_punctuation: remove characters that are neither letters, digits nor apostrophes
            (a word made only of them disappears).
        drop_words: words removed after the other rules (e.g. fillers ``UH UM <NOISE>``), compared
            after case folding.
    """

    case: str = ""
    strip_punctuation: bool = False
    drop_words: Tuple[str, ...] = ()

    def __call__(self, words: Sequence[str]) -> List[str]:
        out = []
        drop = {self._case(w) for w in self.drop_words}
        for w in words:
            w = self._case(w)
            if self.strip_punctuation:
                w = re.sub(r"[^\w']", "", w)
            if w and w not in drop:
                out.append(w)
        return out

    def _case(self, w: str) -> str:
        return w.upper() if self.case == "upper" else w.lower() if self.case == "lower" else w

    def apply(self, texts: Mapping[str, Sequence[str]]) -> Dict[str, List[str]]:
        return {u: self(ws) for u, ws in texts.items()}


@dataclass
class Comparison:
    """Two systems scored on the same references.

    Attributes:
        a, b: the two results.
        better, worse: utterance ids with fewer / more errors in ``b`` than in ``a``.
        difference: WER(b) - WER(a), points.
        interval: 95% bootstrap confidence interval of the difference (points).
        p_b_better: share of bootstrap resamples in which b has the lower WER.
    """

    a: WerResult
    b: WerResult
    better: List[str]
    worse: List[str]
    difference: float
    interval: Tuple[float, float]
    p_b_better: float

    @property
    def significant(self) -> bool:
        """The 95% interval excludes 0."""
        return self.interval[0] > 0 or self.interval[1] < 0


def compare(a: WerResult, b: WerResult, resamples: int = 2000, seed: int = 0) -> Comparison:
    """Compare two results on the same utterances, with the utterance-level bootstrap of Bisani
    & Ney 2004 ("Bootstrap estimates for confidence intervals in ASR performance evaluation"):
    utterances are drawn with replacement ``resamples`` times and the WER difference recomputed.

    Raises:
        ValueError: the two results are not on the same utterances.
    """
    ids_a, ids_b = [u.utt_id for u in a.utts], [u.utt_id for u in b.utts]
    if ids_a != ids_b:
        raise ValueError("the two systems were not scored on the same utterances")
    err_a = np.array([u.errors for u in a.utts], dtype=np.float64)
    err_b = np.array([u.errors for u in b.utts], dtype=np.float64)
    words = np.array([u.ref_words for u in a.utts], dtype=np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(words), size=(resamples, len(words)))
    n = np.maximum(words[idx].sum(axis=1), 1)
    diffs = 100.0 * (err_b[idx].sum(axis=1) - err_a[idx].sum(axis=1)) / n
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    better = [i for i, x, y in zip(ids_a, err_a, err_b) if y < x]
    worse = [i for i, x, y in zip(ids_a, err_a, err_b) if y > x]
    return Comparison(a, b, better, worse, b.wer - a.wer, (float(lo), float(hi)), float(np.mean(diffs < 0)))


def format_comparison(c: Comparison, name_a: str = "A", name_b: str = "B", top: int = 10) -> List[str]:
    """Report lines of a :class:`Comparison`."""
    lines = [f"{name_a}: %WER {c.a.wer:.2f} [ {c.a.errors} / {c.a.words} ]",
             f"{name_b}: %WER {c.b.wer:.2f} [ {c.b.errors} / {c.b.words} ]",
             f"difference {name_b} - {name_a}: {c.difference:+.2f} points, 95% bootstrap interval "
             f"[{c.interval[0]:+.2f}, {c.interval[1]:+.2f}]; {name_b} better in {100 * c.p_b_better:.1f}% of resamples",
             "the difference is significant at 95%" if c.significant else
             f"not significant: the interval contains 0 ({c.a.words} reference words)",
             f"utterances better in {name_b}: {len(c.better)}, worse: {len(c.worse)}, "
             f"same: {c.a.sentences - len(c.better) - len(c.worse)}"]
    by_id_a = {u.utt_id: u for u in c.a.utts}
    by_id_b = {u.utt_id: u for u in c.b.utts}
    for title, ids in (("better", c.better), ("worse", c.worse)):
        ranked = sorted(ids, key=lambda i: -abs(by_id_a[i].errors - by_id_b[i].errors))[:top]
        if ranked:
            lines.append(f"most {title} in {name_b} (errors {name_a} -> {name_b}):")
            lines += [f"  {i}  {by_id_a[i].errors} -> {by_id_b[i].errors}  HYP {name_b}: {' '.join(by_id_b[i].hyp)}"
                      for i in ranked]
    return lines
