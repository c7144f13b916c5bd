"""Word error rate: reading and writing Kaldi ``text`` files and scoring (the report files:
:mod:`hybrid_asr.scoring.report`).

Alignments come from :func:`kaldialign.align` (Levenshtein with unit costs, as Kaldi's
``compute-wer``); ``"*"`` marks the gap side of an insertion or deletion. The counts are derived
from that alignment and agree with :func:`kaldialign.edit_distance`.
"""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import kaldialign

from hybrid_asr.errors import HybridAsrError, InputError
from hybrid_asr.text_files import read_clean_lines
from hybrid_asr.utils import write_text_atomic

logger = logging.getLogger(__name__)

#: Gap symbol in :attr:`UttScore.alignment`; a transcript may not contain it as a word.
EPS = "*"
#: How a gap is shown in the ``*_details.txt`` report (as sclite does).
GAP_DISPLAY = "***"


class ScoringError(HybridAsrError):
    """Hypotheses and references do not fit together (e.g. a hypothesis for an unknown id)."""


@dataclass(frozen=True)
class UttScore:
    """The scored alignment of one utterance.

    Attributes:
        utt_id: utterance id.
        ref: reference words.
        hyp: hypothesis words.
        alignment: ``kaldialign.align(ref, hyp, "*")`` pairs ``(ref_word, hyp_word)``; ``"*"`` as
            ref word is an insertion, as hyp word a deletion, differing words a substitution.
        substitutions, deletions, insertions: error counts taken from ``alignment``.
    """

    utt_id: str
    ref: List[str]
    hyp: List[str]
    alignment: List[Tuple[str, str]]
    substitutions: int
    deletions: int
    insertions: int

    @property
    def errors(self) -> int:
        """Total errors S + D + I."""
        return self.substitutions + self.deletions + self.insertions

    @property
    def ref_words(self) -> int:
        """Number of reference words."""
        return len(self.ref)

    @property
    def correct(self) -> int:
        """Number of reference words recognised correctly."""
        return len(self.ref) - self.substitutions - self.deletions


@dataclass(frozen=True)
class WerResult:
    """Corpus-level scores plus the per-utterance details.

    Attributes:
        utts: per-utterance scores, sorted by utterance id.
        words: total reference words N.
        substitutions, deletions, insertions: total error counts.
        sentences: number of scored utterances.
        sentence_errors: utterances with at least one error.
    """

    utts: List[UttScore]
    words: int
    substitutions: int
    deletions: int
    insertions: int
    sentences: int
    sentence_errors: int

    @classmethod
    def from_utts(cls, utts: Sequence[UttScore]) -> "WerResult":
        """Sum the counts of ``utts`` (kept in the given order) into a result."""
        utts = list(utts)
        return cls(
            utts=utts,
            words=sum(u.ref_words for u in utts),
            substitutions=sum(u.substitutions for u in utts),
            deletions=sum(u.deletions for u in utts),
            insertions=sum(u.insertions for u in utts),
            sentences=len(utts),
            sentence_errors=sum(1 for u in utts if u.errors > 0),
        )

    @property
    def errors(self) -> int:
        """Total errors S + D + I."""
        return self.substitutions + self.deletions + self.insertions

    @property
    def wer(self) -> float:
        """Word error rate in percent: 100 * (S + D + I) / N.

        With no reference words it is 0.0 when there are no errors and ``inf`` otherwise.
        """
        if self.words == 0:
            return 0.0 if self.errors == 0 else float("inf")
        return 100.0 * self.errors / self.words

    @property
    def ser(self) -> float:
        """Sentence error rate in percent (0.0 when there are no sentences)."""
        if self.sentences == 0:
            return 0.0
        return 100.0 * self.sentence_errors / self.sentences

    def breakdown(self, utt2key: Mapping[str, str], missing: Optional[str] = None) -> Dict[str, "WerResult"]:
        """Split the scores by a property of the utterance (speaker, group of speakers, ...).

        Args:
            utt2key: utterance id -> key (e.g. its speaker).
            missing: key of utterances that ``utt2key`` lacks (default :data:`UNKNOWN_GROUP`).

        Returns:
            ``{key: WerResult of its utterances}``, keys sorted.
        """
        missing = UNKNOWN_GROUP if missing is None else missing
        parts: Dict[str, List[UttScore]] = {}
        for u in self.utts:
            parts.setdefault(utt2key.get(u.utt_id, missing), []).append(u)
        return {k: WerResult.from_utts(parts[k]) for k in sorted(parts)}

    def summary(self) -> str:
        """Kaldi ``compute-wer`` style two-line summary, without a trailing newline::

            %WER 12.34 [ 95 / 773, 10 ins, 20 del, 65 sub ]
            %SER 30.00 [ 39 / 130 ]
        """
        return (
            f"%WER {self.wer:.2f} [ {self.errors} / {self.words}, {self.insertions} ins, "
            f"{self.deletions} del, {self.substitutions} sub ]\n"
            f"%SER {self.ser:.2f} [ {self.sentence_errors} / {self.sentences} ]"
        )


