"""n-gram language model: Kneser-Ney estimation (kaldingram) and ARPA -> G (kaldilm)."""

import contextlib
import io
import logging
import math
import tempfile
from collections import Counter
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Union

import k2
import kaldilm

from hybrid_asr.errors import HybridAsrError
from hybrid_asr.utils import atomic_path, write_text_atomic

log = logging.getLogger(__name__)


def train_arpa(sentences: Iterable[str], out_arpa: Union[str, Path], order: int = 3,
               prune_threshold: float = 0.0) -> Dict[int, int]:
    """Estimate an interpolated-backoff Kneser-Ney n-gram LM and write it in ARPA format.

    Uses kaldingram's Python API (SRILM-equivalent ``ngram-count -ukndiscount``; Kneser & Ney
    1995, Chen & Goodman 1998) and, with ``prune_threshold > 0``, its entropy-based pruning
    (SRILM ``ngram -prune``; Stolcke 1998, "Entropy-based pruning of backoff language models"):
    n-grams of order >= 2 whose removal changes the model's relative entropy by less than the
    threshold are dropped and the back-off weights recomputed. Only pass training or domain
    text: never test text.

    Args:
        sentences: one sentence per item, words separated by spaces (no ``<s>``/``</s>``).
        out_arpa: ARPA file to write (atomically).
        order: n-gram order, 1..5.
        prune_threshold: relative-entropy threshold (e.g. 1e-8 .. 1e-6); 0 keeps every n-gram.

    Returns:
        n-gram counts per order of the written model, ``{1: ..., 2: ..., ...}``.

    Raises:
        HybridAsrError: no non-empty sentence, an order outside 1..5 or a negative threshold.
    """
    from kaldingram.prune import ArpaParser, prune
    from kaldingram.train import NgramCounts

    if not 1 <= order <= 5:
        raise HybridAsrError(f"LM order must be between 1 and 5, got {order}")
    if prune_threshold < 0:
        raise HybridAsrError(f"LM pruning threshold must be >= 0, got {prune_threshold}")
    counts = NgramCounts(order)
    num = 0
    for s in sentences:
        if s.strip():
            counts.add_raw_counts_from_line(s.strip())
            num += 1
    if not num:
        raise HybridAsrError(f"{out_arpa}: no training text for the language model")
    text = io.StringIO()
    with contextlib.redirect_stderr(io.StringIO()):  # its progress bars
        counts.cal_discounting_constants()
        counts.cal_f()
        counts.cal_bow()
        counts.print_as_arpa(fout=text)
    if prune_threshold > 0:
        with tempfile.TemporaryDirectory() as tmp_dir, contextlib.redirect_stderr(io.StringIO()):
            raw = Path(tmp_dir) / "lm.arpa"
            raw.write_text(text.getvalue(), encoding="utf-8")
            lm = ArpaParser().loadf(str(raw), encoding="utf-8")[0]
            prune(lm, prune_threshold, 2)
            text = io.StringIO()
            lm.write(text)
    write_text_atomic(out_arpa, text.getvalue())
    sizes = arpa_sizes(out_arpa)
    log.info("trained %d-gram LM on %d sentences -> %s (n-grams per order: %s)", order, num, out_arpa,
             ", ".join(f"{k}: {v}" for k, v in sorted(sizes.items())))
    return sizes


