"""End to end on real speech: a small FSDD subset through every stage of the recipe, via the
``hybrid-asr`` command line (prepare -> features -> lang (CMUdict) -> flat start -> train ->
realign -> train -> HLG -> decode -> WER), then ``hybrid-asr decode`` on WAV files."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torchaudio
from conftest import FSDD, FSDD_SPEAKERS, corpus_mark, run

from hybrid_asr.cli.main import main
from hybrid_asr.data.kaldi_dir import read_kaldi_map
from hybrid_asr.features import FeatureStore
from hybrid_asr.scoring import read_transcripts, score

pytestmark = corpus_mark(FSDD)

SPEAKERS = FSDD_SPEAKERS


@pytest.fixture(scope="module")
def exp(fsdd_exp):
    return fsdd_exp


def test_lexicon_from_cmudict(exp):
    lexicon = (exp / "lang" / "lexicon.txt").read_text()
    assert "SEVEN S EH V AH N" in lexicon and "ZERO Z IH R OW" in lexicon


def test_alignment_improves_frame_accuracy(exp):
    """The model trained on the realignment classifies test frames better than the flat-start
    model, both measured against the same targets: the test set aligned by the final model."""
    from hybrid_asr.bundle import ModelBundle
    from hybrid_asr.features import FeatureStore
    from hybrid_asr.hmm.alignment import load_alignment_dir
    from hybrid_asr.training import ChunkData
    from hybrid_asr.training.trainer import evaluate

    run("align", exp / "fbank/test", exp / "lang", exp / "ali_test", "--model", exp / "dnn2")
    store, alis = FeatureStore(exp / "fbank/test"), load_alignment_dir(exp / "ali_test")[0]
    acc = {}
    for name in ("dnn1", "dnn2"):
        model = ModelBundle.load(exp / name).model.eval()
        data = ChunkData(store, alis, [u.id for u in store.utterances], model.left_context, model.right_context, 1)
        acc[name] = evaluate(model, data)["frame_acc"]
    assert acc["dnn2"] > acc["dnn1"] + 5.0 and acc["dnn2"] > 60.0, acc


def test_wer_bound_and_reports(exp):
    stats = json.loads((exp / "decode" / "decode_stats.json").read_text())
    assert stats["cmvn"] == "utterance"
    assert stats["utterances"] == 10 * len(SPEAKERS) * 5
    assert stats["wer"]["0.5"] <= 10.0, stats
    timing = json.loads((exp / "decode" / "timing.json").read_text())
    assert stats["audio_seconds"] == pytest.approx(sum(FeatureStore(exp / "fbank/test").utterance(u).frames
                                                       for u in read_transcripts(exp / "decode" / "ref.txt")) / 100)
    assert stats["rtf"]["0.5"] == pytest.approx((timing["model_seconds"] + timing["search_seconds"]["0.5"])
                                                / timing["audio_seconds"]) and 0 < stats["rtf"]["0.5"] < 1
    summary = (exp / "decode" / "wer_ac0.5.txt").read_text()
    m = re.match(r"%WER (\S+) \[ (\d+) / (\d+),", summary)
    assert m and int(m.group(3)) == 150 and float(m.group(1)) == pytest.approx(stats["wer"]["0.5"], abs=0.01)
    details = (exp / "decode" / "wer_ac0.5_details.txt").read_text()
    assert details.count("REF:") == 150 and "HYP:" in details


def _dataset_hyp(exp, utt):
    for line in (exp / "decode" / "hyp_ac0.5.txt").read_text().splitlines():
        if line.split()[0] == utt:
            return line.split()[1:]
    raise KeyError(utt)


def test_decode_command_matches_dataset_decode(exp, tmp_path, capsys):
    utts = ["3_george_0", "7_lucas_1", "0_jackson_2"]
    wavs = [FSDD / "recordings" / f"{u}.wav" for u in utts]
    # the same audio at 44.1 kHz stereo
    wave, rate = torchaudio.load(str(wavs[0]))
    resampled = torchaudio.functional.resample(wave, rate, 44100).repeat(2, 1)
    stereo = tmp_path / "stereo44k.wav"
    torchaudio.save(str(stereo), resampled, 44100)
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF not really")
    capsys.readouterr()
    code = main(["decode", str(exp / "dnn2"), *map(str, wavs), str(bad), str(stereo), "--output", "json"])
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert code == 2  # one file failed, the others were decoded
    assert [o["file"] for o in out] == [str(w) for w in wavs] + [str(bad), str(stereo)]
    for o, utt in zip(out[:3], utts):
        assert o["words"] == _dataset_hyp(exp, utt)
    assert "error" in out[3] and "broken.wav" in out[3]["error"]
    assert out[4]["words"] == out[0]["words"] == ["THREE"]
    # k2's batched search (pieces of several files in one intersection) gives the same results
    for size in ("1", "2", "8"):
        assert main(["decode", str(exp / "dnn2"), *map(str, wavs), str(bad), str(stereo), "--output", "json",
                     "--backend", "k2", "--search-beam", "20", "--batch-size", size]) == 2
        assert [json.loads(x) for x in capsys.readouterr().out.splitlines()] == out, size


def test_missing_model_dir_is_one_line_error(tmp_path, capsys):
    code = main(["decode", str(tmp_path / "nope"), "x.wav"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "nope: model directory does not exist" in err[0]


def test_build_tree_command_on_real_alignments(exp):
    from hybrid_asr.hmm import HmmTopology
    from hybrid_asr.hmm.tree import DecisionTree

    run("build-tree", exp / "fbank/train", exp / "ali1", exp / "tree", "--num-leaves", 60, "--min-count", 20,
        "--min-gain", 10, "--classes", Path(__file__).resolve().parents[1] / "lexicon/arpabet_classes.txt")
    tree = DecisionTree.load(exp / "tree" / "tree.json")
    info = json.loads((exp / "tree" / "tree_info.json").read_text())
    assert info["leaves"] == len(tree.leaf_pdf) <= 60 and info["senones"] == tree.num_pdfs
    topo = HmmTopology.load(exp / "ali1" / "topology.json")
    assert tree.num_pdfs > topo.num_pdfs // 2  # context-dependent: more than a handful of senones
    pdfs = {tree.pdf_id(left, "S", right, s) for left in ("IH", "<b>") for right in ("EH", "<b>") for s in range(3)}
    assert all(0 <= p < tree.num_pdfs for p in pdfs)
    # the tree asks context questions: some phone state gets different senones in different contexts
    phones = [p for p in topo.phones if p not in ("SIL", "SPN")]
    contexts = [(left, right) for left in phones + ["<b>"] for right in phones + ["<b>"]]
    states = [(p, s) for p in phones for s in range(topo.pdf_range(p)[1] - topo.pdf_range(p)[0])]
    assert any(len({tree.pdf_id(left, p, right, s) for left, right in contexts}) > 1 for p, s in states)
    assert "?" in (exp / "tree" / "tree.txt").read_text()


def test_merge_alignments_refuses_shards_of_another_tree(exp, tmp_path):
    """Senone alignment shards converted with two different trees do not merge (same phones, both
    with a tree: only the trees differ); shards of one tree do."""
    from hybrid_asr.cli.main import main

    run("build-tree", exp / "fbank/train", exp / "ali1", tmp_path / "tree_a", "--num-leaves", 40, "--min-count", 20)
    run("build-tree", exp / "fbank/train", exp / "ali1", tmp_path / "tree_b", "--num-leaves", 25, "--min-count", 20)
    for name in ("a", "b"):
        run("convert-ali", exp / "ali1", tmp_path / f"tree_{name}", tmp_path / f"ali_{name}")
    run("merge-alignments", tmp_path / "same", tmp_path / "ali_a", tmp_path / "ali_a")
    assert (tmp_path / "same" / "ali.npz").is_file()
    assert main(["merge-alignments", str(tmp_path / "mixed"), str(tmp_path / "ali_a"), str(tmp_path / "ali_b")]) != 0
    assert not (tmp_path / "mixed" / "ali.npz").exists()


def test_sharded_alignment_and_decoding_equal_one_job(exp, tmp_path):
    """Two shards merged (array-job style) and --nj 2 (local processes) give exactly the single
    job's alignments (flat start too), transition probabilities, hypotheses and WER."""

    from hybrid_asr.hmm.alignment import load_alignment_dir

    for i in range(2):
        run("align", exp / "fbank/train", exp / "lang", tmp_path / f"ali_s{i}", "--model", exp / "dnn1",
            "--num-shards", 2, "--shard-index", i)
    run("merge-alignments", tmp_path / "ali_merged", tmp_path / "ali_s0", tmp_path / "ali_s1")
    run("align", exp / "fbank/train", exp / "lang", tmp_path / "ali_nj", "--model", exp / "dnn1", "--nj", 2)
    one_ali, one_marks, one_topo = load_alignment_dir(exp / "ali1")
    halves = [load_alignment_dir(tmp_path / f"ali_s{i}")[0] for i in range(2)]
    assert len(halves[0]) + len(halves[1]) == len(one_ali) and min(len(h) for h in halves) > 0
    for d in ("ali_merged", "ali_nj"):
        ali, marks, topo = load_alignment_dir(tmp_path / d)
        assert set(ali) == set(one_ali)
        assert all(np.array_equal(ali[u], one_ali[u]) and np.array_equal(marks[u], one_marks[u]) for u in ali)
        assert topo.self_loop_prob == one_topo.self_loop_prob
        assert not (tmp_path / d / "shards").exists()
    run("align", exp / "fbank/train", exp / "lang", tmp_path / "flat_nj", "--flat-start", "--nj", 2)
    flat, flat_marks, flat_topo = load_alignment_dir(exp / "ali0")
    ali, marks, topo = load_alignment_dir(tmp_path / "flat_nj")
    assert set(ali) == set(flat) and all(np.array_equal(ali[u], flat[u]) for u in ali)
    assert all(np.array_equal(marks[u], flat_marks[u]) for u in ali)
    assert topo.self_loop_prob == flat_topo.self_loop_prob
    run("align", exp / "fbank/train", exp / "lang", tmp_path / "flat_s0", "--flat-start", "--num-shards", 2,
        "--shard-index", 0)
    part = load_alignment_dir(tmp_path / "flat_s0")[0]
    speakers = {u.id: u.speaker for u in FeatureStore(exp / "fbank/train").utterances}
    mine = {speakers[u] for u in part}
    assert 0 < len(part) < len(flat) and set(part) == {u for u in flat if speakers[u] in mine}
    for i in range(2):
        run("decode-dataset", exp / "dnn2", exp / "fbank/test", tmp_path / f"dec_s{i}", "--acoustic-scales", "0.5",
            "--num-shards", 2, "--shard-index", i)
        assert not (tmp_path / f"dec_s{i}" / "decode_stats.json").exists()  # a shard alone is not scored
    (tmp_path / "spk2group").write_text("george a\njackson b\n")  # lucas: in no group
    run("merge-decodes", exp / "dnn2", tmp_path / "dec_merged", tmp_path / "dec_s0", tmp_path / "dec_s1",
        "--spk2group", tmp_path / "spk2group")
    run("decode-dataset", exp / "dnn2", exp / "fbank/test", tmp_path / "dec_nj", "--acoustic-scales", "0.5",
        "--nj", 2)
    one = json.loads((exp / "decode" / "decode_stats.json").read_text())
    for d in ("dec_merged", "dec_nj"):
        assert (tmp_path / d / "hyp_ac0.5.txt").read_text() == (exp / "decode" / "hyp_ac0.5.txt").read_text()
        stats = json.loads((tmp_path / d / "decode_stats.json").read_text())
        assert stats["wer"] == one["wer"] and stats["utterances"] == one["utterances"]
        assert (tmp_path / d / "utt2spk").read_text() == (exp / "decode" / "utt2spk").read_text()
    # WER per group: errors of the groups add up to the total, and each group's WER is its own
    groups = json.loads((tmp_path / "dec_merged" / "decode_stats.json").read_text())["wer_by_group"]["0.5"]
    assert sorted(groups) == ["a", "b", "unknown"]
    refs = read_transcripts(exp / "decode" / "ref.txt")
    hyps = read_transcripts(exp / "decode" / "hyp_ac0.5.txt")
    for group, speaker in (("a", "george"), ("b", "jackson"), ("unknown", "lucas")):
        mine = [u for u, spk in read_kaldi_map(exp / "decode" / "utt2spk").items() if spk == speaker]
        assert len(mine) == 50
        assert groups[group] == pytest.approx(score({u: refs[u] for u in mine}, {u: hyps[u] for u in mine}).wer)
    report = (tmp_path / "dec_merged" / "wer_ac0.5.txt").read_text()
    assert "speaker" in report and "george" in report and "\ngroup" in report


