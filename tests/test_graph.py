"""H topology, training graphs (H o L o text) and the decoding graph HLG."""

import pytest
import torch
from fsa_paths import enumerate_paths

from hybrid_asr.decoding import SearchConfig, decode_scores
from hybrid_asr.graph import TrainingGraphCompiler, make_h, make_hlg


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


def test_h_transition_scores(toy_topo):
    toy_topo.self_loop_prob = [0.5] * toy_topo.num_pdfs
    toy_topo.self_loop_prob[toy_topo.pdf_id("A", 0)] = 0.8
    H = make_h(toy_topo)
    a0 = toy_topo.pdf_id("A", 0) + 1
    a1 = toy_topo.pdf_id("A", 1) + 1
    arcs = H.arcs.values()[:, :3]
    loop = [float(sc) for (s, d, l), sc in zip(arcs.tolist(), H.scores) if l == a0 and s == d]
    fwd = [float(sc) for (s, d, l), sc in zip(arcs.tolist(), H.scores) if l == a1 and s != d]
    assert loop == [pytest.approx(torch.log(torch.tensor(0.8)).item(), abs=1e-5)]
    assert fwd == [pytest.approx(torch.log(torch.tensor(0.2)).item(), abs=1e-5)]
    toy_topo.self_loop_prob = [0.5] * toy_topo.num_pdfs


def _pdfs(topo, *phones):
    return tuple(topo.pdf_id(p, s) + 1 for p in phones for s in range(topo.num_states[topo.phones.index(p)]))


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
    hlg = make_hlg(toy_lang, toy_topo)
    assert int((hlg.labels == 0).sum()) == 0
    # frames: SIL SIL SIL A A B B (pdf states with 1-2 frames each), then SIL
    seq = [toy_topo.pdf_id("SIL", s) for s in range(3)] + [toy_topo.pdf_id("A", 0)] * 2 + \
          [toy_topo.pdf_id("A", 1), toy_topo.pdf_id("B", 0), toy_topo.pdf_id("B", 1)] * 1 + \
          [toy_topo.pdf_id("B", 1)] + [toy_topo.pdf_id("SIL", s) for s in range(3)]
    scores = torch.full((len(seq), toy_topo.num_pdfs), -20.0)
    scores[torch.arange(len(seq)), torch.tensor(seq)] = 0.0
    words = decode_scores(hlg, [scores], SearchConfig(acoustic_scale=1.0))
    assert [toy_lang.word_table[w] for w in words[0]] == ["AB"]
