"""Lexicon reading, disambiguation symbols, L with optional silence, G from the LM."""

import math

import k2
import pytest
import torch
from fsa_paths import enumerate_paths

from hybrid_asr.errors import InputError
from hybrid_asr.lang import Lexicon, add_disambig_symbols, read_lexicon


def test_read_cmu_dic_with_alternatives_and_stress(tmp_path):
    path = tmp_path / "x.dic"
    path.write_text(";;; comment\nA  AH0\nA(2)  EY1\nAND AE1 N D\n<s> SIL\nAND(2) AH0 N D\n")
    lex = read_lexicon(path)
    assert lex.entries == [("A", ("AH",)), ("A", ("EY",)), ("AND", ("AE", "N", "D")), ("AND", ("AH", "N", "D"))]
    assert read_lexicon(path, keep_stress=True).entries[0] == ("A", ("AH0",))
    assert lex.phones == ["SIL", "SPN", "AE", "AH", "D", "EY", "N"]


def test_read_lexicon_reports_line_of_bad_entry(tmp_path):
    path = tmp_path / "bad.dic"
    path.write_text("A AH\nB\n")
    with pytest.raises(InputError, match=r"bad.dic:2: word 'B' has no phones"):
        read_lexicon(path)


def test_disambig_symbols_for_homophones_and_prefixes():
    lex = Lexicon([("AB", ("A", "B")), ("A", ("A",)), ("AA", ("A",)), ("C", ("C",))])
    entries, max_id = add_disambig_symbols(lex)
    d = dict((w, p) for w, p in entries)
    assert d["AB"] == ("A", "B")          # not a prefix of anything, unique
    assert d["A"] == ("A", "#1")          # homophone and prefix of "A B"
    assert d["AA"] == ("A", "#2")         # its homophone gets a different symbol
    assert d["C"] == ("C",)
    assert max_id == 2


def test_lang_dir_symbol_tables(toy_lang):
    words = toy_lang.word_table
    assert words["<eps>"] == 0 and words["<UNK>"] == 1
    syms = sorted(words.symbols, key=lambda s: words[s])
    assert syms[-3:] == ["#0", "<s>", "</s>"]
    assert toy_lang.phones == ["SIL", "SPN", "A", "B"]
    assert toy_lang.first_phone_disambig == toy_lang.phone_table["#0"] == 5
    assert toy_lang.word_ids(["AB", "ZZZ"]) == [words["AB"], words["<UNK>"]]


def _words(lang, ids):
    return " ".join(lang.word_table[i] for i in ids)


def test_L_maps_phones_to_all_segmentations(toy_lang):
    L = toy_lang.L
    p = toy_lang.phone_table
    phones = k2.arc_sort(k2.linear_fsa([p["A"], p["B"], p["A"]]))
    paths = enumerate_paths(k2.intersect(k2.arc_sort(L), k2.add_epsilon_self_loops(phones),
                                         treat_epsilons_specially=False), 12)
    outs = {_words(toy_lang, o) for _, o, _ in paths}
    assert outs == {"AB A", "AB AA", "A BA", "AA BA"}


def test_L_optional_silence_scores(toy_lang):
    L = toy_lang.L
    paths = enumerate_paths(L, 6)
    p = toy_lang.phone_table
    by_labels = {}
    for labels, outs, score in paths:
        by_labels.setdefault(tuple(l for l in labels if l), []).append((outs, score))
    # "A" alone (word A or AA): no silence = log(1-p) at the start and log(1-p) after the word
    (outs, score), *_ = [x for x in by_labels[(p["A"],)] if x[0] == (toy_lang.word_table["A"],)]
    assert score == pytest.approx(2 * math.log(0.5))
    # SIL A SIL exists (leading and trailing optional silence)
    assert (p["SIL"], p["A"], p["SIL"]) in by_labels


def test_L_disambig_has_backoff_loop(toy_lang):
    L = toy_lang.L_disambig
    p0, w0 = toy_lang.phone_table["#0"], toy_lang.word_table["#0"]
    loops = [(int(l), int(o)) for l, o in zip(L.labels.tolist(), L.aux_labels.tolist()) if l == p0]
    assert loops == [(p0, w0)]


