"""Context-dependent H (triphone context expansion) on a toy lexicon with a hand-made tree."""

import pytest
import torch
from fsa_paths import enumerate_paths

from hybrid_asr.decoding import SearchConfig, decode_scores
from hybrid_asr.graph import GraphConfig, TrainingGraphCompiler, make_decoding_graph
from hybrid_asr.graph.h_cd import make_h_cd
from hybrid_asr.hmm.tree import DecisionTree, Node


def _leaf(k):
    return Node(leaf=k)


def _by_state(a, b):
    return Node.question("S", [0], _leaf(a), _leaf(b))


def toy_tree():
    """A: right context B -> senones 0,1 else 2,3; B: left context A -> 4,5 else 6,7;
    SIL -> 8,9,10 (context-independent); SPN -> 11,12."""
    roots = {
        "A": Node.question("R", ["B"], _by_state(0, 1), _by_state(2, 3)),
        "B": Node.question("L", ["A"], _by_state(4, 5), _by_state(6, 7)),
        "SIL": Node.question("S", [0], _leaf(8), Node.question("S", [1], _leaf(9), _leaf(10))),
        "SPN": _by_state(11, 12),
    }
    return DecisionTree(roots, list(range(13)), {"SIL": 3, "SPN": 2, "A": 2, "B": 2})


def _minimal_sequences(graph, frames):
    return {p[0] for p in enumerate_paths(graph, frames + 1, None, exact_arcs=frames + 1)}


def test_h_cd_is_epsilon_free_and_shares_chains(toy_topo):
    H = make_h_cd(toy_topo, toy_tree())
    assert int((H.labels == 0).sum()) == 0
    # chains are shared by (phone, right context, senones): 57 states (227 with one chain per triphone)
    assert H.shape[0] == 57


def test_training_graph_uses_the_triphone_senones(toy_lang, toy_topo):
    compiler = TrainingGraphCompiler(toy_lang, toy_topo, make_h_cd(toy_topo, toy_tree()))
    graphs = compiler.compile(["AB", "A"])
    ab, a = graphs[0], graphs[1]
    # AB without silence: A before B (senones 0 1), B after A (4 5); labels are senone + 1
    assert _minimal_sequences(ab, 4) == {(1, 2, 5, 6)}
    # A alone: right context is the utterance end -> senones 2 3
    assert _minimal_sequences(a, 2) == {(3, 4)}
    # with optional silence before A: SIL SIL SIL A A; A's right context is still the boundary
    assert (9, 10, 11, 3, 4) in _minimal_sequences(a, 5)


def test_hclg_decodes_context_dependent_senones(toy_lang, toy_topo):
    hclg = make_decoding_graph(toy_lang, toy_topo, toy_tree(), GraphConfig(construction="compose"))
    assert int((hclg.labels == 0).sum()) == 0

    def scores(senones):
        s = torch.full((len(senones), 13), -20.0)
        s[torch.arange(len(senones)), torch.tensor(senones)] = 0.0
        return s

    # "B A" (word BA): B with left boundary -> 6 7, A with right boundary -> 2 3
    got = decode_scores(hclg, [scores([8, 9, 10, 6, 6, 7, 2, 3, 3, 8, 9, 10])], SearchConfig(acoustic_scale=1.0))
    assert [toy_lang.word_table[w] for w in got[0]] == ["BA"]
    # "A B" (word AB): A before B -> 0 1, B after A -> 4 5
    got = decode_scores(hclg, [scores([8, 9, 10, 0, 1, 1, 4, 5, 8, 9, 10])], SearchConfig(acoustic_scale=1.0))
    assert [toy_lang.word_table[w] for w in got[0]] == ["AB"]


def test_monophone_alignment_converts_to_triphone_senones(toy_topo):
    from hybrid_asr.hmm.alignment import monophone_marks
    from hybrid_asr.align.convert import to_senones

    p = toy_topo.pdf_id
    ali = [p("SIL", 0), p("SIL", 1), p("SIL", 2), p("A", 0), p("A", 1), p("A", 1), p("B", 0), p("B", 1),
           p("A", 0), p("A", 1)]
    out = to_senones({"u": ali}, monophone_marks({"u": ali}, toy_topo), toy_topo, toy_tree())["u"]
    # SIL (CI) 8 9 10; A before B 0 1 1; B after A 4 5; final A (right = boundary) 2 3
    assert out.tolist() == [8, 9, 10, 0, 1, 1, 4, 5, 2, 3]


