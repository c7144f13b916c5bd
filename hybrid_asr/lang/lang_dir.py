"""The lang directory: symbol tables, lexicon, L, L_disambig and G, built once and loaded by name.

Layout (Kaldi ``data/lang`` / icefall ``data/lang_phone`` conventions)::

    phones.txt            <eps>=0, SIL, SPN, speech phones, then #0 #1 ... (disambiguation)
    words.txt             <eps>=0, <UNK>, words, then #0 <s> </s>
    lexicon.txt           WORD p1 p2 ...           (with <UNK> SPN)
    lexicon_disambig.txt  same with #n appended where needed
    L.pt, L_disambig.pt   k2 transducers (phones -> words), see lexicon_fst.py
    lm.arpa, G.pt         n-gram LM on the training text and its k2 grammar transducer
    lang.json             the LangConfig used
"""

import json
import logging
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import k2
import torch

from hybrid_asr.bounds import bounded, check_bounds
from hybrid_asr.errors import ConfigError, HybridAsrError, InputError
from hybrid_asr.lang.config import LangConfig
from hybrid_asr.lang.lexicon import (
    SIL,
    UNK,
    Lexicon,
    add_disambig_symbols,
    is_reserved_phone,
    is_reserved_word,
    map_oov,
    read_lexicon,
)
from hybrid_asr.lang.lexicon_fst import make_lexicon_fst
from hybrid_asr.lang.lm import (
    import_arpa,
    add_vocabulary,
    arpa_to_g,
    drop_sentence_boundaries,
    train_arpa,
    unseen_word_mass,
)
from hybrid_asr.utils import atomic_path, phone_set_fingerprint, write_text_atomic

log = logging.getLogger(__name__)


def _symbol_text(symbols: Sequence[str]) -> str:
    return "".join(f"{s} {i}\n" for i, s in enumerate(symbols))


def save_fsa(fsa: k2.Fsa, path: Union[str, Path]) -> None:
    """Save a k2 Fsa atomically as a dict of plain tensors (``fsa.as_dict()`` with every ragged
    attribute, e.g. HLG's ``aux_labels``, stored as ``{"row_splits", "values"}``), so that
    :func:`load_fsa` can read it with ``torch.load(weights_only=True)``."""
    d = {}
    for name, value in fsa.as_dict().items():
        if isinstance(value, k2.RaggedTensor):
            if value.num_axes != 2:
                raise ValueError(f"cannot save ragged attribute {name} with {value.num_axes} axes")
            value = {"row_splits": value.shape.row_splits(1), "values": value.values}
        d[name] = value
    with atomic_path(path) as tmp:
        torch.save(d, tmp)


def load_fsa(path: Union[str, Path]) -> k2.Fsa:
    """Load an Fsa saved by :func:`save_fsa` without running code from the file.

    Raises:
        InputError: missing, or not a file written by :func:`save_fsa` (names the file).
    """
    if not Path(path).is_file():
        raise InputError(path, "FSA file does not exist")
    try:
        d = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - pickle raises many types; all mean "not a plain FSA file"
        raise InputError(path, "not an FSA file of plain tensors: it cannot be loaded as tensors only (it would "
                         "run code, or it is damaged or from an older version; rebuild it)") from None
    if not isinstance(d, dict) or not isinstance(d.get("arcs"), torch.Tensor):
        raise InputError(path, "not an FSA file (no arcs)")
    try:
        for name, value in list(d.items()):
            if isinstance(value, dict):
                shape = k2.ragged.create_ragged_shape2(row_splits=value["row_splits"].to(torch.int32))
                d[name] = k2.RaggedTensor(shape, value["values"])
        return k2.Fsa.from_dict(d)
    except Exception as e:  # noqa: BLE001 - k2 raises RuntimeError/KeyError/... for inconsistent parts
        raise InputError(path, f"not a consistent FSA file ({type(e).__name__}); rebuild it") from None


