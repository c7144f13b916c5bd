"""Sequence training (issue 11): phone LM, denominator and numerator graphs, the MMI objective
against brute force and finite differences, and train-sequence end to end on FSDD."""

import itertools
import json
import math

import k2
import numpy as np
import pytest
import torch
from conftest import run
from fsa_paths import enumerate_paths

from hybrid_asr.graph import TrainingGraphCompiler, make_h
from hybrid_asr.graph.denominator import add_leaky_hmm, initial_probs, make_lfmmi_denominator
from hybrid_asr.lang.phone_lm import EOS, PhoneLm, PhoneLmConfig, phone_sequences
from hybrid_asr.training.sequence import SequenceConfig, alignment_mask, mmi_objective

EXACT = SequenceConfig(den_pruned=False, den_output_beam=1e4, num_output_beam=1e4)


def _state_sums(fsa: k2.Fsa) -> torch.Tensor:
    """Total probability of the arcs leaving every non-final state."""
    src = fsa.arcs.values()[:, 0].long()
    n = int(fsa.shape[0]) - 1
    total = torch.zeros(n, dtype=torch.float64).index_add_(0, src, fsa.scores.detach().double().exp())
    return total


# ---------------------------------------------------------------- phone LM
SEQS = [[1, 2, 3], [1, 2], [3, 3, 1, 2], [2, 1], [1, 2, 3, 3]]


@pytest.mark.parametrize("config", [PhoneLmConfig(1, 1, 0), PhoneLmConfig(2, 2, 0), PhoneLmConfig(3, 3, 0),
                                    PhoneLmConfig(4, 2, 3), PhoneLmConfig(4, 3, 0)])
def test_phone_lm_probabilities_sum_to_one_per_history(config):
    lm = PhoneLm(SEQS, [1, 2, 3, 4], config)
    for h in list(lm.counts) + [(-1, 4), (4, 4, 4)]:
        assert sum(lm.distribution(h).values()) == pytest.approx(1.0, abs=1e-12)
    fsa = lm.to_fsa()
    assert torch.allclose(_state_sums(fsa), torch.ones(int(fsa.shape[0]) - 1, dtype=torch.float64), atol=1e-6)
    assert int((fsa.labels == 0).sum()) == 0  # no back-off epsilons


def test_phone_lm_is_witten_bell():
    lm = PhoneLm(SEQS, [1, 2, 3, 4], PhoneLmConfig(2, 2, 0))
    # unigram: counts over phones and EOS (15 phones + 5 ends = 20 tokens, 4 types seen), uniform base 1/5
    c = {1: 5, 2: 5, 3: 5, 4: 0, EOS: 5}
    uni = {w: (c[w] + 4 * 0.2) / (20 + 4) for w in c}
    for w, p in uni.items():
        assert lm.prob(w, ()) == pytest.approx(p)
    # after phone 2: 3 twice, 1 once, EOS twice (5 tokens, 3 types)
    after2 = {1: 1, 2: 0, 3: 2, 4: 0, EOS: 2}
    for w, k in after2.items():
        assert lm.prob(w, (2,)) == pytest.approx((k + 3 * uni[w]) / (5 + 3))
    # a longer history uses only the last order - 1 phones
    assert lm.prob(3, (1, 1, 2)) == lm.prob(3, (2,))


def test_phone_lm_fsa_scores_sequences_with_the_lm():
    lm = PhoneLm(SEQS, [1, 2, 3, 4], PhoneLmConfig(3, 2, 1))  # trigram, one trigram history kept
    fsa = lm.to_fsa()
    paths = {labels: score for labels, _, score in enumerate_paths(fsa, 5, None)}
    kept = set(lm.kept_histories())
    for seq in [(1, 2, 3), (2, 1), (4,), (1, 2, 3, 3)]:
        expected, hist = 0.0, (-1,)
        for w in list(seq) + [EOS]:
            h = hist
            while h not in kept:  # pruned histories back off to their longest kept suffix
                h = h[1:]
            expected += math.log(lm.prob(w, h))
            hist = (hist + (w,))[-2:]
        assert paths[seq] == pytest.approx(expected, abs=1e-5)