def test_G_prefers_frequent_training_sentences(tmp_path):
    from hybrid_asr.lang import Lang, LangConfig, prepare_lang

    lexicon = Lexicon([("AB", ("A", "B")), ("BA", ("B", "A"))])
    prepare_lang(lexicon, ["AB BA"] * 20 + ["BA AB"] * 2, tmp_path, LangConfig(lm_order=2))
    lang = Lang(tmp_path)
    w = lang.word_table
    G = lang.G.clone()
    labels = G.labels.clone()
    assert int((labels == w["#0"]).sum()) > 0  # back-off arcs read #0
    labels[labels == w["#0"]] = 0  # make them epsilon so that unseen bigrams can back off
    G.labels = labels
    G = k2.arc_sort(G)

    def best(sentence):
        fsa = k2.linear_fsa([w[x] for x in sentence.split()])
        lat = k2.create_fsa_vec([k2.intersect(G, fsa, treat_epsilons_specially=True)])
        return float(lat.get_tot_scores(use_double_scores=True, log_semiring=False)[0])

    assert best("AB BA") > best("BA AB") > best("BA BA") > -math.inf


def test_lm_order_out_of_range_is_an_error_not_an_exit(tmp_path):
    from hybrid_asr.errors import HybridAsrError
    from hybrid_asr.lang.lm import train_arpa

    with pytest.raises(HybridAsrError, match="LM order must be between 1 and 5, got 6"):
        train_arpa(["A B"], tmp_path / "lm.arpa", order=6)


def test_add_vocabulary_keeps_every_history_normalised(tmp_path):
    from kaldingram.prune import ArpaParser

    from hybrid_asr.lang.lm import add_vocabulary, train_arpa, unseen_word_mass

    text = ["A B C", "A B D", "B C A", "C A B D", "D D A"] * 3 + ["E A"]
    train_arpa(text, tmp_path / "lm.arpa", order=3)
    before = ArpaParser().loadf(str(tmp_path / "lm.arpa"), encoding="utf-8")[0]
    mass = unseen_word_mass(text)
    assert mass == pytest.approx(1 / (sum(len(t.split()) for t in text) + 1))  # one singleton, E
    assert add_vocabulary(tmp_path / "lm.arpa", ["A", "B", "NEW1", "NEW2"], mass) == 2
    lm = ArpaParser().loadf(str(tmp_path / "lm.arpa"), encoding="utf-8")[0]
    vocab = ["A", "B", "C", "D", "E", "NEW1", "NEW2", "</s>"]
    assert 10 ** lm.log_p_raw(("NEW1",)) == pytest.approx(mass / len(vocab), rel=1e-5)
    for n in range(lm.order()):  # every history, every order: p(. | h) sums to 1 over the vocabulary
        for h in lm._ngrams[n]:
            if h and h[-1] == "</s>":
                continue
            assert sum(10 ** lm.log_p_raw(h + (w,)) for w in vocab) == pytest.approx(1.0, abs=1e-5), h
    for h, following in before._ngrams[2].items():  # explicit trigrams are kept
        for w, p in following.items():
            assert lm._ngrams[2][h][w] == pytest.approx(p, abs=1e-6)


def test_lexicon_words_missing_from_the_text_are_in_G_only_with_lm_vocabulary_lexicon(tmp_path):
    from hybrid_asr.lang import Lang, LangConfig, prepare_lang

    lexicon = Lexicon([("AB", ("A", "B")), ("BA", ("B", "A")), ("AA", ("A", "A"))])
    for vocabulary, expected in (("lexicon", True), ("text", False)):
        prepare_lang(lexicon, ["AB BA", "BA AB", "AB"], tmp_path / vocabulary, LangConfig(lm_order=2, lm_vocabulary=vocabulary))
        lang = Lang(tmp_path / vocabulary)
        assert (lang.word_table["AA"] in set(lang.G.aux_labels.tolist())) == expected