def test_bundle_keeps_the_tree(tmp_path, toy_topo):
    from hybrid_asr.bundle import ModelBundle
    from hybrid_asr.features import CmvnStats, FeatureConfig
    from hybrid_asr.models import DnnAcousticModel, DnnConfig

    tree = toy_tree()
    model = DnnAcousticModel(DnnConfig(feat_dim=2, num_pdfs=tree.num_pdfs, left_context=0, right_context=0,
                                       hidden_dim=4, num_layers=1))
    stats = CmvnStats.from_features(torch.randn(5, 2))
    ModelBundle(model, FeatureConfig(), stats, torch.zeros(tree.num_pdfs), toy_topo, tree).save(tmp_path)
    back = ModelBundle.load(tmp_path)
    assert back.tree is not None and back.num_pdfs == 13
    assert back.tree.pdf_id("A", "B", "SIL", 1) == tree.pdf_id("A", "B", "SIL", 1)
    assert back.make_h().num_arcs == make_h_cd(toy_topo, tree).num_arcs


def test_triphone_forced_alignment_gives_senone_and_phone_boundaries(toy_lang, toy_topo):
    """Scores favour SIL (3 frames), A before B (4 frames), B after A (3), SIL (3): the triphone
    training graph of "AB" must put the senones and the phone marks exactly there."""
    from hybrid_asr.align import viterbi_align
    from hybrid_asr.hmm.alignment import segments_from_marks, senone_segments

    truth = [8, 9, 10, 0, 0, 1, 1, 4, 5, 5, 8, 9, 10]
    scores = torch.full((len(truth), 13), -10.0)
    scores[torch.arange(len(truth)), torch.tensor(truth)] = 0.0
    compiler = TrainingGraphCompiler(toy_lang, toy_topo, make_h_cd(toy_topo, toy_tree()))
    ali = viterbi_align(compiler, ["AB"], [scores])[0]
    assert ali.pdfs.tolist() == truth
    names = {toy_lang.phone_table[p]: p for p in toy_lang.phones}
    assert segments_from_marks(ali.phone_marks, names) == [("SIL", 0, 3), ("A", 3, 7), ("B", 7, 10), ("SIL", 10, 13)]
    assert [s for s, _, _ in senone_segments(ali.pdfs, ali.phone_marks)] == [8, 9, 10, 0, 1, 4, 5, 8, 9, 10]
    assert ali.states is None  # H without the hmm_states attribute


def test_triphone_alignment_keeps_the_hmm_state_of_every_frame(toy_lang, toy_topo):
    """With ``hmm_states`` the alignment through the context-dependent H also says which
    monophone HMM state every frame is in (what tree statistics and transition estimation need)."""
    from hybrid_asr.align import viterbi_align

    truth = [8, 9, 10, 0, 0, 1, 1, 4, 5, 5, 8, 9, 10]
    scores = torch.full((len(truth), 13), -10.0)
    scores[torch.arange(len(truth)), torch.tensor(truth)] = 0.0
    h = make_h_cd(toy_topo, toy_tree(), hmm_states=True)
    assert h.hmm_states.shape == h.labels.shape
    ali = viterbi_align(TrainingGraphCompiler(toy_lang, toy_topo, h), ["AB"], [scores])[0]
    assert ali.pdfs.tolist() == truth
    pdf = toy_topo.pdf_id
    want = ([pdf("SIL", 0), pdf("SIL", 1), pdf("SIL", 2)] + [pdf("A", 0)] * 2 + [pdf("A", 1)] * 2
            + [pdf("B", 0)] + [pdf("B", 1)] * 2 + [pdf("SIL", 0), pdf("SIL", 1), pdf("SIL", 2)])
    assert ali.states.tolist() == want


@pytest.mark.parametrize("construction", ["mkgraph", "compose"])
def test_hclg_accepts_exactly_the_triphone_senones_of_a_word(toy_lang, toy_topo, construction):
    """Enumerate every 4-frame path of HCLG (one frame per HMM state, no silence): the paths that
    output the word AB carry exactly A-before-B + B-after-A senones, those that output BA carry
    B-at-start + A-at-end senones, whatever else the LM allows; for both graph constructions."""
    hclg = make_decoding_graph(toy_lang, toy_topo, toy_tree(),
                               GraphConfig(self_loop_scale=1.0, construction=construction))
    by_words = {}
    for labels, words, _ in enumerate_paths(hclg, 5, "aux_labels", exact_arcs=5):
        by_words.setdefault(tuple(toy_lang.word_table[w] for w in words), set()).add(labels)
    assert by_words[("AB",)] == {(1, 2, 5, 6)}  # senones 0 1 4 5, labels are senone + 1
    assert by_words[("BA",)] == {(7, 8, 3, 4)}  # senones 6 7 2 3
    # AA alone (A with boundary contexts -> senones 2 3) over 4 frames: the three ways to spread
    # 2 states over 4 frames. Its homophone A shares these inputs with a lower LM score; k2's
    # epsilon removal (tropical semiring) keeps only the better one, as Viterbi search would.
    assert by_words[("AA",)] == {(3, 3, 3, 4), (3, 3, 4, 4), (3, 4, 4, 4)}
    assert by_words[("AA", "AA")] == {(3, 4, 3, 4)}  # both A's have a non-B right context
