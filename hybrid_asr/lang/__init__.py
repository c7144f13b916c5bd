"""Phone set, lexicon, L (lexicon FST) and G (n-gram LM) in k2.

The names below are loaded from their modules on first use (PEP 562), so that importing one
k2-free part (e.g. :class:`LangConfig` for the command line's options) does not import k2: the
training stage runs where torch has no k2 build.
"""

import importlib

_MODULE_OF = {
    "Lang": "lang_dir", "LangConfig": "config", "load_fsa": "lang_dir", "prepare_lang": "lang_dir",
    "save_fsa": "lang_dir", "SIL": "lexicon", "SPN": "lexicon", "UNK": "lexicon", "Lexicon": "lexicon",
    "add_disambig_symbols": "lexicon", "cmudict_lexicon": "lexicon", "read_lexicon": "lexicon",
    "make_lexicon_fst": "lexicon_fst",
}


def __getattr__(name):
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)


__all__ = sorted(_MODULE_OF)