def _random_text(n, seed=0):
    import random

    rng = random.Random(seed)
    words = ["W%d" % i for i in range(30)]
    return [" ".join(rng.choice(words[: rng.randint(3, 30)]) for _ in range(rng.randint(2, 9))) for _ in range(n)]


def test_train_arpa_entropy_pruning_drops_ngrams_and_keeps_unigrams(tmp_path):
    from hybrid_asr.lang.lm import arpa_sizes, lm_perplexity, train_arpa

    text = _random_text(400)
    full = train_arpa(text, tmp_path / "full.arpa", 3)
    pruned = train_arpa(text, tmp_path / "pruned.arpa", 3, prune_threshold=1e-4)
    assert full == arpa_sizes(tmp_path / "full.arpa") and pruned == arpa_sizes(tmp_path / "pruned.arpa")
    assert pruned[1] == full[1] == 32  # 30 words, <s> and </s>: unigrams are never pruned
    assert pruned[3] < full[3] and pruned[2] <= full[2]
    held_out = _random_text(50, seed=1)
    ppl_full = lm_perplexity(tmp_path / "full.arpa", held_out)["perplexity"]
    ppl_pruned = lm_perplexity(tmp_path / "pruned.arpa", held_out)["perplexity"]
    assert ppl_pruned != ppl_full and 1 < ppl_pruned < 32 and 1 < ppl_full < 32


def test_lm_perplexity_by_hand_on_a_unigram_model_with_an_oov(tmp_path):
    """Unigram model: perplexity = 10^(-(sum of log10 p(w) + log10 p(</s>) per sentence) /
    (words + sentences)); the OOV token is counted and left out, as SRILM does."""
    from hybrid_asr.lang.lm import lm_perplexity, train_arpa

    train_arpa(["A B", "A A", "B"], tmp_path / "uni.arpa", 1)
    logp = {}
    for line in (tmp_path / "uni.arpa").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[1] in ("A", "B", "</s>"):
            logp[fields[1]] = float(fields[0])
    stats = lm_perplexity(tmp_path / "uni.arpa", ["A B", "B C"])
    assert (stats["words"], stats["oov_words"], stats["sentences"]) == (4, 1, 2)
    assert stats["oov_rate"] == pytest.approx(25.0)
    total = logp["A"] + 2 * logp["B"] + 2 * logp["</s>"]
    assert stats["perplexity"] == pytest.approx(10 ** (-total / (3 + 2)), rel=1e-4)


def test_grapheme_lexicon_spells_words_in_letters():
    from hybrid_asr.lang.units import grapheme_lexicon

    lex = grapheme_lexicon(["HELLO", "it's", "B-52", "<UNK>", "--"])
    assert dict(lex.entries) == {"HELLO": ("H", "E", "L", "L", "O"), "it's": ("I", "T", "'", "S"),
                                 "B-52": ("B", "5", "2")}


def test_subword_lexicon_splits_words_into_trained_units(tmp_path):
    import sentencepiece as spm

    from hybrid_asr.lang.units import subword_lexicon

    texts = ["ONE TWO THREE FOUR", "TWENTY ONE", "THIRTY TWO", "FORTY FOUR", "TWENTY THREE THIRTY"] * 20
    words = sorted({w for t in texts for w in t.split()})
    lex = subword_lexicon(words, texts, 20, tmp_path / "units.model")
    sp = spm.SentencePieceProcessor(model_file=str(tmp_path / "units.model"))
    entries = dict(lex.entries)
    assert set(entries) == set(words)
    for w, units in entries.items():  # the units spell the word back
        assert "".join(u.lstrip("+") for u in units).replace("_", "") == w
        assert len(units) == len([p for p in sp.encode(w, out_type=str) if p != "\u2581"])
    assert not {"SIL", "SPN"} & {u for us in entries.values() for u in us}