def prepare_lang(
    lexicon: Lexicon,
    train_texts: Sequence[str],
    out_dir: Union[str, Path],
    config: LangConfig = LangConfig(),
    arpa: Optional[Union[str, Path]] = None,
) -> None:
    """Build a complete lang directory (see module docstring).

    Args:
        lexicon: pronunciations of the vocabulary (``<UNK> SPN`` is added).
        train_texts: the LM text: training transcripts, or any domain text (never test text);
            out-of-vocabulary words become ``<UNK>`` (their count is logged). Unused with ``arpa``.
        out_dir: directory to write.
        config: silence probability and LM order (the LM settings do not apply with ``arpa``;
            ``lang.json`` then records the ARPA file's order).
        arpa: a given ARPA LM to use instead of training one (e.g. LibriSpeech's
            ``3-gram.pruned.1e-7.arpa.gz``; Kaldi's ``format_lm.sh``): copied as ``lm.arpa``;
            n-grams with words the lexicon lacks are left out of G (a warning counts the words).

    Raises:
        HybridAsrError: a phone of the lexicon is a reserved symbol, or the LM text has no word
            (checked before anything is written). Lexicon words that are reserved symbols
            (``<eps>``, ``<s>``, ``</s>``, ``#0``, ...: e.g. spelled from an LM text that marks
            sentence boundaries) are dropped with a warning, as are ``<s>``/``</s>`` tokens of the
            LM text (the LM adds the sentence boundaries itself).
    """
    lexicon = _without_reserved_words(lexicon)
    train_texts = drop_sentence_boundaries(train_texts)
    if arpa is None and not any(t.split() for t in train_texts):
        raise HybridAsrError(f"{out_dir}: no training text for the language model")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "lang.json").unlink(missing_ok=True)  # incomplete until the new lang.json is written
    lexicon = lexicon.with_unk()
    disambig_entries, max_disambig = add_disambig_symbols(lexicon)
    phones = ["<eps>"] + lexicon.phones + [f"#{i}" for i in range(max_disambig + 1)]
    words = ["<eps>", UNK] + sorted(w for w in lexicon.words if w != UNK) + ["#0", "<s>", "</s>"]
    write_text_atomic(out / "phones.txt", _symbol_text(phones))
    write_text_atomic(out / "words.txt", _symbol_text(words))
    lexicon.write(out / "lexicon.txt")
    Lexicon(disambig_entries, lexicon.silence_phones).write(out / "lexicon_disambig.txt")

    phone_ids = {p: i for i, p in enumerate(phones)}
    word_ids = {w: i for i, w in enumerate(words)}
    L = make_lexicon_fst(lexicon.entries, phone_ids, word_ids, SIL, config.sil_prob)
    L_disambig = make_lexicon_fst(
        disambig_entries, phone_ids, word_ids, SIL, config.sil_prob, (phone_ids["#0"], word_ids["#0"])
    )
    save_fsa(L, out / "L.pt")
    save_fsa(L_disambig, out / "L_disambig.pt")

    vocab = set(lexicon.words)
    if arpa is not None:
        counts, lm_words = import_arpa(arpa, out / "lm.arpa")
        missing = [w for w in lm_words if w not in vocab]
        if missing:
            log.warning("%s: %d of its %d words are not in the lexicon (e.g. %s); the n-grams with them are left "
                        "out of G", arpa, len(missing), len(lm_words), " ".join(missing[:5]))
        config = replace(config, lm_order=len(counts))
        save_fsa(arpa_to_g(out / "lm.arpa", out / "words.txt"), out / "G.pt")
        write_text_atomic(out / "lang.json", json.dumps(asdict(config), indent=2) + "\n")
        return
    oov = sum(w not in vocab for t in train_texts for w in t.split())
    if oov:
        log.warning("%d training-text tokens are out of vocabulary; they become %s in the LM", oov, UNK)
    lm_text = [" ".join(map_oov(t.split(), vocab)) for t in train_texts]
    train_arpa(lm_text, out / "lm.arpa", config.lm_order, config.lm_prune)
    if config.lm_vocabulary == "lexicon":
        mass = unseen_word_mass(lm_text)
        added = add_vocabulary(out / "lm.arpa", [w for w in lexicon.words if w != UNK], mass)
        if added:
            log.info("%d lexicon words are not in the LM text; the unigrams are interpolated with a uniform "
                     "distribution of weight %.4f (Good-Turing unseen-word mass)", added, mass)
    save_fsa(arpa_to_g(out / "lm.arpa", out / "words.txt"), out / "G.pt")
    write_text_atomic(out / "lang.json", json.dumps(asdict(config), indent=2) + "\n")
    log.info("lang dir %s: %d phones, %d words, %d disambiguation symbols", out, len(lexicon.phones),
             len(lexicon.words), max_disambig + 1)


