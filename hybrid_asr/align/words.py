"""Word boundaries from a phone-level alignment and the lexicon."""

from typing import Dict, List, Sequence, Tuple

from hybrid_asr.errors import AlignmentError
from hybrid_asr.lang.lexicon import SIL, SPN, UNK, Lexicon


def word_spans(phone_segments: Sequence[Tuple[str, int, int]], words: Sequence[str],
               lexicon: Lexicon, unk: str = UNK) -> List[Tuple[str, int, int]]:
    """Split an aligned phone sequence into the words it pronounces.

    The alignment of ``words`` (forced, through L) is a sequence of pronunciations with optional
    silence between them; each word is matched to the next phones with one of its
    pronunciations (the longest that fits, backtracking when a later word then fails), silence
    phones in between are skipped. Words the lexicon lacks are matched as ``<UNK>`` (SPN).

    Args:
        phone_segments: ``(phone, first frame, end frame)`` in time order (e.g. from
            :func:`hybrid_asr.hmm.alignment.segments_from_marks`).
        words: the aligned transcript.
        lexicon: pronunciations (the lang dir's).
        unk: the lexicon's unknown word.

    Returns:
        ``(word, first frame, end frame (exclusive))`` per word.

    Raises:
        AlignmentError: the phones do not spell the words.
    """
    prons: Dict[str, List[Tuple[str, ...]]] = {}
    for w, p in lexicon.entries:
        prons.setdefault(w, []).append(tuple(p))
    phones = [p for p, _, _ in phone_segments]

    def match(i: int, k: int):  # [(first, end) phone index] of words k.., or None
        while i < len(phones) and phones[i] == SIL:
            i += 1
        if k == len(words):
            return [] if i == len(phones) else None
        options = prons.get(words[k]) or prons.get(unk) or [(SPN,)]
        for pron in sorted(options, key=len, reverse=True):
            if tuple(phones[i:i + len(pron)]) == pron:
                rest = match(i + len(pron), k + 1)
                if rest is not None:
                    return [(i, i + len(pron))] + rest
        return None

    spans = match(0, 0)
    if spans is None:
        raise AlignmentError("the aligned phones do not spell the words " + " ".join(words[:10]))
    return [(w, phone_segments[a][1], phone_segments[b - 1][2]) for w, (a, b) in zip(words, spans)]