def test_sharded_feature_extraction_equals_one_job(exp, tmp_path):
    args = ["--sample-rate", 8000, "--num-mel-bins", 23]
    for i in range(2):
        run("compute-features", exp / "manifests", "test", tmp_path / f"f{i}", *args, "--num-shards", 2,
            "--shard-index", i)
    run("merge-feature-stores", tmp_path / "merged", tmp_path / "f0", tmp_path / "f1")
    run("compute-features", exp / "manifests", "test", tmp_path / "nj", *args, "--nj", 2)
    one = FeatureStore(exp / "fbank" / "test")
    halves = [FeatureStore(tmp_path / f"f{i}") for i in range(2)]
    assert min(len(h) for h in halves) > 0 and sum(len(h) for h in halves) == len(one)
    for d in ("merged", "nj"):
        store = FeatureStore(tmp_path / d)
        assert (tmp_path / d / "feats.npy").read_bytes() == (exp / "fbank" / "test" / "feats.npy").read_bytes()
        assert store.utterances == one.utterances and store.config == one.config
        assert set(store.cmvn) == set(one.cmvn)
        for spk, stats in one.cmvn.items():
            assert store.cmvn[spk].count == stats.count
            assert np.allclose(store.cmvn[spk].sum, stats.sum, rtol=1e-12)
        assert not (tmp_path / d / "shards").exists() and not (tmp_path / d / ".feats.raw").exists()
        assert (tmp_path / d / "utt_cmvn.npy").read_bytes() == (exp / "fbank" / "test" / "utt_cmvn.npy").read_bytes()
    # float16 storage through the CLI, sharded: the one job's frames rounded
    run("compute-features", exp / "manifests", "test", tmp_path / "half", *args, "--nj", 2, "--dtype", "float16")
    half = FeatureStore(tmp_path / "half")
    assert half.dtype == np.float16 and half.utterances == one.utterances
    u = one.utterances[7].id
    assert torch.equal(half.raw(u), one.raw(u).half().float())


