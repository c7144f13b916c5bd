"""H topology, training graphs (H o L o text) and the decoding graph HLG."""

import copy
import math

import pytest
import torch
from fsa_paths import enumerate_paths

from hybrid_asr.decoding import SearchConfig, decode_scores
from hybrid_asr.graph import GraphConfig, TrainingGraphCompiler, add_self_loops, make_decoding_graph, make_h
from hybrid_asr.graph.h import HmmLabels


def test_h_arc_and_state_counts(toy_topo):
    H = make_h(toy_topo)
    P, S = len(toy_topo.phones), toy_topo.num_pdfs  # 4 phones, 3 + 2 + 2 + 2 = 9 pdfs
    assert (P, S) == (4, 9)
    assert H.shape[0] == S + 2
    assert H.num_arcs == P + (2 * S - P) + P * P + P
    assert int((H.labels == 0).sum()) == 0  # epsilon-free input: every arc consumes a frame
    entries = H.aux_labels[H.aux_labels > 0]
    assert entries.numel() == P + P * P  # a phone is emitted exactly where it is entered
    assert set(entries.tolist()) == set(toy_topo.phone_ids)


@pytest.mark.parametrize("scale", [1.0, 0.3])
def test_h_transition_scores(toy_topo, scale):
    topo = copy.deepcopy(toy_topo)  # the session fixture stays as it was
    topo.self_loop_prob = [0.5] * topo.num_pdfs
    topo.self_loop_prob[topo.pdf_id("A", 0)] = 0.8
    H = make_h(topo, self_loop_scale=scale)
    a0 = topo.pdf_id("A", 0) + 1
    a1 = topo.pdf_id("A", 1) + 1
    arcs = H.arcs.values()[:, :3]
    loop = [float(sc) for (s, d, l), sc in zip(arcs.tolist(), H.scores) if l == a0 and s == d]
    fwd = [float(sc) for (s, d, l), sc in zip(arcs.tolist(), H.scores) if l == a1 and s != d]
    assert loop == [pytest.approx(scale * math.log(0.8), abs=1e-5)]
    assert fwd == [pytest.approx(scale * math.log(0.2), abs=1e-5)]


def _pdfs(topo, *phones):
    return tuple(topo.pdf_id(p, s) + 1 for p in phones for s in range(topo.states_of(p)))


def test_training_graph_accepts_exactly_the_hmm_sequences(toy_lang, toy_topo):
    graph = TrainingGraphCompiler(toy_lang, toy_topo).compile(["AB"])[0]
    ab = _pdfs(toy_topo, "A", "B")  # a0 a1 b0 b1
    sil = _pdfs(toy_topo, "SIL")
    # 4 frames: only the minimal path
    assert {p[0] for p in enumerate_paths(graph, 5, None, exact_arcs=5)} == {ab}
    # 5 frames: one of the four states repeated once, no room for silence
    five = {p[0] for p in enumerate_paths(graph, 6, None, exact_arcs=6)}
    assert five == {ab[:i + 1] + ab[i:] for i in range(4)}
    # 7 frames: silence before or after, or 3 extra repeats (C(6, 3) = 20 ways)
    seven = {p[0] for p in enumerate_paths(graph, 8, None, exact_arcs=8)}
    assert sil + ab in seven and ab + sil in seven
    assert len(seven) == 2 + 20
    # phone labels mark the first frame of every phone
    phones = {tuple(p[1]) for p in enumerate_paths(graph, 5, "phones", exact_arcs=5)}
    assert phones == {(toy_lang.phone_table["A"], toy_lang.phone_table["B"])}


def test_training_graph_pronunciation_variants_and_oov(toy_lang, toy_topo):
    compiler = TrainingGraphCompiler(toy_lang, toy_topo)
    graphs = compiler.compile(["A", "NOT-A-WORD"])
    a = _pdfs(toy_topo, "A")
    assert {p[0] for p in enumerate_paths(graphs[0], 3, None, exact_arcs=3)} == {a}
    spn = _pdfs(toy_topo, "SPN")  # OOV -> <UNK> -> SPN
    assert {p[0] for p in enumerate_paths(graphs[1], 3, None, exact_arcs=3)} == {spn}


def test_hlg_is_epsilon_free_and_decodes_peaked_scores(toy_lang, toy_topo):
    hlg = make_decoding_graph(toy_lang, toy_topo, None,
                              GraphConfig(self_loop_scale=1.0, construction="compose"))
    assert int((hlg.labels == 0).sum()) == 0
    # frames: SIL SIL SIL A A B B (pdf states with 1-2 frames each), then SIL
    seq = [toy_topo.pdf_id("SIL", s) for s in range(3)] + [toy_topo.pdf_id("A", 0)] * 2 + \
          [toy_topo.pdf_id("A", 1), toy_topo.pdf_id("B", 0), toy_topo.pdf_id("B", 1)] * 1 + \
          [toy_topo.pdf_id("B", 1)] + [toy_topo.pdf_id("SIL", s) for s in range(3)]
    scores = torch.full((len(seq), toy_topo.num_pdfs), -20.0)
    scores[torch.arange(len(seq)), torch.tensor(seq)] = 0.0
    words = decode_scores(hlg, [scores], SearchConfig(acoustic_scale=1.0))
    assert [toy_lang.word_table[w] for w in words[0]] == ["AB"]