def _without_reserved_words(lexicon: Lexicon) -> Lexicon:
    """Check the phones and drop (with a warning) the words that would clash with the symbol tables."""
    bad_phones = sorted({p for _, prons in lexicon.entries for p in prons if is_reserved_phone(p)})
    if bad_phones:
        raise HybridAsrError(f"lexicon phones {', '.join(bad_phones)} are reserved symbols (<eps>, <s>, </s> "
                             "and #... are used by the lang builder)")
    bad = [w for w in lexicon.words if is_reserved_word(w)]
    if not bad:
        return lexicon
    log.warning("lexicon words %s are reserved symbols of the lang directory; they are left out", ", ".join(bad))
    return Lexicon([(w, p) for w, p in lexicon.entries if w not in bad], list(lexicon.silence_phones))


class Lang:
    """Read access to a lang directory written by :func:`prepare_lang`.

    Raises:
        InputError: the directory lacks ``lang.json`` (incomplete).
    """

    def __init__(self, path: Union[str, Path]):
        self.path = Path(path)
        if not (self.path / "lang.json").is_file():
            raise InputError(self.path, "not a complete lang directory (lang.json missing)")
        self.config = LangConfig(**json.loads((self.path / "lang.json").read_text()))
        self.phone_table = k2.SymbolTable.from_file(str(self.path / "phones.txt"))
        self.word_table = k2.SymbolTable.from_file(str(self.path / "words.txt"))
        # verbatim: prepare_lang wrote the phones as the model uses them (stress already handled)
        self.lexicon = read_lexicon(self.path / "lexicon.txt", keep_stress=True)

    @property
    def phones(self) -> List[str]:
        """Real phones in id order (no epsilon, no disambiguation symbols)."""
        ids = sorted(self.phone_table[s] for s in self.phone_table.symbols)
        return [self.phone_table[i] for i in ids if i != 0 and not self.phone_table[i].startswith("#")]

    @property
    def phone_pairs(self) -> List[Tuple[str, int]]:
        """``(phone, id)`` of the real phones in id order (what a model's topology must match)."""
        return [(p, self.phone_table[p]) for p in self.phones]

    def phone_set_fingerprint(self) -> str:
        """SHA-256 of :attr:`phone_pairs` (as a model's ``bundle.json`` records it)."""
        return phone_set_fingerprint(self.phone_pairs)

    @property
    def first_phone_disambig(self) -> int:
        """Id of ``#0`` in phones.txt; every id >= it is a disambiguation symbol."""
        return self.phone_table["#0"]

    @property
    def first_word_disambig(self) -> int:
        """Id of ``#0`` in words.txt; ids >= it are ``#0``, ``<s>``, ``</s>``."""
        return self.word_table["#0"]

    def word_ids(self, words: Sequence[str]) -> List[int]:
        """Map words to ids, out-of-vocabulary words to ``<UNK>``."""
        unk = self.word_table[UNK]
        return [self.word_table.get(w) if w in self.word_table else unk for w in words]

    @cached_property
    def L(self) -> k2.Fsa:
        """Lexicon transducer without disambiguation symbols (for training graphs)."""
        return load_fsa(self.path / "L.pt")

    @cached_property
    def L_disambig(self) -> k2.Fsa:
        """Lexicon transducer with disambiguation symbols (for LG)."""
        return load_fsa(self.path / "L_disambig.pt")

    @cached_property
    def G(self) -> k2.Fsa:
        """Grammar transducer of the n-gram LM."""
        return load_fsa(self.path / "G.pt")