def test_decode_kaldi_dir_with_segments_directories_long_audio_ctm_and_nbest(exp, tmp_path, capsys):
    """One recording holding two digits (with silence between) given as a Kaldi wav.scp with a
    segments file: each segment is decoded on its own, and the CTM times are relative to the
    recording and inside each segment; the same recording decoded whole, cut in pieces by the
    long-audio segmentation, gives the same words; a nested directory is searched; confidences
    lie in [0, 1] and N-best posteriors sum to at most 1."""
    import torch

    utts = ["3_george_0", "7_lucas_1"]
    waves = [torchaudio.load(str(FSDD / "recordings" / f"{u}.wav"))[0] for u in utts]
    joined = torch.cat(waves, dim=1)  # FSDD clips begin and end with their own quiet
    rec_dir = tmp_path / "kaldi"
    (rec_dir / "audio").mkdir(parents=True)
    torchaudio.save(str(rec_dir / "audio" / "two.wav"), joined, 8000)
    first_end = waves[0].shape[1] / 8000
    (rec_dir / "wav.scp").write_text("rec1 audio/two.wav\n")
    (rec_dir / "segments").write_text(f"seg_a rec1 0 {first_end:.4f}\nseg_b rec1 {first_end:.4f} -1\n")
    per_file = {u: _dataset_hyp(exp, u) for u in utts}
    capsys.readouterr()
    assert main(["decode", str(exp / "dnn2"), str(rec_dir / "wav.scp"), "--output", "ctm"]) == 0
    ctm = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert [c[4] for c in ctm] == per_file[utts[0]] + per_file[utts[1]]
    assert all(c[0] == "rec1" and 0 <= float(c[5]) <= 1 for c in ctm)
    bounds = [(0.0, first_end), (first_end, joined.shape[1] / 8000)]
    for c, (lo, hi) in zip(ctm, bounds):  # one word per segment here
        assert lo <= float(c[2]) and float(c[2]) + float(c[3]) <= hi + 0.02
    # the whole recording, cut into pieces at its quietest moment (each piece shorter than both clips)
    longest = max(w.shape[1] for w in waves) / 8000
    assert main(["decode", str(exp / "dnn2"), str(rec_dir / "audio"), "--output", "json", "--nbest", "3",
                 "--max-segment-seconds", f"{longest + 0.05:.3f}"]) == 0
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(out) == 1 and out[0]["words"] == per_file[utts[0]] + per_file[utts[1]]
    assert len(out[0]["nbest"]) >= 2  # several pieces, each with its N-best list
    for piece in out[0]["nbest"]:
        assert 0 < sum(h["posterior"] for h in piece) <= 1.0 + 1e-6
        assert [h["posterior"] for h in piece] == sorted((h["posterior"] for h in piece), reverse=True)


