"""Checking a transcript's words against a lexicon before forced alignment (the text itself is
read and cleaned by :mod:`hybrid_asr.text_files`)."""

import logging
from pathlib import Path
from typing import Collection, List, Sequence, Union

from hybrid_asr.errors import InputError
from hybrid_asr.text_files import clean_transcript

log = logging.getLogger(__name__)


def _unique(words: Sequence[str]) -> List[str]:
    return list(dict.fromkeys(words))


def check_transcript_words(words: Union[str, Sequence[str]], lexicon_words: Collection[str],
                           where: Union[str, Path]) -> List[str]:
    """Check the transcript of an utterance to be force-aligned against the lexicon.

    A word the lexicon lacks but whose upper-case form it has is replaced by that form (one
    warning lists them); any other word the lexicon lacks is an error, since aligning it as
    ``<UNK>`` would silently misplace the words around it.

    Args:
        words: the transcript's words, or the transcript as one string; either way the text is
            cleaned by :func:`~hybrid_asr.text_files.clean_transcript` (invisible characters
            removed with a warning) and split at whitespace.
        lexicon_words: the words that have pronunciations (e.g. ``lang.lexicon.words``).
        where: what the transcript is (a file, or e.g. ``"align-audio transcript"``), named in
            messages.

    Returns:
        The words to align, in order.

    Raises:
        InputError: the transcript is empty (``"empty transcript"``), has a control character
            (see :func:`~hybrid_asr.text_files.clean_transcript`), or words are not in the
            lexicon even in upper case (``"not in the lexicon: FOO, BAR"``).
    """
    text, notes = clean_transcript(words if isinstance(words, str) else " ".join(words), where)
    for note in notes:
        log.warning("%s", note)
    words = text.split()
    if not words:
        raise InputError(where, "empty transcript")
    vocab = lexicon_words if isinstance(lexicon_words, (set, frozenset, dict)) else set(lexicon_words)
    out, uppercased, missing = [], [], []
    for w in words:
        if w in vocab:
            out.append(w)
        elif w.upper() in vocab:
            out.append(w.upper())
            uppercased.append(w)
        else:
            missing.append(w)
    if missing:
        missing = _unique(missing)
        more = f" and {len(missing) - 20} more" if len(missing) > 20 else ""
        raise InputError(where, f"not in the lexicon: {', '.join(missing[:20])}{more}")
    if uppercased:
        log.warning("%s: lowercase words uppercased to match the lexicon: %s", where, ", ".join(_unique(uppercased)))
    return out


__all__ = ["check_transcript_words"]