def _best(graph, scores):
    """Exact (unpruned) Viterbi: total score and words of the best path."""
    import k2

    segs = torch.tensor([[0, 0, scores.shape[1]]], dtype=torch.int32)
    best = k2.shortest_path(k2.intersect_dense(graph, k2.DenseFsaVec(scores, segs), output_beam=1000.0),
                            use_double_scores=True)
    words = best.aux_labels.values if hasattr(best.aux_labels, "values") else best.aux_labels
    return float(best.get_tot_scores(True, False)), [int(w) for w in words.tolist() if w > 0]


@pytest.mark.parametrize("context_dependent", [False, True])
@pytest.mark.parametrize("minimize, tolerance", [(False, 1e-3), (True, 2e-2)])
def test_mkgraph_and_composed_graph_give_the_same_best_paths(toy_lang, toy_topo, context_dependent, minimize,
                                                             tolerance):
    """The determinized graph (Kaldi's C, the H over its windows, self-loops added last) and the
    composed one (our H with the context expansion built in) are equivalent in the tropical
    semiring: on random scores of any length the best path has the same score and words (exact
    search, no pruning), with non-uniform self-loop probabilities and a scale. The toy lexicon has
    a homophone pair and a word that is a prefix of another (disambiguation symbols), and the
    tree's senones depend on both contexts. Minimization quantizes weights to 1/1024 per arc,
    hence its looser tolerance."""
    from test_h_cd import toy_tree

    saved = list(toy_topo.self_loop_prob)
    gen = torch.Generator().manual_seed(0)
    toy_topo.self_loop_prob = (torch.rand(toy_topo.num_pdfs, generator=gen) * 0.8 + 0.1).tolist()
    try:
        tree = toy_tree() if context_dependent else None
        graphs = [make_decoding_graph(toy_lang, toy_topo, tree, GraphConfig(self_loop_scale=0.5, construction=c,
                                                                           minimize=minimize))
                  for c in ("compose", "mkgraph")]
    finally:
        toy_topo.self_loop_prob = saved
    num_labels = int(graphs[0].labels.max())
    assert int(graphs[1].labels.max()) <= num_labels  # no HMM-state or disambiguation label left
    assert int((graphs[1].labels == 0).sum()) == 0
    words_seen = set()
    for frames in [f for f in range(3, 40) for _ in range(3)]:
        scores = torch.randn(1, frames, num_labels + 1, generator=gen) * 3
        scores[:, :, 0] = -1e4
        (s0, w0), (s1, w1) = (_best(g, scores) for g in graphs)
        assert s1 == pytest.approx(s0, abs=tolerance) and w1 == w0
        words_seen.add(tuple(w0))
    assert len(words_seen) > 20  # the random scores reach many different word sequences


def test_window_h_maps_triphone_windows_to_senone_chains(toy_lang, toy_topo):
    """The H over Kaldi's context windows: a triphone window becomes the chain of the senones the
    tree gives it, its index output on the chain's first arc; disambiguation windows and #-1
    become self-loops on the hub with labels >= first_disambig; a bad window is an error."""
    from test_h_cd import toy_tree

    from hybrid_asr.graph.h_windows import make_window_h

    ids = toy_lang.phone_table
    a, b, first = ids["A"], ids["B"], toy_lang.first_phone_disambig
    windows = [[], [0], [0, a, b], [a, b, 0], [b, a, 0], [-first], [-(first + 1)]]
    H, labels = make_window_h(toy_topo, toy_tree(), windows, 1.0, first, num_disambig=2)
    paths = {}
    for line in H.to_str().strip().splitlines():
        f = line.split()
        if len(f) >= 4:
            paths.setdefault(int(f[0]), []).append((int(f[1]), int(f[2]), int(f[3])))
    hub = {out: (dst, lab) for dst, lab, out in paths[0]}
    for window, senones in ((2, (0, 1)), (3, (4, 5)), (4, (2, 3))):  # A before B; B after A; A after B
        dst, lab = hub[window]
        seq = [int(labels.pdf[lab])]
        (nxt, lab2, out2), = paths[dst]
        seq.append(int(labels.pdf[lab2]))
        assert tuple(seq) == senones and out2 == 0
        assert paths[nxt] == [(0, 0, 0)]  # back to the hub on epsilon
    assert hub[1] == (0, labels.first_disambig + 2)  # #-1
    assert hub[5] == (0, labels.first_disambig) and hub[6] == (0, labels.first_disambig + 1)
    with pytest.raises(ValueError, match="not a window"):
        make_window_h(toy_topo, toy_tree(), [[], [a, b]], 1.0, first, num_disambig=2)
    with pytest.raises(ValueError, match="disambiguation"):
        make_window_h(toy_topo, toy_tree(), [[], [-(first + 5)]], 1.0, first, num_disambig=2)


