"""Chain models (issue 23): one-state topology, a tree on subsampled alignments, training from
scratch with LF-MMI at a third of the frame rate, decoding at acoustic and self-loop scale 1.0."""

import json

import numpy as np
import pytest

from conftest import run
from hybrid_asr.errors import AlignmentError
from hybrid_asr.hmm import HmmTopology
from hybrid_asr.hmm.alignment import frame_phones, load_alignment_dir, segments_from_marks
from hybrid_asr.hmm.tree import DecisionTree
from hybrid_asr.hmm.tree_stats import BOUNDARY, accumulate_tree_stats


def test_topology_conversion_keeps_every_phone_and_shares_its_frames_evenly():
    from hybrid_asr.align.convert import to_topology

    old = HmmTopology(["SIL", "AA", "B"], [1, 2, 3], [3, 3, 3])
    marks = np.zeros(12, dtype=np.int32)
    marks[[0, 3, 9]] = [1, 2, 3]  # SIL 0-2, AA 3-8, B 9-11
    one = to_topology({"u": marks}, old, HmmTopology(["SIL", "AA", "B"], [1, 2, 3], [1, 1, 1]))["u"]
    assert one.tolist() == [0] * 3 + [1] * 6 + [2] * 3
    two = to_topology({"u": marks}, old, HmmTopology(["SIL", "AA", "B"], [1, 2, 3], [2, 2, 2]))["u"]
    assert two.tolist() == [0, 0, 1, 2, 2, 2, 3, 3, 3, 4, 4, 5]
    with pytest.raises(AlignmentError, match="utterance u: phone SIL at frame 0 has 3 frame"):
        to_topology({"u": marks}, old, HmmTopology(["SIL", "AA", "B"], [1, 2, 3], [4, 4, 4]))


def test_one_state_topology_crosses_a_phone_in_one_output_frame(toy_lang):
    """The chain topology's numerator graph of the one-word transcript "AB" (phones A B, optional
    silence at either end), enumerated at 2, 3 and 4 output frames: every phone takes at least one
    frame and any number more, nothing else."""
    from fsa_paths import enumerate_paths
    from hybrid_asr.graph.training import TrainingGraphCompiler

    topo = HmmTopology.create(toy_lang.phones, [toy_lang.phone_table[p] for p in toy_lang.phones], {}, 1)
    graph = TrainingGraphCompiler(toy_lang, topo).compile(["AB"])[0]
    a, b, sil = (topo.pdf_id(p, 0) + 1 for p in ("A", "B", "SIL"))
    got = {t: {labels for labels, _, _ in enumerate_paths(graph, t + 1, None, exact_arcs=t + 1)} for t in (1, 2, 3, 4)}
    assert got[1] == set()
    assert got[2] == {(a, b)}
    assert got[3] == {(a, a, b), (a, b, b), (sil, a, b), (a, b, sil)}
    # at 4 frames: silence (any length, or none) + A^i + B^j + silence, i, j >= 1
    assert got[4] == {(sil,) * k + (a,) * i + (b,) * j + (sil,) * (4 - k - i - j)
                      for k in range(3) for i in range(1, 4) for j in range(1, 4) if k + i + j <= 4}


def test_tree_statistics_at_a_subsampled_rate_count_every_third_frame():
    topo = HmmTopology(["SIL", "AA"], [1, 2], [1, 1])
    marks = np.zeros(10, dtype=np.int32)
    marks[[0, 4]] = [1, 2]
    states = np.array([0] * 4 + [1] * 6)
    feats = np.arange(10, dtype=np.float64)[:, None]
    stats = accumulate_tree_stats({"u": states}, {"u": marks}, lambda u: feats, topo, frame_subsampling=3)
    sil, aa = stats[(BOUNDARY, "SIL", "AA", 0)], stats[("SIL", "AA", BOUNDARY, 0)]
    assert (sil.count, aa.count) == (2.0, 2.0)  # frames 0, 3 and 6, 9
    assert (sil.sum.tolist(), aa.sum.tolist()) == ([3.0], [15.0])


@pytest.fixture(scope="module")
def chain_exp(fsdd_exp, tmp_path_factory):
    """The FSDD system's alignments in a chain topology and tree, and a chain TDNN trained on them."""
    d = tmp_path_factory.mktemp("chain")
    run("convert-topology", fsdd_exp / "ali1", d / "ali_1state", "--num-states", 1)
    run("build-tree", fsdd_exp / "fbank/train", d / "ali_1state", d / "tree", "--num-leaves", 40,
        "--frame-subsampling-factor", 3, "--min-gain", 50)
    run("convert-ali", d / "ali_1state", d / "tree", d / "ali")
    run("train-chain", fsdd_exp / "fbank/train", d / "ali", fsdd_exp / "lang", d / "chain", "--model", "tdnn",
        "--subsampling-factor", 3, "--hidden-dim", 128, "--kernels", "3,3,3,3", "--dilations", "1,1,3,3",
        "--epochs", 8, "--batch-size", 1500, "--lr", 3e-3, "--final-lr", 3e-4, "--dropout", 0)
    run("make-graph", d / "chain", fsdd_exp / "lang")
    run("decode-dataset", d / "chain", fsdd_exp / "fbank/test", d / "decode")
    return d


