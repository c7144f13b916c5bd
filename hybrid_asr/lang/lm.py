"""n-gram language model: Kneser-Ney estimation (kaldingram) and ARPA -> G (kaldilm)."""

import contextlib
import io
import logging
import math
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence, Union

import k2
import kaldilm

from hybrid_asr.errors import HybridAsrError
from hybrid_asr.utils import atomic_path, write_text_atomic

log = logging.getLogger(__name__)


def train_arpa(sentences: Iterable[str], out_arpa: Union[str, Path], order: int = 3) -> None:
    """Estimate an interpolated-backoff Kneser-Ney n-gram LM and write it in ARPA format.

    Uses kaldingram (SRILM-equivalent ``ngram-count -ukndiscount``; Kneser & Ney 1995, Chen &
    Goodman 1998). Only pass training transcripts: never test text.

    Args:
        sentences: one transcript per item, words separated by spaces (no ``<s>``/``</s>``).
        out_arpa: ARPA file to write (atomically).
        order: n-gram order, 1..5.

    Raises:
        HybridAsrError: no non-empty sentence, or an order outside 1..5.
    """
    from kaldingram import train as kn

    if not 1 <= order <= 5:
        raise HybridAsrError(f"LM order must be between 1 and 5, got {order}")
    lines = [s.strip() for s in sentences if s.strip()]
    if not lines:
        raise HybridAsrError(f"{out_arpa}: no training text for the language model")
    out_arpa = Path(out_arpa)
    text_file = out_arpa.with_suffix(".train.txt")
    write_text_atomic(text_file, "\n".join(lines) + "\n")
    with atomic_path(out_arpa) as tmp, contextlib.redirect_stderr(io.StringIO()):  # its progress bars
        try:
            kn.main(["--ngram-order", str(order), "--text", str(text_file), "--lm", str(tmp)])
        except SystemExit as e:  # its argparse rejected something: never exit the caller's process
            raise HybridAsrError(f"{out_arpa}: kaldingram refused the LM options (exit {e.code})") from None
    log.info("trained %d-gram LM on %d sentences -> %s", order, len(lines), out_arpa)


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