def test_rescore_with_the_first_pass_lm_at_scale_one_gives_the_first_pass_back(exp, tmp_path):
    """Lattices and exact N-best lists of the test set; rescoring with the graph's own LM at
    scale 1 changes nothing, and the N-best lists are sorted by their first-pass score."""
    from hybrid_asr.stages.rescore import RescoreConfig, rescore

    out = tmp_path / "rescore"
    scores = rescore(exp / "dnn2", exp / "fbank/test", out, exp / "lang" / "lm.arpa", RescoreConfig((1.0, 3.0), 5))
    wers = scores.wers
    assert scores.lines[-1] == f"first pass: %WER {wers['first_pass']:.2f}" and scores.lines[0].startswith("LM scale 1: %WER")
    assert wers["1"] == wers["first_pass"]
    assert (out / "hyp_lm1.txt").read_text() == (out / "hyp_first_pass.txt").read_text()
    lines = [json.loads(x) for x in (out / "nbest.jsonl").read_text().splitlines()]
    assert len(lines) == len(read_transcripts(out / "ref.txt"))
    for line in lines:
        scores = [h[1] for h in line["hyps"]]
        assert scores == sorted(scores, reverse=True) and 1 <= len(scores) <= 5
        assert len({tuple(h[0]) for h in line["hyps"]}) == len(scores)  # distinct word sequences
    stats = json.loads((out / "rescore_stats.json").read_text())
    assert set(stats["wer"]) == {"1", "3"} and (out / "lattices" / "batch0.pt").is_file()