def test_chain_alignments_keep_the_phones_and_the_tree_maps_every_seen_context(fsdd_exp, chain_exp):
    alis, marks, topo = load_alignment_dir(chain_exp / "ali_1state")
    _, old_marks, _ = load_alignment_dir(fsdd_exp / "ali1")
    assert topo.num_states == [1] * len(topo.phones)
    for utt, m in old_marks.items():
        assert np.array_equal(frame_phones(marks[utt]), frame_phones(m))
        assert np.array_equal(alis[utt], np.repeat([topo.pdf_id(p, 0) for p, _, _ in
                                                    segments_from_marks(m, topo.phone_names)],
                                                   [e - s for _, s, e in segments_from_marks(m, topo.phone_names)]))
    tree = DecisionTree.load(chain_exp / "tree" / "tree.json")
    info = json.loads((chain_exp / "tree" / "tree_info.json").read_text())
    assert info["config"]["frame_subsampling_factor"] == 3
    for m in marks.values():
        phones = [BOUNDARY] + [p for p, _, _ in segments_from_marks(m, topo.phone_names)] + [BOUNDARY]
        for i in range(1, len(phones) - 1):
            assert 0 <= tree.pdf_id(phones[i - 1], phones[i], phones[i + 1], 0) < tree.num_pdfs


def test_chain_model_from_scratch_decodes_at_scale_one_without_priors(chain_exp):
    import torch

    model = chain_exp / "chain"
    assert json.loads((model / "model_config.json").read_text())["subsampling_factor"] == 3
    assert torch.count_nonzero(torch.load(model / "priors.pt")) == 0
    assert json.loads((model / "search_config.json").read_text())["acoustic_scale"] == 1.0
    assert json.loads((model / "graph_info.json").read_text())["self_loop_scale"] == 1.0
    assert json.loads((model / "sequence.json").read_text())["initial_model"] == "random"
    assert json.loads((model / "sequence_config.json").read_text())["num_tolerance"] == 5  # the chain default
    stats = json.loads((chain_exp / "decode" / "decode_stats.json").read_text())
    assert list(stats["wer"]) == ["1"]  # the stored scale
    assert stats["wer"]["1"] < 25.0, stats  # 10 digits: chance is 90%; the DNN of fsdd_exp gets 1-2%


def test_make_graph_option_overrides_the_chain_models_self_loop_scale(fsdd_exp, chain_exp, tmp_path):
    import shutil

    copy = tmp_path / "chain"
    shutil.copytree(chain_exp / "chain", copy)
    run("make-graph", copy, fsdd_exp / "lang", "--self-loop-scale", 0.5)
    assert json.loads((copy / "graph_info.json").read_text())["self_loop_scale"] == 0.5
    (copy / "graph_defaults.json").write_text('{"self_loop_scale": "x"}')
    from hybrid_asr.cli.main import main

    assert main(["make-graph", str(copy), str(fsdd_exp / "lang")]) != 0


def test_subsampled_chain_model_gives_word_and_phone_times_at_its_frame_rate(fsdd_exp, chain_exp, capsys):
    """decode (CTM with confidences) and align-audio of a frame-subsampling-3 model: every time is a
    whole number of output frames (30 ms), phones tile the file, and the words are the transcript's."""
    import soundfile

    from hybrid_asr.cli.main import main
    from conftest import FSDD

    files = [FSDD / "recordings" / f"{d}_lucas_1.wav" for d in (3, 7)]
    assert main(["--num-threads", "1", "decode", str(chain_exp / "chain"), *map(str, files), "--output", "ctm",
                 "--no-trim"]) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 2
    for (rec, channel, start, dur, word, conf), f in zip(lines, files):
        seconds = soundfile.info(str(f)).duration
        for t in (float(start), float(dur)):
            assert abs(t / 0.03 - round(t / 0.03)) < 1e-6, lines
        assert 0 < float(dur) and float(start) + float(dur) <= seconds + 0.03
        assert 0 <= float(conf) <= 1
    for f, word in zip(files, ("THREE", "SEVEN")):
        assert main(["--num-threads", "1", "align-audio", str(chain_exp / "chain"), str(fsdd_exp / "lang"), str(f),
                     word]) == 0
        phones = [line.split() for line in capsys.readouterr().out.splitlines() if line.strip()]
        starts, durs = [float(p[2]) for p in phones], [float(p[3]) for p in phones]
        assert starts[0] == 0 and all(abs(a + d - b) < 1e-6 for a, d, b in zip(starts, durs, starts[1:]))
        assert all(abs(t / 0.03 - round(t / 0.03)) < 1e-6 for t in starts + durs)
        assert [p[4] for p in phones if p[4] != "SIL"] == {"THREE": ["TH", "R", "IY"], "SEVEN": ["S", "EH", "V", "AH", "N"]}[word]