def test_phone_sequences_from_marks():
    marks = [np.array([3, 0, 0, 5, 0, 3]), np.array([1])]
    assert phone_sequences(marks) == [[3, 5, 3], [1]]


# ---------------------------------------------------------------- graphs
def test_denominator_accepts_the_hmm_sequences_of_the_phone_lm(toy_lang, toy_topo):
    ids = {p: toy_lang.phone_table[p] for p in toy_topo.phones}
    lm = PhoneLm([[ids["A"], ids["B"]], [ids["B"]]], toy_topo.phone_ids, PhoneLmConfig(2, 2, 0))
    h = make_h(toy_topo)
    den = make_lfmmi_denominator(h, lm.to_fsa())
    assert int((den.labels == 0).sum()) == 0
    # 4 frames: every phone sequence whose states fill 4 frames; score = H transitions + LM
    paths = {labels: score for labels, _, score in enumerate_paths(den, 5, None, exact_arcs=5)}
    a, b = [toy_topo.pdf_id("A", j) + 1 for j in range(2)], [toy_topo.pdf_id("B", j) + 1 for j in range(2)]
    ab = tuple(a + b)
    h_paths = {(lab, outs): s for lab, outs, s in enumerate_paths(h, 5, "aux_labels", exact_arcs=5)}
    expected = h_paths[(ab, (ids["A"], ids["B"]))] + sum(
        math.log(lm.prob(w, hist)) for w, hist in [(ids["A"], (-1,)), (ids["B"], (ids["A"],)), (EOS, (ids["B"],))])
    assert paths[ab] == pytest.approx(expected, abs=1e-4)
    assert len(paths) == len({lab for lab, _ in h_paths})  # every H path of 4 frames, once


def test_leaky_hmm_adds_the_jump_mass(toy_lang, toy_topo):
    ids = {p: toy_lang.phone_table[p] for p in toy_topo.phones}
    lm = PhoneLm([[ids["A"], ids["B"]], [ids["B"], ids["SIL"]]], toy_topo.phone_ids, PhoneLmConfig(2, 2, 0))
    den = make_lfmmi_denominator(make_h(toy_topo), lm.to_fsa())
    pi = initial_probs(den)
    assert float(pi.sum()) == pytest.approx(1.0) and float(pi[-1]) == 0.0
    leak = 0.1
    leaky = add_leaky_hmm(den, leak)
    assert leaky.shape[0] == den.shape[0] + 1
    # forward of the leaky HMM by hand: after every frame but the last, mass leak * (emitted mass)
    # moves to the states u in proportion to pi(u)
    torch.manual_seed(0)
    T, S = 5, toy_topo.num_pdfs
    x = torch.randn(T, S)
    arcs = den.arcs.values()[:, :3].long()
    w = den.scores.detach().double()
    n = int(den.shape[0])
    alpha = torch.zeros(n, dtype=torch.float64)
    alpha[0] = 1.0
    for t in range(T):
        nxt = torch.zeros(n, dtype=torch.float64)
        emit = arcs[:, 2] != -1
        contrib = alpha[arcs[emit, 0]] * (w[emit] + x[t, arcs[emit, 2] - 1].double()).exp()
        nxt.index_add_(0, arcs[emit, 1], contrib)
        if t < T - 1:
            nxt += leak * contrib.sum() * pi
        alpha = nxt
    fin = arcs[:, 2] == -1
    expected = math.log(float((alpha[arcs[fin, 0]] * w[fin].exp()).sum()))
    dense = k2.DenseFsaVec(torch.cat([torch.full((1, T, 1), -1e4), x.unsqueeze(0)], -1),
                           torch.tensor([[0, 0, T]], dtype=torch.int32))
    got = k2.intersect_dense(k2.create_fsa_vec([leaky]), dense, 1e4).get_tot_scores(True, True)
    assert float(got) == pytest.approx(expected, abs=1e-4)
    assert add_leaky_hmm(den, 0.0) is den