def test_grapheme_lexicon_trains_and_decodes_end_to_end(exp, tmp_path):
    """No pronunciation dictionary: the words of the transcripts spelled in letters are the
    lexicon; flat start, two training rounds, HLG and decoding work on it and recognise the
    digits well above chance (10 words)."""
    d = tmp_path
    run("prepare-lang", exp / "manifests", d / "lang", "--graphemes", "--lm-order", 1)
    phones = (d / "lang" / "phones.txt").read_text().split()[::2]
    assert {"O", "N", "E", "Z", "R"} <= set(phones) and "AH" not in phones
    common = ["--hidden-dim", 256, "--num-layers", 2, "--left-context", 4, "--right-context", 4, "--lr", 2e-3,
              "--batch-size", 128]
    run("align", exp / "fbank/train", d / "lang", d / "ali0", "--flat-start")
    run("train", exp / "fbank/train", d / "ali0", d / "g1", "--epochs", 4, *common)
    run("align", exp / "fbank/train", d / "lang", d / "ali1", "--model", d / "g1")
    run("train", exp / "fbank/train", d / "ali1", d / "g2", "--epochs", 5, *common)
    run("make-graph", d / "g2", d / "lang", "--acoustic-scale", 0.5)
    run("decode-dataset", d / "g2", exp / "fbank/test", d / "decode", "--acoustic-scales", "0.5")
    stats = json.loads((d / "decode" / "decode_stats.json").read_text())
    assert stats["wer"]["0.5"] < 50.0