def test_fsa_from_arcs_equals_the_text_form_and_rejects_a_misplaced_final_state():
    from hybrid_asr.lang.fsa import fsa_from_arcs

    arcs = [(1, 2, 4, -0.25), (0, 1, 3, 0.5), (0, 2, 1, -1.125), (1, 3, -1, 0.0), (2, 3, -1, -2.0), (0, 0, 2, 0.75)]
    aux = [7, 5, 0, -1, -1, 6]
    built = fsa_from_arcs(arcs, 3, aux)
    text = "\n".join(f"{s} {d} {lab} {o} {w}" for (s, d, lab, w), o in sorted(zip(arcs, aux))) + "\n3\n"
    expected = k2.arc_sort(k2.Fsa.from_str(text, acceptor=False))
    assert k2.to_str_simple(built) == k2.to_str_simple(expected)
    assert built.aux_labels.dtype == torch.int32
    acceptor = fsa_from_arcs([(s, d, lab, w) for s, d, lab, w in arcs], 3)
    assert not hasattr(acceptor, "aux_labels") and acceptor.shape[0] == 4
    with pytest.raises(ValueError, match="highest state"):
        fsa_from_arcs([(0, 1, -1, 0.0), (0, 2, 3, 0.0)], 1)
    with pytest.raises(ValueError, match="label -1"):
        fsa_from_arcs([(0, 1, 3, 0.0)], 1)


def test_prepare_lang_with_a_given_arpa_lm(tmp_path, caplog, capsys):
    """--arpa: the lang dir built from the lm.arpa that training wrote (given gzipped) has the
    trained lang dir's G exactly, lang.json records the file's order, words the lexicon lacks are
    counted in a warning and left out of G; the CLI needs --lexicon for it."""
    import gzip
    import json

    from hybrid_asr.cli.main import main
    from hybrid_asr.lang import Lang, LangConfig, prepare_lang
    from hybrid_asr.lang.lm import validate_arpa

    lexicon = Lexicon([("AB", ("A", "B")), ("BA", ("B", "A")), ("A", ("A",))])
    texts = ["AB BA", "A AB", "BA A AB", "A A"]
    prepare_lang(lexicon, texts, tmp_path / "trained", LangConfig(lm_order=2))
    arpa = tmp_path / "lm.arpa.gz"
    arpa.write_bytes(gzip.compress((tmp_path / "trained" / "lm.arpa").read_bytes()))
    prepare_lang(lexicon, [], tmp_path / "given", LangConfig(lm_order=4), arpa=arpa)
    trained, given = Lang(tmp_path / "trained"), Lang(tmp_path / "given")
    assert json.loads((tmp_path / "given" / "lang.json").read_text())["lm_order"] == 2
    assert (tmp_path / "given" / "words.txt").read_text() == (tmp_path / "trained" / "words.txt").read_text()
    assert torch.equal(given.G.arcs.values(), trained.G.arcs.values()) and torch.equal(given.G.scores, trained.G.scores)

    text = (tmp_path / "trained" / "lm.arpa").read_text()  # one more word, unknown to the lexicon
    counts = validate_arpa(tmp_path / "trained" / "lm.arpa")
    text = text.replace(f"ngram 1={counts[1]}", f"ngram 1={counts[1] + 1}").replace("\\1-grams:\n",
                                                                                    "\\1-grams:\n-2.0\tZZZ\t-0.1\n")
    (tmp_path / "oov.arpa").write_text(text)
    with caplog.at_level("WARNING"):
        prepare_lang(lexicon, [], tmp_path / "oov", arpa=tmp_path / "oov.arpa")
    assert "1 of its 4 words are not in the lexicon (e.g. ZZZ)" in caplog.text
    assert "ZZZ" not in (tmp_path / "oov" / "words.txt").read_text()
    assert Lang(tmp_path / "oov").G.num_arcs == trained.G.num_arcs
    capsys.readouterr()
    assert main(["prepare-lang", str(tmp_path), str(tmp_path / "cli"), "--cmudict", "--arpa", str(arpa)]) == 1
    err = capsys.readouterr().err
    assert "--arpa needs --lexicon" in err and err.count("\n") == 1