def test_add_self_loops_splits_a_state_entered_from_two_hmm_states():
    """State 1 is entered by HMM-state labels 1 and 2 (different self-loops): it is split in
    two, each copy with its own self-loop and a copy of the outgoing arc; labels become pdf + 1."""
    import k2

    labels = HmmLabels(pdf=torch.tensor([-1, 4, 7, 9]), loop_score=torch.tensor([0.0, -0.1, -0.2, -0.3]))
    g = k2.Fsa.from_str("0 1 1 0.5\n0 1 2 0.25\n1 2 3 1.0\n2 3 -1 0.0\n3")
    g.aux_labels = k2.RaggedTensor([[5], [6], [], [-1]])
    out = add_self_loops(g, labels)
    arcs = sorted((s, d, lab, round(float(sc), 3)) for (s, d, lab), sc in zip(out.arcs.values()[:, :3].tolist(),
                                                                            out.scores))
    assert out.shape[0] == 5  # start, two copies of state 1, state 2, final
    assert arcs == sorted([(0, 1, 5, 0.5), (0, 3, 8, 0.25),   # pdf 4 -> label 5, pdf 7 -> 8
                           (1, 1, 5, -0.1), (3, 3, 8, -0.2),   # each copy's self-loop
                           (1, 2, 10, 1.0), (3, 2, 10, 1.0),   # the outgoing arc copied
                           (2, 2, 10, -0.3), (2, 4, -1, 0.0)])
    words = {(s, d): w for (s, d, _), w in zip(out.arcs.values()[:, :3].tolist(), out.aux_labels.tolist())}
    assert words[(0, 1)] == [5] and words[(0, 3)] == [6] and words[(1, 1)] == []


def test_estimate_transitions_is_the_maximum_likelihood_self_loop():
    """p(loop) = (frames - visits) / frames per state, clipped to [floor, 1 - floor]; unseen
    states keep their value."""
    from hybrid_asr.hmm import HmmTopology

    topo = HmmTopology.create(["SIL", "A"], [1, 2], {"SIL": 1}, 2)  # pdfs: SIL 0, A 1 and 2
    before = list(topo.self_loop_prob)
    # pdf 0: 6 frames in 2 visits; pdf 1: 3 frames in 3 visits of one frame; pdf 2 never seen
    topo.estimate_transitions([[0, 0, 0, 1, 0, 0, 0], [1], [1]])
    assert topo.self_loop_prob[0] == pytest.approx(4 / 6)
    assert topo.self_loop_prob[1] == pytest.approx(0.05)  # (3 - 3) / 3 = 0, clipped to the floor
    assert topo.self_loop_prob[2] == before[2]
    topo.estimate_transitions([[2] * 1000], floor=0.01)
    assert topo.self_loop_prob[2] == pytest.approx(0.99)  # 999 / 1000 clipped to 1 - floor


def test_remove_disambig_leaves_its_input_as_it_was():
    """Disambiguation symbols become epsilons in the result only; the caller's FSA keeps them
    (k2's rule: the input is not modified)."""
    import k2

    from hybrid_asr.graph.decoding_graph import _remove_disambig

    fsa = k2.Fsa.from_str("0 1 1 3 0.5\n1 2 9 12 0.25\n2 3 -1 -1 0\n3", num_aux_labels=1)
    fsa.aux_labels = k2.RaggedTensor([[3], [12], [-1]])
    out = _remove_disambig(fsa, first_label_disambig=9, first_word_disambig=10)
    assert fsa.labels.tolist() == [1, 9, -1] and fsa.aux_labels.tolist() == [[3], [12], [-1]]
    assert 9 not in out.labels.tolist() and all(w < 10 for row in out.aux_labels.tolist() for w in row)


def test_lg_is_built_once_per_lang_dir_and_rebuilt_when_g_changes(toy_lang, tmp_path, monkeypatch):
    """make-graph's LG cache: the second request reads cache/LG.fst (the builder is not called)
    and gives the same LG; a lang dir whose G.pt changed gets a new one."""
    import shutil

    import hybrid_asr.stages.graph as stage
    from hybrid_asr.graph.openfst import from_openfst
    from hybrid_asr.lang import Lang

    lang_dir = tmp_path / "lang"
    shutil.copytree(toy_lang.path, lang_dir)
    lang = Lang(lang_dir)
    built = from_openfst(stage.cached_lg_openfst(lang), ragged=True)
    assert (lang_dir / "cache" / "LG.fst").is_file() and (lang_dir / "cache" / "LG.json").is_file()

    def no_build(*args):
        raise AssertionError("LG built again")

    monkeypatch.setattr(stage, "make_lg_openfst", no_build)
    cached = from_openfst(stage.cached_lg_openfst(Lang(lang_dir)), ragged=True)
    assert torch.equal(cached.arcs.values(), built.arcs.values()) and torch.equal(cached.scores, built.scores)
    assert cached.aux_labels.values.tolist() == built.aux_labels.values.tolist()
    with open(lang_dir / "G.pt", "ab") as f:  # another G (the key is its SHA-256)
        f.write(b"\0")
    with pytest.raises(AssertionError, match="LG built again"):
        stage.cached_lg_openfst(Lang(lang_dir))