def test_word_times_need_only_the_model_dir(exp, tmp_path, capsys):
    """make-graph copies the lexicon part of the lang dir into the model dir: a copy of the model
    dir whose original lang dir is gone still gives word times."""
    import shutil

    model = tmp_path / "model"
    shutil.copytree(exp / "dnn2", model)
    info = json.loads((model / "graph_info.json").read_text())
    info["lang_dir"] = str(tmp_path / "gone")
    (model / "graph_info.json").write_text(json.dumps(info))
    wav = FSDD / "recordings" / "3_george_0.wav"
    capsys.readouterr()
    assert main(["decode", str(model), str(wav), "--output", "ctm"]) == 0
    ctm = capsys.readouterr().out.split()
    assert ctm[0] == str(wav) and ctm[4] == "THREE" and float(ctm[3]) > 0


def test_rebuilt_graph_keeps_the_stored_search_settings(exp, tmp_path):
    """make-graph again (e.g. with another LM) keeps the directory's search settings, such as a
    dev-chosen acoustic scale; --acoustic-scale still overrides it."""
    import shutil

    model = tmp_path / "model"
    shutil.copytree(exp / "dnn2", model)
    stored = json.loads((model / "search_config.json").read_text())
    (model / "search_config.json").write_text(json.dumps({**stored, "acoustic_scale": 0.37, "search_beam": 11.0}))
    run("make-graph", model, exp / "lang")
    kept = json.loads((model / "search_config.json").read_text())
    assert kept["acoustic_scale"] == 0.37 and kept["search_beam"] == 11.0
    run("make-graph", model, exp / "lang", "--acoustic-scale", 0.6)
    assert json.loads((model / "search_config.json").read_text())["acoustic_scale"] == 0.6


def test_augmented_copies_are_added_seeded_and_differ(exp, tmp_path):
    """compute-features --augment (no speed perturbation): one noisy copy per utterance after the
    originals, the same bytes in a second run, and other features than the clean copy's."""
    opts = ["--sample-rate", 8000, "--num-mel-bins", 23, "--augment", "--noise-prob", 1,
            "--snr-min-db", 10, "--snr-max-db", 10, "--pad-prob", 0, "--gain-prob", 0, "--bandlimit-prob", 0]
    for name in ("a", "b"):
        run("compute-features", exp / "manifests", "test", tmp_path / name, *opts)
    store = FeatureStore(tmp_path / "a")
    ids = [u.id for u in store.utterances]
    half = len(ids) // 2
    assert ids[half:] == [f"{u}_aug" for u in ids[:half]]
    assert (tmp_path / "a" / "feats.npy").read_bytes() == (tmp_path / "b" / "feats.npy").read_bytes()
    clean, noisy = store.raw(ids[0]), store.raw(ids[half])
    assert clean.shape == noisy.shape and float((clean - noisy).abs().mean()) > 0.5


def test_score_and_plot_alignment_commands(exp, tmp_path):
    """``score`` on the dataset decode's files gives the decode's own WER, per speaker too, with
    normalisation applied to both sides; ``plot-alignment`` draws a PNG of a real alignment."""
    d = exp / "decode"
    run("score", d / "ref.txt", d / "hyp_ac0.5.txt", tmp_path / "s", "--utt2spk", d / "utt2spk")
    summary = json.loads((tmp_path / "s" / "wer.json").read_text())
    stats = json.loads((d / "decode_stats.json").read_text())
    assert summary["wer"] == pytest.approx(stats["wer"]["0.5"], abs=1e-6)
    assert sorted(summary["by_speaker"]) == sorted(FSDD_SPEAKERS)
    assert sum(v["errors"] for v in summary["by_speaker"].values()) == summary["errors"]
    lower = tmp_path / "hyp_lower.txt"
    lower.write_text((d / "hyp_ac0.5.txt").read_text().lower())
    run("score", d / "ref.txt", lower, tmp_path / "l", "--case", "upper")
    assert json.loads((tmp_path / "l" / "wer.json").read_text())["wer"] == pytest.approx(summary["wer"])
    utt = next(iter(read_transcripts(exp / "decode" / "ref.txt")))
    run("align", exp / "fbank/test", exp / "lang", tmp_path / "ali", "--model", exp / "dnn2")
    run("plot-alignment", tmp_path / "ali", exp / "fbank/test", utt, tmp_path / "a.png")
    assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (tmp_path / "a.png").stat().st_size > 5000


