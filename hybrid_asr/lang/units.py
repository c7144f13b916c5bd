"""Lexicons without a pronunciation dictionary: words spelled in letters (graphemes) or in
sentencepiece subword units, so that a corpus that comes without a dictionary still trains and
decodes and any word can enter the LM (the units play the role of phones throughout)."""

import re
import tempfile
from pathlib import Path
from typing import Iterable, Sequence, Union

from hybrid_asr.errors import HybridAsrError
from hybrid_asr.lang.lexicon import SIL, SPN, UNK, Lexicon

_KEEP = re.compile(r"[A-Z0-9']")


def grapheme_lexicon(words: Iterable[str]) -> Lexicon:
    """Each word spelled by its characters: ``HELLO -> H E L L O`` (upper case; letters, digits
    and apostrophes kept, other characters dropped; a word with none left is skipped).

    Raises:
        HybridAsrError: no word could be spelled.
    """
    entries = []
    for w in sorted(set(words)):
        if w in (UNK,):
            continue
        units = tuple(c for c in w.upper() if _KEEP.match(c))
        if units:
            entries.append((w, units))
    if not entries:
        raise HybridAsrError("no word has a letter, digit or apostrophe to spell it with")
    return Lexicon(entries)


def subword_lexicon(words: Iterable[str], texts: Sequence[str], vocab_size: int,
                    model_path: Union[str, Path]) -> Lexicon:
    """Each word split into sentencepiece units (Kudo & Richardson 2018; unigram model) trained
    on ``texts``; the model is saved to ``model_path`` so that new words can be split the same way.

    Unit names are the pieces with sentencepiece's word-start mark ``▁`` written as ``_``; a
    piece that would read as a reserved symbol (``SIL``, ``SPN``, ``<eps>``, ``#...``) gets a
    ``+`` prefix.

    Raises:
        HybridAsrError: no text, or sentencepiece refused the settings (e.g. too large a vocabulary
            for the text).
    """
    import sentencepiece as spm

    lines = [t.strip() for t in texts if t.strip()]
    if not lines:
        raise HybridAsrError("no text to train the subword units on")
    model_path = Path(model_path)
    with tempfile.TemporaryDirectory() as tmp:
        text_file = Path(tmp) / "text.txt"
        text_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        try:
            spm.SentencePieceTrainer.train(input=str(text_file), model_prefix=str(Path(tmp) / "units"),
                                           vocab_size=vocab_size, model_type="unigram", character_coverage=1.0,
                                           minloglevel=2, bos_id=-1, eos_id=-1)
        except RuntimeError as e:
            raise HybridAsrError(f"sentencepiece: {str(e).splitlines()[-1]}") from None
        model_path.write_bytes((Path(tmp) / "units.model").read_bytes())
    sp = spm.SentencePieceProcessor(model_file=str(model_path))

    def name(piece: str) -> str:
        p = piece.replace("\u2581", "_")
        return "+" + p if p in (SIL, SPN, "<eps>", "<unk>") or p.startswith("#") else p

    entries = []
    for w in sorted(set(words) - {UNK}):
        pieces = [name(p) for p in sp.encode(w, out_type=str) if p != "\u2581"]
        if pieces:
            entries.append((w, tuple(pieces)))
    return Lexicon(entries)
