"""Phone set, lexicon, L (lexicon FST) and G (n-gram LM) in k2."""

from hybrid_asr.lang.lang_dir import Lang, LangConfig, load_fsa, prepare_lang, save_fsa
from hybrid_asr.lang.lexicon import SIL, SPN, UNK, Lexicon, add_disambig_symbols, cmudict_lexicon, read_lexicon
from hybrid_asr.lang.lexicon_fst import make_lexicon_fst

__all__ = [
    "Lang", "LangConfig", "Lexicon", "SIL", "SPN", "UNK", "add_disambig_symbols", "cmudict_lexicon",
    "load_fsa", "make_lexicon_fst", "prepare_lang", "read_lexicon", "save_fsa",
]