def test_decode_dataset_sweeps_word_insertion_penalties(exp, tmp_path):
    """decode-dataset --word-insertion-penalties: one hypothesis file and report per (scale,
    penalty), the penalty-free names unchanged, fewer words with a large penalty, two local jobs
    equal to one, and --store-best stores the best scale and penalty together."""
    import shutil

    model = tmp_path / "model"
    shutil.copytree(exp / "dnn2", model)
    for out, nj in (("one", 1), ("two", 2)):
        run("decode-dataset", model, exp / "fbank/test", tmp_path / out, "--acoustic-scales", "0.3,0.5",
            "--word-insertion-penalties", "0,-30", "--nj", nj, "--store-best")
    stats = json.loads((tmp_path / "one/decode_stats.json").read_text())
    assert list(stats["wer"]) == ["0.3", "0.5", "0.3_wip-30", "0.5_wip-30"]
    assert stats["wer"] == json.loads((tmp_path / "two/decode_stats.json").read_text())["wer"]
    best = min(stats["wer"], key=stats["wer"].get)
    assert stats["best_setting"] == best
    stored = json.loads((model / "search_config.json").read_text())
    assert (stored["acoustic_scale"], stored["word_insertion_penalty"]) == (
        stats["best_acoustic_scale"], stats["best_word_insertion_penalty"])
    plain, bonus = (read_transcripts(tmp_path / "one" / f"hyp_ac{k}.txt") for k in ("0.5", "0.5_wip-30"))
    assert sum(map(len, bonus.values())) > sum(map(len, plain.values()))
    assert (tmp_path / "one/wer_ac0.5_wip-30.txt").is_file()
    # --sweep lattice: one k2 lattice per utterance; with beams that keep every path, each setting
    # gets the words of its own k2 search
    wide = ("--search-beam", "40", "--output-beam", "40", "--backend", "k2")
    for out, sweep in (("search", "search"), ("lattice", "lattice")):
        run("decode-dataset", model, exp / "fbank/test", tmp_path / out, "--acoustic-scales", "0.2,0.5",
            "--word-insertion-penalties", "0,2", "--sweep", sweep, *wide)
    for key in ("0.2", "0.5", "0.2_wip2", "0.5_wip2"):
        assert read_transcripts(tmp_path / "lattice" / f"hyp_ac{key}.txt") == \
            read_transcripts(tmp_path / "search" / f"hyp_ac{key}.txt")


def test_kaldi_search_reads_the_stored_openfst_graph(exp, tmp_path, monkeypatch, capsys):
    """make-graph stores the OpenFst form of the graph; decode-dataset's Kaldi search reads it
    (no conversion: to_openfst is never called) and gets the words of the converted graph; a
    replaced file is refused with one line."""
    import shutil

    from hybrid_asr.decoding import kaldi_search

    model = tmp_path / "model"
    shutil.copytree(exp / "dnn2", model)
    info = json.loads((model / "graph_info.json").read_text())
    assert (model / "HLG.fst").is_file() and len(info["openfst_sha256"]) == 64
    converted = tmp_path / "converted"
    (model / "HLG.fst").rename(tmp_path / "HLG.fst")  # no stored copy: the graph is converted
    run("decode-dataset", model, exp / "fbank/test", converted, "--acoustic-scales", "0.5")
    (tmp_path / "HLG.fst").rename(model / "HLG.fst")

    def no_conversion(*args, **kwargs):
        raise AssertionError("the graph was converted although make-graph stored it")

    monkeypatch.setattr(kaldi_search, "to_openfst", no_conversion)
    stored = tmp_path / "stored"
    run("decode-dataset", model, exp / "fbank/test", stored, "--acoustic-scales", "0.5")
    assert (stored / "hyp_ac0.5.txt").read_text() == (converted / "hyp_ac0.5.txt").read_text()
    with open(model / "HLG.fst", "ab") as f:
        f.write(b"\0")
    capsys.readouterr()
    assert main(["decode-dataset", str(model), str(exp / "fbank/test"), str(tmp_path / "bad")]) == 1
    assert capsys.readouterr().err.strip() == f"hybrid-asr decode-dataset: error: {model / 'HLG.fst'}: differs from " \
        "the file graph_info.json was written with (changed or replaced after make-graph)"