def arpa_sizes(arpa: Union[str, Path]) -> Dict[int, int]:
    """n-gram counts per order from the ``\\data\\`` header of an ARPA file (``ngram N=count``)."""
    sizes: Dict[int, int] = {}
    with open(arpa, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("ngram ") and "=" in line:
                n, count = line[6:].split("=")
                sizes[int(n)] = int(count)
            elif line.startswith("\\1-grams"):
                break
    return sizes


def lm_perplexity(arpa: Union[str, Path], sentences: Iterable[str]) -> Dict[str, float]:
    """Perplexity and out-of-vocabulary rate of an ARPA LM on held-out text, as SRILM's
    ``ngram -ppl`` computes them: OOV tokens are not scored and the context restarts after one;
    one ``</s>`` per sentence is scored and counted.

    Args:
        arpa: ARPA file (read with kaldingram's ARPA parser).
        sentences: one sentence per item.

    Returns:
        ``{"perplexity", "perplexity_without_eos", "sentences", "words", "oov_words", "oov_rate"}``
        (``oov_rate`` in % of the words; ``perplexity_without_eos`` divides by the words only).

    Raises:
        InputError: the ARPA file cannot be read.
    """
    scorer = ArpaScorer(arpa)
    logprob, scored, words, oov, num = 0.0, 0, 0, 0, 0
    for sentence in sentences:
        tokens = sentence.split()
        if not tokens:
            continue
        num += 1
        words += len(tokens)
        for lp in scorer.token_log10(tokens):
            if lp is None:
                oov += 1
            else:
                logprob += lp
                scored += 1
    in_vocab = scored - num
    return {"perplexity": 10.0 ** (-logprob / scored) if scored else float("inf"),
            "perplexity_without_eos": 10.0 ** (-logprob / in_vocab) if in_vocab else float("inf"),
            "sentences": num, "words": words, "oov_words": oov, "oov_rate": 100.0 * oov / max(words, 1)}


class ArpaScorer:
    """Log-probabilities under an ARPA LM (kaldingram's ARPA model), scored as SRILM does: a word
    the LM lacks is not scored and the context restarts after it; ``</s>`` ends every sentence.

    Args:
        arpa: ARPA file.
        unk: for :meth:`log_prob`: the word that out-of-vocabulary words are scored as, when the
            LM has it; otherwise an OOV word gets ``oov_log10``.
        oov_log10: log10 probability :meth:`log_prob` gives an OOV word the LM cannot score.

    Raises:
        InputError: the ARPA file cannot be read.
    """

    def __init__(self, arpa: Union[str, Path], unk: str = "<UNK>", oov_log10: float = -10.0):
        from kaldingram.prune import ArpaParser

        from hybrid_asr.errors import InputError

        with contextlib.redirect_stderr(io.StringIO()):  # its progress bars
            try:
                self.lm = ArpaParser().loadf(str(arpa), encoding="utf-8")[0]
            except (OSError, ValueError, IndexError, KeyError) as e:
                raise InputError(arpa, f"not a readable ARPA LM: {e}") from None
        self.order = self.lm.order()
        self.unk = unk if self.lm.contains_word(unk) else None
        self.oov_log10 = oov_log10

    def token_log10(self, words: Sequence[str]) -> List[Optional[float]]:
        """``log10 p(w | history)`` of every word and of the final ``</s>`` (``len(words) + 1``
        values); None for a word the LM lacks."""
        out: List[Optional[float]] = []
        history = ["<s>"]
        for w in list(words) + ["</s>"]:
            if w != "</s>" and not self.lm.contains_word(w):
                out.append(None)
                history = []
                continue
            out.append(self.lm.log_p_raw(tuple((history + [w])[-self.order:])))
            history.append(w)
        return out

    def log_prob(self, words: Sequence[str]) -> float:
        """``ln p(words </s> | <s>)`` (natural log, as the decoding graph's G scores), OOV words
        scored as ``unk`` or with ``oov_log10``."""
        if self.unk is not None:
            words = [w if self.lm.contains_word(w) else self.unk for w in words]
        return sum(self.oov_log10 if lp is None else lp for lp in self.token_log10(words)) * math.log(10.0)


def unseen_word_mass(sentences: Iterable[str]) -> float:
    """Good-Turing estimate of the probability that the next token is a word not seen in ``sentences``.

    The share of tokens that are singletons, N1 / N (Good 1953; Jurafsky & Martin, *Speech and
    Language Processing*, 3rd ed., section 3.5), with N1 at least 1 so that it is never 0 for
    non-empty text (and below 1 unless there is one token). 0.0 for empty text.
    """
    counts = Counter(w for s in sentences for w in s.split())
    total = sum(counts.values())
    return max(1, sum(1 for c in counts.values() if c == 1)) / (total + 1) if total else 0.0


def add_vocabulary(arpa: Union[str, Path], words: Sequence[str], unseen_mass: float) -> int:
    """Make words the LM text lacks recognisable: interpolate the unigrams with a uniform distribution.

    The new unigram distribution is ``(1 - m) p(w) + m / V`` over the V words of the LM and of
    ``words`` together (``<s>`` excluded), so a word of the lexicon that the LM text never showed
    gets probability ``m / V`` instead of none (the uniform lowest order of interpolated
    Kneser-Ney, Chen & Goodman 1998, section 3). Every back-off weight of order 2 and higher is
    then recomputed, lowest order first, so that each history's distribution sums to one again:
    ``bow(h) = (1 - sum_z p(z|h)) / (1 - sum_z p(z|h'))`` over the words z seen after h, with h'
    the history without its first word. Explicit n-gram probabilities of order >= 2 are kept.

    Args:
        arpa: ARPA file, rewritten in place (atomically).
        words: the vocabulary to cover (e.g. the lexicon's words).
        unseen_mass: m, in (0, 1); e.g. :func:`unseen_word_mass` of the training text.

    Returns:
        The number of words added.

    Raises:
        HybridAsrError: ``unseen_mass`` outside (0, 1).
    """
    from kaldingram.prune import ArpaParser  # its ARPA model: p(w|h) lookups with back-off, writing

    if not 0.0 < unseen_mass < 1.0:
        raise HybridAsrError(f"{arpa}: the unseen-word probability mass must be in (0, 1), got {unseen_mass}")
    with contextlib.redirect_stderr(io.StringIO()):  # its progress bars
        lm = ArpaParser().loadf(str(arpa), encoding="utf-8")[0]
    unigrams = lm._ngrams[0][()]
    new = sorted(set(words) - set(unigrams) - {"<s>"})
    if not new:
        return 0
    vocab = [w for w in unigrams if w != "<s>"] + new
    uniform = unseen_mass / len(vocab)
    for w in vocab:
        p = 10.0 ** unigrams[w] if w in unigrams else 0.0
        lm.add_entry((w,), math.log10((1.0 - unseen_mass) * p + uniform))  # keeps w's back-off weight
    # back-off weights (kaldingram's model has no public setter for them: its history tables), history length 1 first: a history's weight uses the (new) lower orders only
    for n in range(1, lm.order()):
        for h, following in lm._ngrams[n].items():
            if not following:
                continue
            seen = sum(10.0 ** p for p in following.values())
            lower = sum(10.0 ** lm.log_p_raw(h[1:] + (z,)) for z in following)
            if seen < 1.0 and lower < 1.0:
                lm._ngrams[n][h].log_bo = math.log10((1.0 - seen) / (1.0 - lower))
    lm.update_counts()
    with atomic_path(Path(arpa)) as tmp, open(tmp, "w", encoding="utf-8") as f, \
            contextlib.redirect_stderr(io.StringIO()):
        lm.write(f)
    return len(new)


def arpa_to_g(arpa: Union[str, Path], words_txt: Union[str, Path], order: int = -1) -> k2.Fsa:
    """Convert an ARPA LM to the grammar transducer G with kaldilm.

    Back-off arcs carry the disambiguation symbol ``#0`` on the input side and epsilon on the
    output; ``<s>``/``</s>`` become epsilon (Kaldi ``arpa2fst --disambig-symbol=#0``).

    Args:
        arpa: ARPA file.
        words_txt: word symbol table containing every LM word, ``#0``, ``<s>`` and ``</s>``.
        order: highest n-gram order to use, -1 for all.

    Returns:
        k2 transducer (labels and aux_labels = word ids), scores in log base e.
    """
    text = kaldilm.arpa2fst(
        str(arpa), disambig_symbol="#0", read_symbol_table=str(words_txt), max_order=order
    )
    return k2.Fsa.from_openfst(text, acceptor=False)