@pytest.mark.parametrize("subsampling", [1, 3])
def test_alignment_constrained_numerator_accepts_exactly_the_expected_sequences(toy_lang, toy_topo, subsampling):
    """Numerator = transcript graph held to the alignment +- tolerance: compared with brute force over
    every senone sequence of the output frame count."""
    graph = TrainingGraphCompiler(toy_lang, toy_topo).compile(["AB"])
    a = [toy_topo.pdf_id("A", j) for j in range(2)]
    b = [toy_topo.pdf_id("B", j) for j in range(2)]
    # input-rate alignments; at f = 3, 15 input frames are 5 output frames, where "A B" has 4 paths
    # (one state doubled) and the constraint keeps 3 (not a0 a1 b0 b1 b1: frame 3 is b0's)
    ali = np.array([a[0]] * 3 + [a[1]] * 3 + [b[0]] * 6 + [b[1]] * 3) if subsampling == 3 else \
        np.array([a[0], a[1], a[1], b[0], b[1], b[1]])
    tol = 1
    mask = alignment_mask(ali, toy_topo.num_pdfs, subsampling, tol)
    T = mask.shape[0]
    assert T == -(-len(ali) // subsampling)
    for j in range(T):  # the constraint itself: pdfs of input frames j*f-tol .. j*f+tol
        window = set(ali[max(0, j * subsampling - tol): j * subsampling + tol + 1].tolist())
        assert set(torch.nonzero(mask[j]).squeeze(1).tolist()) == window
    in_graph = {labels for labels, _, _ in enumerate_paths(graph[0], T + 1, None, exact_arcs=T + 1)}
    expected = {seq for seq in in_graph if all(mask[t, seq[t] - 1] for t in range(T))}
    assert expected and expected != in_graph  # the alignment's own path is there, and not every path
    if subsampling == 3:
        assert expected == {tuple(x + 1 for x in seq) for seq in
                            ([a[0], a[0], a[1], b[0], b[1]], [a[0], a[1], a[1], b[0], b[1]], [a[0], a[1], b[0], b[0], b[1]])}
    # what the masked intersection accepts: every sequence with a finite numerator score
    accepted = set()
    for seq in itertools.product(range(toy_topo.num_pdfs), repeat=T):
        if not all(mask[t, s] for t, s in enumerate(seq)):
            continue
        scores = torch.full((1, T, toy_topo.num_pdfs), -math.inf)
        scores[0, torch.arange(T), torch.tensor(seq)] = 0.0
        dense = k2.DenseFsaVec(torch.cat([torch.full((1, T, 1), -1e4), scores], -1),
                               torch.tensor([[0, 0, T]], dtype=torch.int32))
        tot = k2.intersect_dense(graph, dense, 1e4).get_tot_scores(True, True)
        if torch.isfinite(tot).all():
            accepted.add(tuple(s + 1 for s in seq))
    assert accepted == expected


# ---------------------------------------------------------------- the objective
NUM = "0 1 1 0.0\n1 1 1 -0.3\n1 2 2 -0.5\n2 2 2 -0.2\n2 3 -1 0.0\n3"
DEN = ("0 1 1 0.0\n0 2 2 -1.0\n1 1 1 -0.3\n1 2 2 -0.5\n1 3 3 -1.2\n2 2 2 -0.2\n2 1 1 -2.0\n2 3 3 -0.7\n"
       "2 4 -1 0.0\n3 3 3 -0.1\n3 4 -1 -0.4\n4")


def _brute_force_total(fsa_text: str, scores: torch.Tensor) -> float:
    fsa = k2.Fsa.from_str(fsa_text)
    T = scores.shape[0]
    total = 0.0
    for labels, _, w in enumerate_paths(fsa, T + 1, None, exact_arcs=T + 1):
        total += math.exp(w + sum(float(scores[t, lab - 1]) for t, lab in enumerate(labels)))
    return math.log(total)


def _toy_batch(seed=0):
    torch.manual_seed(seed)
    lengths = torch.tensor([6, 5, 4])
    scores = torch.randn(3, 6, 3)
    return scores, lengths


def test_mmi_objective_equals_brute_force():
    scores, lengths = _toy_batch()
    num = k2.create_fsa_vec([k2.Fsa.from_str(NUM)] * 3)
    obj, ok = mmi_objective(scores, lengths, num, k2.Fsa.from_str(DEN), EXACT)
    assert ok.all()
    for i in range(3):
        s = scores[i, : lengths[i]]
        assert float(obj[i]) == pytest.approx(_brute_force_total(NUM, s) - _brute_force_total(DEN, s), abs=1e-4)
    # the pruned denominator search agrees on a graph this small
    pruned, _ = mmi_objective(scores, lengths, num, k2.Fsa.from_str(DEN), SequenceConfig(den_output_beam=1e3))
    assert torch.allclose(pruned, obj, atol=1e-4)


def test_mmi_gradient_matches_finite_differences():
    scores, lengths = _toy_batch(1)
    num = k2.create_fsa_vec([k2.Fsa.from_str(NUM)] * 3)
    den = k2.Fsa.from_str(DEN)
    x = scores.clone().requires_grad_(True)
    obj, _ = mmi_objective(x, lengths, num, den, EXACT)
    obj.sum().backward()
    eps = 1e-2
    for i, t, s in [(0, 0, 0), (0, 3, 1), (1, 4, 2), (2, 1, 1), (2, 3, 0), (1, 2, 2)]:
        plus, minus = scores.clone(), scores.clone()
        plus[i, t, s] += eps
        minus[i, t, s] -= eps
        fd = (float(mmi_objective(plus, lengths, num, den, EXACT)[0].sum())
              - float(mmi_objective(minus, lengths, num, den, EXACT)[0].sum())) / (2 * eps)
        assert float(x.grad[i, t, s]) == pytest.approx(fd, abs=2e-3)
    # padding frames past a sequence's length get no gradient
    assert float(x.grad[2, 4:].abs().sum()) == 0.0


def test_mmi_objective_leaves_out_impossible_numerators():
    scores, lengths = _toy_batch(2)
    too_long = "0 1 1 0.0\n1 2 2 0.0\n2 3 3 0.0\n3 4 1 0.0\n4 5 2 0.0\n5 6 3 0.0\n6 7 -1 0.0\n7"  # 6 frames exactly
    num = k2.create_fsa_vec([k2.Fsa.from_str(too_long)] * 3)
    x = scores.clone().requires_grad_(True)
    obj, ok = mmi_objective(x, lengths, num, k2.Fsa.from_str(DEN), EXACT)
    assert ok.tolist() == [True, False, False]
    assert torch.isfinite(obj[0]) and torch.isnan(obj[1:]).all()
    obj[ok].sum().backward()
    assert torch.isfinite(x.grad).all() and float(x.grad[1:].abs().sum()) == 0.0


# ---------------------------------------------------------------- end to end
@pytest.mark.parametrize("criterion", ["lfmmi", "mmi"])
def test_train_sequence_improves_the_objective_and_decodes(fsdd_exp, tmp_path, criterion):
    from hybrid_asr.bundle import ModelBundle
    from hybrid_asr.features import FeatureStore
    from hybrid_asr.graph import TrainingGraphCompiler
    from hybrid_asr.hmm.alignment import load_alignment_dir
    from hybrid_asr.lang import Lang
    from hybrid_asr.stages.sequence import denominator_graph
    from hybrid_asr.training.sequence import MmiObjective, UtteranceData

    d = fsdd_exp
    out = tmp_path / criterion
    run("align", d / "fbank/train", d / "lang", tmp_path / "ali", "--model", d / "dnn2")
    run("train-sequence", d / "dnn2", d / "fbank/train", d / "lang", tmp_path / "ali", out, "--criterion", criterion,
        "--epochs", 1, "--lr", 1e-4, "--batch-size", 2000)
    info = json.loads((out / "sequence.json").read_text())
    assert info["den_arcs"] > 0 and info["skipped_utterances"] == 0
    assert (out / "metrics.png").is_file() and (out / "checkpoints" / "epoch-1.pt").is_file()
    # the objective on the training data went up
    store, lang = FeatureStore(d / "fbank/train"), Lang(d / "lang")
    ali, marks, _ = load_alignment_dir(tmp_path / "ali")
    before, after = ModelBundle.load(d / "dnn2"), ModelBundle.load(out)
    config = SequenceConfig(criterion=criterion)
    den, kappa, _ = denominator_graph(before, d / "dnn2", list(marks.values()), config)
    m = before.model
    data = UtteranceData(store, ali, list(ali), m.left_context, m.right_context, 1, 4000)
    objective = MmiObjective(TrainingGraphCompiler(lang, before.topology, before.make_h()), den, before.log_priors,
                             kappa, config)
    assert objective.evaluate(after.model, data)["loss"] < objective.evaluate(before.model, data)["loss"]
    # the model dir is complete: graph, decode, WER
    run("make-graph", out, d / "lang", "--acoustic-scale", 0.5)
    run("decode-dataset", out, d / "fbank/test", tmp_path / "decode", "--acoustic-scales", "0.5")
    wer = json.loads((tmp_path / "decode" / "decode_stats.json").read_text())["wer"]["0.5"]
    base = json.loads((d / "decode" / "decode_stats.json").read_text())["wer"]["0.5"]
    assert wer <= base + 10.0


def test_train_sequence_mismatched_parts_give_one_line_errors(fsdd_exp, tmp_path, capsys):
    from hybrid_asr.cli.main import main

    d = fsdd_exp
    cases = [
        # MMI needs the model's decoding graph, and dnn1 has none
        (["train-sequence", d / "dnn1", d / "fbank/train", d / "lang", d / "ali1", tmp_path / "a", "--criterion", "mmi"],
         "HLG.pt"),
        # a directory that is not a lang dir
        (["train-sequence", d / "dnn2", d / "fbank/train", d / "manifests", d / "ali1", tmp_path / "b"], "lang"),
        (["train-sequence", d / "dnn2", d / "fbank/train", d / "lang", d / "ali1", tmp_path / "c", "--leaky-hmm", 1.5],  # invalid
         "argument --leaky-hmm: must be in [0, 1), got 1.5"),
    ]
    for argv, what in cases:
        capsys.readouterr()
        assert main(["--num-threads", "1", *map(str, argv)]) != 0
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and what in err[0], err
        assert not (argv[5] / "bundle.json").exists()


def test_train_sequence_with_frame_subsampling(fsdd_exp, tmp_path):
    """A TDNN with frame subsampling 3: the numerator and denominator run at the output frame rate,
    the cross-entropy targets are every third aligned frame, and the result decodes."""
    from hybrid_asr.features import FeatureStore
    from hybrid_asr.hmm.alignment import load_alignment_dir
    from hybrid_asr.training.sequence import UtteranceData

    d = fsdd_exp
    run("train", d / "fbank/train", d / "ali1", tmp_path / "tdnn", "--model", "tdnn", "--hidden-dim", 128,
        "--subsampling-factor", 3, "--epochs", 3, "--lr", 2e-3, "--chunk-frames", 8)
    out = tmp_path / "tdnn_lfmmi"
    run("train-sequence", tmp_path / "tdnn", d / "fbank/train", d / "lang", d / "ali1", out, "--epochs", 1,
        "--batch-size", 1000)
    ali, _, _ = load_alignment_dir(d / "ali1")
    store = FeatureStore(d / "fbank/train")
    data = UtteranceData(store, ali, list(ali)[:5], 13, 13, 3, 10 ** 6)
    x, lengths, y, texts, alis = data.batch(0)
    for b, a in enumerate(alis):
        t = len(a)
        assert int((y[b] != -100).sum()) == -(-t // 3) and y[b, : -(-t // 3)].tolist() == a[::3].tolist()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert math.isfinite(rows[-1]["train_loss"])
    info = json.loads((out / "sequence.json").read_text())
    assert info["skipped_utterances"] < 0.1 * len(ali)  # 3-state phones need 3 output frames each
    run("make-graph", out, d / "lang", "--acoustic-scale", 0.5)
    run("decode-dataset", out, d / "fbank/test", tmp_path / "decode", "--acoustic-scales", "0.5")
    assert json.loads((tmp_path / "decode" / "decode_stats.json").read_text())["wer"]["0.5"] < 60.0