def test_tree_statistics_in_shards_give_the_one_job_tree(exp, tmp_path, capsys, monkeypatch):
    """build-tree --nj 2, and two array-job shards summed with --from-stats, give the tree of one
    job; the sum refuses a missing shard, a shard twice and shards of other alignments."""
    from hybrid_asr.stages import shards

    monkeypatch.setattr(shards, "MIN_UTTERANCES_PER_LIGHT_JOB", 1)  # two jobs even for a small corpus
    opts = ["--num-leaves", 60, "--min-count", 20, "--min-gain", 10]
    run("build-tree", exp / "fbank/train", exp / "ali1", tmp_path / "one", *opts)
    run("build-tree", exp / "fbank/train", exp / "ali1", tmp_path / "nj2", *opts, "--nj", 2)
    for i in range(2):
        run("build-tree", exp / "fbank/train", exp / "ali1", tmp_path / f"s{i}", *opts, "--num-shards", 2,
            "--shard-index", i)
        assert (tmp_path / f"s{i}/tree_stats.json").is_file() and not (tmp_path / f"s{i}/tree.json").exists()
    run("build-tree", exp / "fbank/train", exp / "ali1", tmp_path / "summed", *opts, "--from-stats",
        tmp_path / "s0", tmp_path / "s1")
    one = (tmp_path / "one/tree.json").read_text()
    assert (tmp_path / "nj2/tree.json").read_text() == one
    assert (tmp_path / "summed/tree.json").read_text() == one
    assert not (tmp_path / "nj2/shards").exists()

    def refused(*dirs, ali="ali1"):
        capsys.readouterr()
        assert main(["build-tree", str(exp / "fbank/train"), str(exp / ali), str(tmp_path / "bad"),
                     "--from-stats", *map(str, dirs)]) == 1
        return capsys.readouterr().err.strip()

    assert refused(tmp_path / "s0").endswith("tree statistics shards [1] of 2 are missing")
    assert "shard 0 of 2 does not fit the other directories" in refused(tmp_path / "s0", tmp_path / "s0")
    assert f"{tmp_path / 's0'}: tree statistics of other alignments" in refused(tmp_path / "s0", tmp_path / "s1",
                                                                                  ali="ali0")


def test_alignment_conversion_in_shards_gives_the_one_job_alignments(exp, tmp_path, monkeypatch):
    """convert-ali --nj 2 (two shards merged with merge-alignments' code) writes the senone
    alignments, HMM states and tree of one job, with the same transition probabilities."""
    from hybrid_asr.hmm import HmmTopology
    from hybrid_asr.hmm.alignment import Alignments
    from hybrid_asr.stages import shards

    monkeypatch.setattr(shards, "MIN_UTTERANCES_PER_LIGHT_JOB", 1)

    run("build-tree", exp / "fbank/train", exp / "ali1", tmp_path / "tree", "--num-leaves", 40)
    run("convert-ali", exp / "ali1", tmp_path / "tree", tmp_path / "one")
    run("convert-ali", exp / "ali1", tmp_path / "tree", tmp_path / "two", "--nj", 2)
    for name in ("ali.npz", "states.npz"):
        one, two = Alignments.load(tmp_path / "one" / name), Alignments.load(tmp_path / "two" / name)
        assert sorted(one) == sorted(two) and len(one) > 10
        assert all(np.array_equal(one[u], two[u]) for u in one)
    assert (tmp_path / "one/tree.json").read_text() == (tmp_path / "two/tree.json").read_text()
    t1, t2 = HmmTopology.load(tmp_path / "one/topology.json"), HmmTopology.load(tmp_path / "two/topology.json")
    assert t1.phones == t2.phones
    assert np.allclose(t1.self_loop_prob, t2.self_loop_prob, atol=1e-9)
    assert not (tmp_path / "two/shards").exists()
