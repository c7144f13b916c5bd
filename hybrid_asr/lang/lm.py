"""n-gram language model: Kneser-Ney estimation (kaldingram) and ARPA -> G (kaldilm)."""

import contextlib
import io
import logging
import math
import re
import tempfile
from collections import Counter
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import k2
import kaldilm

from hybrid_asr.errors import HybridAsrError, InputError
from hybrid_asr.lang.config import MAX_LM_ORDER
from hybrid_asr.text_files import read_text_lines
from hybrid_asr.utils import atomic_path, write_text_atomic

log = logging.getLogger(__name__)



def drop_sentence_boundaries(sentences: Iterable[str]) -> List[str]:
    """The sentences with whitespace normalized and without ``<s>``/``</s>`` tokens, which the LM
    adds itself (one warning gives their number).

    Args:
        sentences: one sentence per item.

    Returns:
        The sentences, words separated by single spaces (an item may become empty).
    """
    out, dropped = [], 0
    for s in sentences:
        words = s.split()
        kept = [w for w in words if w not in ("<s>", "</s>")]
        dropped += len(words) - len(kept)
        out.append(" ".join(kept))
    if dropped:
        log.warning("dropped %d <s>/</s> tokens from the LM text: the LM adds the sentence boundaries itself", dropped)
    return out


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
        sentences: one sentence per item, words separated by whitespace; ``<s>``/``</s>`` tokens
            are dropped (:func:`drop_sentence_boundaries`).
        out_arpa: ARPA file to write (atomically).
        order: n-gram order, 1..:data:`MAX_LM_ORDER`.
        prune_threshold: relative-entropy threshold (e.g. 1e-8 .. 1e-6); 0 keeps every n-gram.

    Returns:
        n-gram counts per order of the written model, ``{1: ..., 2: ..., ...}``.

    Raises:
        HybridAsrError: no non-empty sentence, an order outside 1..:data:`MAX_LM_ORDER` or a
            negative threshold (checked before any work); kaldingram failed (its message).
    """
    from kaldingram.prune import ArpaParser, prune
    from kaldingram.train import NgramCounts

    if isinstance(order, bool) or not isinstance(order, int) or not 1 <= order <= MAX_LM_ORDER:
        raise HybridAsrError(f"LM order must be between 1 and {MAX_LM_ORDER}, got {order}")
    if not prune_threshold >= 0:
        raise HybridAsrError(f"LM pruning threshold must be >= 0, got {prune_threshold}")
    # kaldingram splits words at spaces and tabs only, and adds <s> and </s> itself
    lines = [s for s in drop_sentence_boundaries(sentences) if s]
    if not lines:
        raise HybridAsrError(f"{out_arpa}: no training text for the language model")
    text = io.StringIO()
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # its progress bars
            counts = NgramCounts(order)
            for s in lines:
                counts.add_raw_counts_from_line(s)
            counts.cal_discounting_constants()
            counts.cal_f()
            counts.cal_bow()
            counts.print_as_arpa(fout=text)
        if prune_threshold > 0:
            with contextlib.redirect_stderr(io.StringIO()):
                lm = ArpaParser().load(io.StringIO(text.getvalue()))[0]
                prune(lm, prune_threshold, 2)
                text = io.StringIO()
                lm.write(text)
    except SystemExit as e:  # an argparse-style exit inside kaldingram: never let it end the program
        raise HybridAsrError(f"{out_arpa}: kaldingram stopped (exit status {e.code}) while estimating the "
                             f"{order}-gram LM") from None
    write_text_atomic(out_arpa, text.getvalue())
    sizes = arpa_sizes(out_arpa)
    log.info("trained %d-gram LM on %d sentences -> %s (n-grams per order: %s)", order, len(lines), out_arpa,
             ", ".join(f"{k}: {v}" for k, v in sorted(sizes.items())))
    return sizes


_COUNT = re.compile(r"ngram\s+(\d+)\s*=\s*(\d+)", re.ASCII)
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", re.ASCII)
_KALDINGRAM_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE]-?\d+)?", re.ASCII)  # what kaldingram's ARPA parser reads
_MAX_LOG10 = 1000.0  # |log10 p| and |log10 back-off| above this are not probabilities of any use
_ARPA_RESERVED = frozenset({"<eps>", "#0"})  # kaldilm aborts on them (epsilon, back-off symbol)


class _ArpaReader:
    r"""One validating pass over an ARPA file that yields it in a canonical layout.

    The layout is what both kaldingram's parser (tab-separated entries, a blank line before every
    section) and kaldilm's parser read::

        \data\
        ngram 1=<count>
        ...
        <blank>
        \1-grams:
        <log10 p>\t<w1>\t<log10 back-off>
        ...
        <blank>
        \end\

    The checks are those under which the two parsers do not fail or differ (kaldilm aborts the
    process on a malformed line, kaldingram raises a bare Exception): see :func:`validate_arpa`.
    """

    def __init__(self, path: Union[str, Path]):
        self.path = Path(path)
        self.counts: Dict[int, int] = {}
        self.missing_prefixes = 0
        self.unigrams: List[str] = []

    def _error(self, problem: str, line: Optional[int]) -> InputError:
        return InputError(self.path, problem, line)

    def _number(self, field: str, number: int, what: str) -> str:
        if _NUMBER.fullmatch(field):
            value = float(field)
            if abs(value) <= _MAX_LOG10:
                return field if _KALDINGRAM_NUMBER.fullmatch(field) else repr(value).replace("e+", "e")
        raise self._error(f"{what} {field!r} is not a number between -{_MAX_LOG10:g} and {_MAX_LOG10:g}", number)

    def lines(self) -> Iterator[str]:
        """Yield the canonical lines (each ending in a newline) while checking the file.

        Raises:
            InputError: on the first problem, naming the line.
        """
        lines = read_text_lines(self.path)
        number = 0
        for number, line in lines:
            if line.strip() == "\\data\\":
                break
        else:
            raise self._error("no \\data\\ line: not an ARPA language model", None)
        yield "\\data\\\n"
        count_line: Dict[int, int] = {}
        header: Optional[Tuple[int, str]] = None
        for number, line in lines:
            line = line.strip()
            if not line:
                continue
            m = _COUNT.fullmatch(line)
            if m is None:
                header = (number, line)
                break
            order, count = int(m.group(1)), int(m.group(2))
            if order != len(self.counts) + 1:
                raise self._error(f"expected 'ngram {len(self.counts) + 1}=<count>', got '{line}'", number)
            self.counts[order], count_line[order] = count, number
            yield f"ngram {order}={count}\n"
        if not self.counts:
            raise self._error("the \\data\\ section has no 'ngram N=<count>' line", header[0] if header else number)
        if header is None:
            raise self._error("the file ends in the \\data\\ section (no n-gram sections, no \\end\\)", number)
        highest = len(self.counts)
        seen: Dict[Tuple[str, ...], int] = {}
        for order in range(1, highest + 1):
            if header[1] != f"\\{order}-grams:":
                raise self._error(f"expected '\\{order}-grams:', got '{header[1]}'", header[0])
            yield "\n"
            yield f"\\{order}-grams:\n"
            entries, header = 0, None
            for number, line in lines:
                fields = line.split()
                if not fields:
                    continue
                if fields[0].startswith("\\"):
                    header = (number, line.strip())
                    break
                yield self._entry(fields, order, highest, number, seen)
                entries += 1
                if entries > self.counts[order]:
                    raise self._error(f"more {order}-grams than the {self.counts[order]} that the \\data\\ section "
                                      f"declares (line {count_line[order]})", number)
            if entries != self.counts[order]:
                raise self._error(f"the \\data\\ section declares {self.counts[order]} {order}-grams (line "
                                  f"{count_line[order]}) but the section has {entries}",
                                  header[0] if header else number)
            if order == 1:
                for word in ("<s>", "</s>"):
                    if (word,) not in seen:
                        raise self._error(f"the 1-grams lack {word}", header[0] if header else number)
            if header is None:
                raise self._error(f"missing \\end\\ (the file ends in the {order}-grams section)", number)
        if header[1] != "\\end\\":
            raise self._error(f"expected '\\end\\' after the {highest}-grams, got '{header[1]}'", header[0])
        yield "\n"
        yield "\\end\\\n"

    def _entry(self, fields: List[str], order: int, highest: int, number: int,
               seen: Dict[Tuple[str, ...], int]) -> str:
        if len(fields) == order + 2 and order == highest:
            raise self._error(f"a {order}-gram of the highest order cannot have a back-off weight", number)
        if len(fields) not in (order + 1, order + 2):
            raise self._error(f"expected a log10 probability, {order} word{'s' if order > 1 else ''} and an "
                              f"optional back-off weight, got {len(fields)} fields", number)
        prob = self._number(fields[0], number, "log10 probability")
        words = tuple(fields[1:order + 1])
        for w in words:
            if w in _ARPA_RESERVED:
                raise self._error(f"{w} is a reserved symbol and cannot be an LM word", number)
            if order > 1 and (w,) not in seen:
                raise self._error(f"word {w} of this {order}-gram is not among the 1-grams", number)
        if order == 1 and words not in seen:
            self.unigrams.append(words[0])
        if words in seen:
            raise self._error(f"duplicate {order}-gram '{' '.join(words)}' (first on line {seen[words]})", number)
        if order > 1 and words[:-1] not in seen:
            self.missing_prefixes += 1
        seen[words] = number
        entry = f"{prob}\t{' '.join(words)}"
        if len(fields) == order + 2:
            entry += "\t" + self._number(fields[-1], number, "log10 back-off weight")
        return entry + "\n"


def validate_arpa(arpa: Union[str, Path]) -> Dict[int, int]:
    """Check an ARPA language model file in one pass, before kaldingram or kaldilm parse it.

    Checks (what kaldilm, Kaldi's ``arpa2fst`` parser, requires, and what kaldingram's model needs
    to score every word): UTF-8; a ``\\data\\`` line (lines before it are ignored, as comments)
    followed by ``ngram 1=<count>``, ``ngram 2=<count>``, ... in order; then the sections
    ``\\1-grams:``, ``\\2-grams:``, ... in order, each with exactly the declared number of entries
    ``<log10 p> <w1> ... <wn> [<log10 back-off>]`` (no back-off weight at the highest order; numbers
    finite and between -1000 and 1000); every word of a longer n-gram is a 1-gram; ``<s>`` and
    ``</s>`` are 1-grams; no n-gram twice; no ``<eps>`` or ``#0`` word; then ``\\end\\``
    (anything after it is ignored). Fields may be separated by any whitespace, and Windows line
    endings are accepted. An n-gram whose (n-1)-word prefix is not an n-gram is allowed (a warning
    counts them: kaldilm leaves them out of G).

    Args:
        arpa: ARPA file (``.gz`` is decompressed).

    Returns:
        The n-gram counts per order, ``{1: ..., 2: ..., ...}``.

    Raises:
        InputError: on the first problem, naming the file and line.
    """
    reader = _ArpaReader(arpa)
    for _ in reader.lines():
        pass
    if reader.missing_prefixes:
        log.warning("%s: %d n-grams have no (n-1)-gram prefix; the grammar G built from it leaves them out",
                    arpa, reader.missing_prefixes)
    return dict(reader.counts)


def import_arpa(arpa: Union[str, Path], out_arpa: Union[str, Path]) -> Tuple[Dict[int, int], List[str]]:
    """Copy a given ARPA LM (e.g. LibriSpeech's published ones) into a lang dir, checked as
    :func:`validate_arpa` checks it and written in the canonical layout, atomically.

    Args:
        arpa: the ARPA file (``.gz`` is decompressed).
        out_arpa: where to write it.

    Returns:
        ``(n-gram counts per order, its words)``, the words without ``<s>`` and ``</s>``.

    Raises:
        InputError: see :func:`validate_arpa`.
    """
    reader = _ArpaReader(arpa)
    with atomic_path(out_arpa) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.writelines(reader.lines())
    if reader.missing_prefixes:
        log.warning("%s: %d n-grams have no (n-1)-gram prefix; the grammar G built from it leaves them out",
                    arpa, reader.missing_prefixes)
    return dict(reader.counts), [w for w in reader.unigrams if w not in ("<s>", "</s>")]


def arpa_sizes(arpa: Union[str, Path]) -> Dict[int, int]:
    """n-gram counts per order of an ARPA file (its ``\\data\\`` header, checked against the
    n-gram sections by :func:`validate_arpa`).

    Raises:
        InputError: the file is not a well-formed ARPA LM (file and line named).
    """
    return validate_arpa(arpa)


def _load_kaldingram(arpa: Union[str, Path]):
    """kaldingram's ARPA model of a file, validated while it is read.

    Raises:
        InputError: the file fails :func:`validate_arpa`'s checks (or, defensively, kaldingram's).
    """
    from kaldingram.prune import ArpaParser

    with contextlib.redirect_stderr(io.StringIO()):  # its progress bars
        try:
            return ArpaParser().load(_ArpaReader(arpa).lines())[0]
        except InputError:
            raise
        except Exception as e:  # noqa: BLE001 - kaldingram raises bare Exception(line) on parse errors
            raise InputError(arpa, f"not a readable ARPA LM: {type(e).__name__} {e}") from None


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
        InputError: the ARPA file cannot be read or is malformed (see :func:`validate_arpa`).
    """

    def __init__(self, arpa: Union[str, Path], unk: str = "<UNK>", oov_log10: float = -10.0):
        self.lm = _load_kaldingram(arpa)
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
        InputError: the ARPA file is malformed (see :func:`validate_arpa`), or its back-off
            weights are too large to renormalise.
    """
    if not 0.0 < unseen_mass < 1.0:
        raise HybridAsrError(f"{arpa}: the unseen-word probability mass must be in (0, 1), got {unseen_mass}")
    lm = _load_kaldingram(arpa)  # kaldingram's ARPA model: p(w|h) lookups with back-off, writing
    try:
        added = _interpolate_unigrams(lm, words, unseen_mass)
    except OverflowError:
        raise InputError(arpa, "back-off weights too large to renormalise (10^weight overflows)") from None
    if added:
        with atomic_path(Path(arpa)) as tmp, open(tmp, "w", encoding="utf-8") as f, \
                contextlib.redirect_stderr(io.StringIO()):
            lm.write(f)
    return added


def _interpolate_unigrams(lm, words: Sequence[str], unseen_mass: float) -> int:
    """The computation of :func:`add_vocabulary` on kaldingram's model ``lm``, in place."""
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

    Raises:
        InputError: the ARPA file fails :func:`validate_arpa`, or ``words_txt`` is missing,
            malformed or lacks ``#0``, ``<s>`` or ``</s>`` (kaldilm would abort the process).
        HybridAsrError: ``order`` is neither -1 nor >= 1.
    """
    if isinstance(order, bool) or not isinstance(order, int) or not (order == -1 or order >= 1):
        raise HybridAsrError(f"the LM order to use must be -1 (all) or >= 1, got {order}")
    _check_word_table(Path(words_txt))
    with tempfile.TemporaryDirectory() as tmp:
        # kaldilm reads exactly what was validated (Windows line endings, spacing and a BOM normalized)
        canonical = Path(tmp) / "lm.arpa"
        with open(canonical, "w", encoding="utf-8") as f:
            f.writelines(_ArpaReader(arpa).lines())
        text = kaldilm.arpa2fst(
            str(canonical), disambig_symbol="#0", read_symbol_table=str(words_txt), max_order=order
        )
    return k2.Fsa.from_openfst(text, acceptor=False)


def _check_word_table(words_txt: Path) -> None:
    """Check a symbol table as kaldilm needs it (``<symbol> <id>`` lines; ``#0``, ``<s>``, ``</s>``)."""
    symbols = set()
    for number, line in read_text_lines(words_txt):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or re.fullmatch("[0-9]+", fields[1]) is None:
            raise InputError(words_txt, "expected '<symbol> <integer id>'", number)
        symbols.add(fields[0])
    missing = [s for s in ("#0", "<s>", "</s>") if s not in symbols]
    if missing:
        raise InputError(words_txt, f"word table lacks {', '.join(missing)}")