def read_transcripts(path: Union[str, Path]) -> Dict[str, List[str]]:
    """Read a Kaldi ``text`` file: one ``<utt-id> word word ...`` per line.

    Args:
        path: the file (UTF-8). Words are separated by any whitespace; an id with no words is an
            empty transcript. Lines are cleaned by :func:`hybrid_asr.text_files.clean_transcript`
            (a byte-order mark and Windows line endings dropped, invisible characters such as
            U+200B removed with a warning), so that reference and hypothesis words compare equal.

    Returns:
        utterance id -> list of words, in file order.

    Raises:
        InputError: the file cannot be read, a line is not UTF-8 or is empty, or an id repeats
            (the message names the line).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "transcript file does not exist")
    transcripts: Dict[str, List[str]] = {}
    first_line: Dict[str, int] = {}
    for lineno, line in read_clean_lines(path):
        fields = line.split()
        if not fields:
            raise InputError(path, "empty line; expected '<utt-id> [word ...]'", lineno)
        utt_id, words = fields[0], fields[1:]
        if utt_id in transcripts:
            raise InputError(
                path, f"duplicate utterance id '{utt_id}' (first on line {first_line[utt_id]})", lineno
            )
        transcripts[utt_id] = words
        first_line[utt_id] = lineno
    return transcripts


def write_transcripts(path: Union[str, Path], transcripts: Mapping[str, Sequence[str]]) -> None:
    """Write ``transcripts`` as a Kaldi ``text`` file, sorted by id, atomically.

    Args:
        path: destination file; parent directories are created.
        transcripts: utterance id -> words. An empty word list gives a line with the id alone.

    Raises:
        ValueError: an id or word is empty or contains whitespace (it would not read back), or a
            transcript is a plain string instead of a sequence of words.
    """
    lines = []
    for utt_id in sorted(transcripts):
        words = _as_words(utt_id, transcripts[utt_id])
        for token in [utt_id, *words]:
            if token.split() != [token]:
                raise ValueError(f"utterance '{utt_id}': token {token!r} is empty or has whitespace")
        lines.append(" ".join([utt_id, *words]) + "\n")
    write_text_atomic(path, "".join(lines))


def _as_words(utt_id: str, words: Sequence[str]) -> List[str]:
    """Return ``words`` as a list, refusing a bare string (which would score per character)."""
    if isinstance(words, str):
        raise TypeError(f"utterance '{utt_id}': transcript must be a sequence of words, not a str")
    return list(words)


def score_utterance(utt_id: str, ref: Sequence[str], hyp: Sequence[str]) -> UttScore:
    """Align one hypothesis against its reference with :func:`kaldialign.align`.

    Raises:
        ScoringError: a word equals the gap symbol ``"*"``, which would make the alignment ambiguous.
    """
    ref, hyp = _as_words(utt_id, ref), _as_words(utt_id, hyp)
    for side, words in (("reference", ref), ("hypothesis", hyp)):
        if EPS in words:
            raise ScoringError(f"utterance '{utt_id}': {side} contains the reserved word '{EPS}'")
    alignment = [(r, h) for r, h in kaldialign.align(ref, hyp, EPS)]
    ins = sum(1 for r, _ in alignment if r == EPS)
    dels = sum(1 for _, h in alignment if h == EPS)
    subs = sum(1 for r, h in alignment if r != h and EPS not in (r, h))
    return UttScore(utt_id, ref, hyp, alignment, subs, dels, ins)


def score(refs: Mapping[str, Sequence[str]], hyps: Mapping[str, Sequence[str]]) -> WerResult:
    """Score hypotheses against references.

    Args:
        refs: utterance id -> reference words. Every reference is scored.
        hyps: utterance id -> hypothesis words. A reference id missing here is scored as an empty
            hypothesis (all deletions) and reported with a warning.

    Returns:
        A :class:`WerResult` whose ``utts`` are sorted by id.

    Raises:
        ScoringError: ``hyps`` has an id that ``refs`` lacks, or a word is the reserved ``"*"``.
    """
    extra = sorted(set(hyps) - set(refs))
    if extra:
        more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
        raise ScoringError(f"hypothesis for utterance '{extra[0]}'{more} has no reference")
    missing = sorted(set(refs) - set(hyps))
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        logger.warning(
            "%d of %d utterances have no hypothesis and count as all deletions: %s",
            len(missing), len(refs), shown,
        )
    utts = [score_utterance(u, refs[u], hyps.get(u, ())) for u in sorted(refs)]
    result = WerResult.from_utts(utts)
    logger.debug("scored %d utterances: %s", result.sentences, result.summary().replace("\n", "; "))
    return result


def score_files(ref_path: Union[str, Path], hyp_path: Union[str, Path],
                normalize: Optional[Callable[[Mapping[str, Sequence[str]]], Mapping[str, Sequence[str]]]] = None
                ) -> WerResult:
    """Score a Kaldi ``text`` file of hypotheses against one of references (:func:`score`), with
    errors that name the file at fault.

    Args:
        ref_path: references, ``<utt-id> words...`` per line.
        hyp_path: hypotheses, the same format.
        normalize: applied to both sides after reading (e.g. ``TextNormalizer.apply``).

    Returns:
        the :class:`WerResult` of every reference.

    Raises:
        InputError: either file is unreadable (:func:`read_transcripts`), holds no utterances
            (an empty hypothesis file would score every reference as deleted), or the hypotheses
            have an id the references lack (the hypothesis file and the first such id named).
        ScoringError: a word is the reserved ``"*"``.
    """
    refs, hyps = read_transcripts(ref_path), read_transcripts(hyp_path)
    for path, texts in ((ref_path, refs), (hyp_path, hyps)):
        if not texts:
            raise InputError(path, "holds no utterances (an empty file)")
    extra = [u for u in hyps if u not in refs]
    if extra:
        more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
        raise InputError(hyp_path, f"utterance '{extra[0]}'{more} is not in the references {ref_path}")
    if normalize is not None:
        refs, hyps = normalize(refs), normalize(hyps)
    return score(refs, hyps)


def format_alignment(utt: UttScore) -> str:
    """Format one utterance as an aligned block (ending in a newline)::

        id: an406-fcaw-b
        REF:  RUBOUT G M E F   THREE NINE
        HYP:  RUBOUT G N E *** THREE NINE
        OP:   C      C S C D   C     C
        #csid: 5 1 0 1

    Each column is as wide as its widest entry, so REF, HYP and OP tokens start at the same
    position. Gaps show as ``***``. ``#csid`` gives correct, substitutions, insertions, deletions
    (the order of Kaldi's ``wer_per_utt_details.pl``).
    """
    cols: List[Tuple[str, str, str]] = []
    for r, h in utt.alignment:
        if r == EPS:
            op = "I"
        elif h == EPS:
            op = "D"
        else:
            op = "C" if r == h else "S"
        cols.append((GAP_DISPLAY if r == EPS else r, GAP_DISPLAY if h == EPS else h, op))
    widths = [max(len(x) for x in col) for col in cols]
    rows = []
    for label, k in (("REF:", 0), ("HYP:", 1), ("OP:", 2)):
        cells = [col[k].ljust(w) for col, w in zip(cols, widths)]
        rows.append(f"{label:<5} " + " ".join(cells))
    return (
        f"id: {utt.utt_id}\n"
        + "".join(row.rstrip() + "\n" for row in rows)
        + f"#csid: {utt.correct} {utt.substitutions} {utt.insertions} {utt.deletions}\n"
    )


#: Group of a speaker that a ``spk2group`` map lacks (and of an utterance without a speaker).
UNKNOWN_GROUP = "unknown"


def speaker_breakdowns(utt2spk: Mapping[str, str],
                       spk2group: Optional[Mapping[str, str]] = None) -> Dict[str, Dict[str, str]]:
    """The ``breakdowns`` of :func:`hybrid_asr.scoring.report.write_report` for a per-speaker table and, with ``spk2group``,
    a per-group one: ``{"speaker": utt2spk, "group": {utt: group of its speaker}}`` (speakers the
    map lacks are in :data:`UNKNOWN_GROUP`); empty without ``utt2spk``."""
    if not utt2spk:
        return {}
    out = {"speaker": dict(utt2spk)}
    if spk2group is not None:
        out["group"] = {u: spk2group.get(spk, UNKNOWN_GROUP) for u, spk in utt2spk.items()}
    return out
