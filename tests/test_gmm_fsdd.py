"""The GMM-HMM stage end to end on FSDD through the command line: MFCC + deltas with speaker CMVN,
flat start, train-gmm, then the same align / make-graph / decode-dataset / decode as a neural model."""

import json
import re
import shutil

import numpy as np
import pytest

from conftest import FSDD, run
from hybrid_asr.scoring import read_transcripts


@pytest.fixture(scope="module")
def gmm_exp(fsdd_exp):
    d = fsdd_exp
    for split in ("train", "test"):
        run("compute-features", d / "manifests", split, d / "mfcc" / split, "--sample-rate", 8000,
            "--num-mel-bins", 23, "--kind", "mfcc", "--deltas", "--cmvn", "speaker")
    run("align", d / "mfcc/train", d / "lang", d / "gmm_ali0", "--flat-start")
    run("train-gmm", d / "mfcc/train", d / "lang", d / "gmm_ali0", d / "mono", "--num-iters", 12,
        "--max-iter-inc", 8, "--total-gauss", 300, "--realign-iters", "1,2,3,5,7,9")
    run("make-graph", d / "mono", d / "lang", "--self-loop-scale", 0.1)
    run("decode-dataset", d / "mono", d / "mfcc/test", d / "mono_decode", "--acoustic-scales", "0.1")
    return d


def test_training_raises_likelihood_and_mixes_up(gmm_exp):
    history = [json.loads(line) for line in (gmm_exp / "mono" / "metrics.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in history] == list(range(12))
    assert history[-1]["log_like"] > history[1]["log_like"] + 2  # nats per frame
    assert history[0]["gauss"] < history[-1]["gauss"] <= 300 and history[-1]["gauss"] > 200
    assert all(r["failed"] == 0 for r in history if "aligned" in r)
    assert (gmm_exp / "mono" / "metrics.png").stat().st_size > 0


def test_gmm_decodes_fsdd_and_the_decode_command_recognises_files(gmm_exp, capsys):
    from hybrid_asr.cli.main import main
    from hybrid_asr.features import FeatureStore

    stats = json.loads((gmm_exp / "mono_decode" / "decode_stats.json").read_text())
    assert stats["wer"]["0.1"] <= 4.0, stats  # 0.0 when written; the DNN of fsdd_exp: 1.33
    # decode on audio files: global CMVN stands in for the model's speaker CMVN, as for neural models
    utts = FeatureStore(gmm_exp / "mfcc/test").utterances[::15]
    wavs = [str(FSDD / "recordings" / f"{u.id}.wav") for u in utts]
    capsys.readouterr()
    assert main(["decode", str(gmm_exp / "mono"), *wavs, "--output", "json", "--acoustic-scale", "0.1"]) == 0
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [o["file"] for o in out] == wavs
    right = sum(o["words"] == u.text.split() for o, u in zip(out, utts))
    assert right >= 0.8 * len(utts), (out, [u.text for u in utts])


def test_gmm_model_realigns_and_train_refuses_gmm_type(gmm_exp, capsys):
    from hybrid_asr.cli.main import main

    run("align", gmm_exp / "mfcc/train", gmm_exp / "lang", gmm_exp / "gmm_ali_final", "--model", gmm_exp / "mono")
    assert (gmm_exp / "gmm_ali_final" / "failed.txt").read_text() == ""
    assert main(["train", str(gmm_exp / "mfcc/train"), str(gmm_exp / "gmm_ali0"), "x", "--model", "gmm"]) == 2


@pytest.fixture(scope="module")
def sat_exp(gmm_exp):
    """Kaldi's GMM ladder on FSDD, small: triphones on deltas (tree from the monophone GMM's
    alignment), LDA+MLLT on spliced MFCC without deltas, then SAT with fMLLR, decoded in two passes."""
    d = gmm_exp
    small = ["--num-iters", 8, "--max-iter-inc", 5, "--total-gauss", 400, "--realign-iters", 4]
    run("align", d / "mfcc/train", d / "lang", d / "mono_ali", "--model", d / "mono")
    run("build-tree", d / "mfcc/train", d / "mono_ali", d / "tree1", "--num-leaves", 40)
    run("convert-ali", d / "mono_ali", d / "tree1", d / "tri1_ali0")
    run("train-gmm", d / "mfcc/train", d / "lang", d / "tri1_ali0", d / "tri1", *small)
    run("align", d / "mfcc/train", d / "lang", d / "tri1_ali", "--model", d / "tri1")
    for split in ("train", "test"):
        run("compute-features", d / "manifests", split, d / "mfcc13" / split, "--sample-rate", 8000,
            "--num-mel-bins", 23, "--kind", "mfcc", "--cmvn", "speaker")
    run("train-gmm", d / "mfcc13/train", d / "lang", d / "tri1_ali", d / "tri2", "--lda-mllt", *small,
        "--mllt-iters", "2,3", "--lda-dim", 20, "--num-leaves", 40)
    run("align", d / "mfcc13/train", d / "lang", d / "tri2_ali", "--model", d / "tri2")
    run("train-gmm", d / "mfcc13/train", d / "lang", d / "tri2_ali", d / "tri3", "--sat", d / "tri2", *small,
        "--fmllr-iters", "2,3", "--num-leaves", 40)
    for m in ("tri2", "tri3"):
        run("make-graph", d / m, d / "lang", "--self-loop-scale", 0.1, "--acoustic-scale", 0.1)
        run("decode-dataset", d / m, d / "mfcc13/test", d / f"{m}_decode", "--acoustic-scales", "0.1")
    return d


def history(model_dir):
    return [json.loads(line) for line in (model_dir / "metrics.jsonl").read_text().splitlines()]


def test_triphone_lda_mllt_and_sat_systems_train_and_decode(sat_exp):
    import numpy as np

    from hybrid_asr.bundle import ModelBundle

    d = sat_exp
    tri1 = ModelBundle.load(d / "tri1")
    assert tri1.tree is not None and tri1.num_pdfs > 30
    # senone alignments keep the HMM state of every frame, so transitions are re-estimated
    assert (d / "tri1_ali" / "states.npz").is_file()
    before = json.loads((d / "tri1_ali0" / "topology.json").read_text())
    assert json.loads((d / "tri1" / "topology.json").read_text()) != before
    tri2 = ModelBundle.load(d / "tri2")
    assert tri2.model.transform.shape == (20, 7 * 13 + 1) and tri2.model.left_context == 3
    assert [r["iter"] for r in history(d / "tri2") if "mllt_gain" in r] == [2, 3]
    assert all(r["mllt_gain"] > 0 for r in history(d / "tri2") if "mllt_gain" in r)
    assert all(r["fmllr_gain"] > 0 for r in history(d / "tri3") if "fmllr_gain" in r)
    with np.load(d / "tri3" / "fmllr_train.npz") as z:
        assert sorted(z.files) == ["george", "jackson", "lucas"] and z["george"].shape == (20, 21)
    for m in ("tri2", "tri3"):
        stats = json.loads((d / f"{m}_decode" / "decode_stats.json").read_text())
        assert stats["wer"]["0.1"] <= 4.0, (m, stats)
    timing = json.loads((d / "tri3_decode" / "timing.json").read_text())
    assert timing["fmllr"]["speakers"] == 3 and timing["fmllr"]["mean_objective_gain"] > 0
    assert timing["fmllr"]["estimation_passes"] == 2  # Kaldi's decode_fmllr.sh: a second estimate
    assert "fmllr" not in json.loads((d / "tri2_decode" / "timing.json").read_text())


def test_sat_model_aligns_with_fmllr_and_decodes_files_speaker_independently(sat_exp, capsys, caplog):
    from hybrid_asr.cli.main import main
    from hybrid_asr.features import FeatureStore
    from hybrid_asr.hmm.alignment import Alignments

    d = sat_exp
    run("align", d / "mfcc13/train", d / "lang", d / "tri3_ali", "--model", d / "tri3")
    assert (d / "tri3_ali" / "failed.txt").read_text() == ""
    sat, si = Alignments.load(d / "tri3_ali" / "ali.npz"), Alignments.load(d / "tri2_ali" / "ali.npz")
    assert set(sat) == set(si)
    # two local jobs: whole speakers per job, so each speaker's transform is estimated as in one job
    run("align", d / "mfcc13/train", d / "lang", d / "tri3_ali_nj", "--model", d / "tri3", "--nj", 2)
    sharded = Alignments.load(d / "tri3_ali_nj" / "ali.npz")
    assert set(sharded) == set(sat) and all(np.array_equal(sharded[u], sat[u]) for u in sat)
    run("decode-dataset", d / "tri3", d / "mfcc13/test", d / "tri3_decode_nj", "--acoustic-scales", "0.1", "--nj", 2)
    assert read_transcripts(d / "tri3_decode_nj" / "hyp_ac0.1.txt") == read_transcripts(d / "tri3_decode" / "hyp_ac0.1.txt")
    one, two = (json.loads((d / x / "timing.json").read_text())["fmllr"] for x in ("tri3_decode", "tri3_decode_nj"))
    assert two["speakers"] == one["speakers"] and two["mean_objective_gain"] == pytest.approx(one["mean_objective_gain"],
                                                                                             abs=1e-3)
    utts = FeatureStore(d / "mfcc13/test").utterances[::20]
    wavs = [str(FSDD / "recordings" / f"{u.id}.wav") for u in utts]
    capsys.readouterr()
    assert main(["decode", str(d / "tri3"), *wavs, "--output", "json", "--acoustic-scale", "0.1"]) == 0
    assert "speaker-independent model" in caplog.text
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert sum(o["words"] == u.text.split() for o, u in zip(out, utts)) >= 0.8 * len(utts)


def test_dnn_on_fmllr_features_from_adapt_features(sat_exp, capsys):
    """adapt-features writes the SAT model's speaker-adapted frames (reference transcripts for
    training data, a first pass for test data); a DNN trains and decodes on them; `decode` adapts
    each audio file with the SAT GMM copied into the model (and into a sequence-trained copy of it),
    and without it refuses with one line."""
    import numpy as np

    from hybrid_asr.cli.main import main
    from hybrid_asr.features import FeatureStore

    d = sat_exp
    run("align", d / "mfcc13/train", d / "lang", d / "tri3_ali_nn", "--model", d / "tri3")
    run("adapt-features", d / "tri3", d / "lang", d / "mfcc13/train", d / "fm/train", "--transcripts", "reference")
    run("adapt-features", d / "tri3", d / "lang", d / "mfcc13/test", d / "fm/test")
    train, test, source = FeatureStore(d / "fm/train"), FeatureStore(d / "fm/test"), FeatureStore(d / "mfcc13/test")
    assert train.config.kind == "fmllr" and train.dim == 20 and test.config == train.config
    assert [(u.id, u.frames) for u in test.utterances] == [(u.id, u.frames) for u in source.utterances]
    with np.load(d / "fm/test" / "fmllr.npz") as z:
        assert sorted(z.files) == ["george", "jackson", "lucas"]
    info = json.loads((d / "fm/test" / "adapt_info.json").read_text())
    assert info["transcripts"] == "first-pass" and info["mean_objective_gain"] > 0
    # the SAT alignment kept its transforms: adapt-features --transforms reuses them (Kaldi's
    # --transform-dir) and writes the frames of its own reference estimate; another model's
    # alignment (tri2: no transforms) or a store with other speakers is refused in one line
    run("adapt-features", d / "tri3", d / "lang", d / "mfcc13/train", d / "fm/train_reused", "--transforms",
        d / "tri3_ali_nn")
    reused, estimated = FeatureStore(d / "fm/train_reused"), FeatureStore(d / "fm/train")
    assert all(np.allclose(reused.raw(u.id), estimated.raw(u.id), atol=1e-4) for u in estimated.utterances[::25])
    for ali, store in (("tri2_ali", "train"), ("tri3_ali_nn", "test")):
        code = main(["adapt-features", str(d / "tri3"), str(d / "lang"), str(d / f"mfcc13/{store}"),
                     str(d / "fm/refused"), "--transforms", str(d / ali)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code != 0 and len(err) == 1 and ("no fMLLR transforms" in err[0] or "not an alignment of" in err[0]), err
    run("train", d / "fm/train", d / "tri3_ali_nn", d / "fmllr_dnn", "--epochs", 4, "--hidden-dim", 256,
        "--num-layers", 2, "--left-context", 4, "--right-context", 4, "--lr", 2e-3, "--batch-size", 128)
    run("make-graph", d / "fmllr_dnn", d / "lang", "--acoustic-scale", 0.5)
    run("decode-dataset", d / "fmllr_dnn", d / "fm/test", d / "fmllr_dnn_decode", "--acoustic-scales", "0.5")
    stats = json.loads((d / "fmllr_dnn_decode" / "decode_stats.json").read_text())
    assert stats["wer"]["0.5"] <= 5.0, stats
    # train copied the SAT GMM in, so `decode` adapts each file on its own (first pass, fMLLR)
    frontend = d / "fmllr_dnn" / "fmllr_frontend"
    assert (frontend / "bundle.json").is_file() and (frontend / "si_model" / "bundle.json").is_file()
    assert json.loads((frontend / "fmllr_decode.json").read_text())["first_pass_acoustic_scale"] == 0.1
    utts = source.utterances[::20]
    wavs = [str(FSDD / "recordings" / f"{u.id}.wav") for u in utts]
    capsys.readouterr()
    assert main(["decode", str(d / "fmllr_dnn"), *wavs, "--output", "json", "--acoustic-scale", "0.5"]) == 0
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert sum(o["words"] == u.text.split() for o, u in zip(out, utts)) >= 0.8 * len(utts)
    # a sequence-trained model of it keeps the SAT GMM, so it decodes lone files too
    run("train-sequence", d / "fmllr_dnn", d / "fm/train", d / "lang", d / "tri3_ali_nn", d / "fmllr_dnn_mmi",
        "--criterion", "lfmmi", "--epochs", 1, "--lr", 1e-5, "--batch-size", 2000)
    assert (d / "fmllr_dnn_mmi" / "fmllr_frontend" / "fmllr_decode.json").is_file()
    run("make-graph", d / "fmllr_dnn_mmi", d / "lang", "--acoustic-scale", 0.5)
    assert main(["decode", str(d / "fmllr_dnn_mmi"), *wavs[:3], "--output", "json"]) == 0
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(out) == 3 and sum(o["words"] == u.text.split() for o, u in zip(out, utts)) >= 2
    # the same model without its SAT GMM is refused with one line
    shutil.copytree(d / "fmllr_dnn", d / "fmllr_dnn_bare", ignore=shutil.ignore_patterns("fmllr_frontend"))
    assert main(["decode", str(d / "fmllr_dnn_bare"), wavs[0]]) != 0
    err = capsys.readouterr().err
    assert "no SAT model in fmllr_frontend/" in err and "Traceback" not in err


def test_copy_ali_labels_quiet_copies_as_their_originals_with_their_own_transforms(sat_exp, capsys):
    """copy-ali gives each same-length augmented copy (<id>_aug, speaker <spk>_aug) its original's
    labels, keeps tri3's transforms and estimates the copies' speakers' own on the copied labels:
    close to what a full fMLLR alignment of the copies estimates, far from the original's; the
    result feeds adapt-features --transforms. Padded copies (another length) are refused in one line."""
    from hybrid_asr.cli.main import main
    from hybrid_asr.features import FeatureStore
    from hybrid_asr.hmm.alignment import Alignments
    from hybrid_asr.stages.gmm import load_transforms

    d = sat_exp
    mfcc = ["--sample-rate", 8000, "--num-mel-bins", 23, "--kind", "mfcc", "--cmvn", "speaker"]
    quiet = ["--augment", "--noise-prob", 0, "--bandlimit-prob", 0, "--gain-prob", 1, "--gain-min-db", -40,
             "--gain-max-db", -20, "--gain-requantize"]
    run("compute-features", d / "manifests", "train", d / "mfcc13/train_aug", *mfcc, *quiet)
    run("align", d / "mfcc13/train", d / "lang", d / "tri3_ali_src", "--model", d / "tri3")
    run("copy-ali", d / "tri3_ali_src", d / "mfcc13/train_aug", d / "tri3_ali_aug", "--model", d / "tri3")
    src, out = Alignments.load(d / "tri3_ali_src/ali.npz"), Alignments.load(d / "tri3_ali_aug/ali.npz")
    assert set(out) == set(src) | {f"{u}_aug" for u in src}
    assert all(np.array_equal(out[u], src[u]) and np.array_equal(out[f"{u}_aug"], src[u]) for u in src)
    assert (d / "tri3_ali_aug/states.npz").is_file() and (d / "tri3_ali_aug/tree.json").is_file()
    old, new = load_transforms(d / "tri3_ali_src/fmllr.npz"), load_transforms(d / "tri3_ali_aug/fmllr.npz")
    assert set(new) == set(old) | {f"{s}_aug" for s in old}
    assert all(np.array_equal(new[s], old[s]) for s in old)
    # a full fMLLR alignment of the copies (transforms from scratch) lands near the copied estimate
    run("align", d / "mfcc13/train_aug", d / "lang", d / "tri3_ali_full", "--model", d / "tri3")
    full = load_transforms(d / "tri3_ali_full/fmllr.npz")
    for s in old:
        assert np.linalg.norm(new[f"{s}_aug"] - full[f"{s}_aug"]) < 0.5 * np.linalg.norm(old[s] - full[f"{s}_aug"]), s
    realigned = Alignments.load(d / "tri3_ali_full/ali.npz")
    same = sum(int((realigned[u] == out[u]).sum()) for u in out if u.endswith("_aug"))
    assert same >= 0.85 * sum(len(out[u]) for u in out if u.endswith("_aug"))
    run("adapt-features", d / "tri3", d / "lang", d / "mfcc13/train_aug", d / "fm/train_aug", "--transforms",
        d / "tri3_ali_aug")
    assert len(FeatureStore(d / "fm/train_aug").utterances) == 2 * len(src)
    run("compute-features", d / "manifests", "train", d / "mfcc13/train_pad", *mfcc, "--augment", "--pad-prob", 1)
    capsys.readouterr()
    code = main(["copy-ali", str(d / "tri3_ali_src"), str(d / "mfcc13/train_pad"), str(d / "refused"), "--model",
                 str(d / "tri3")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "the copies changed length" in err[0], err
    assert not (d / "refused/ali.npz").exists()
    # a SAT alignment without its model: the copies' transforms cannot be estimated
    assert main(["copy-ali", str(d / "tri3_ali_src"), str(d / "mfcc13/train_aug"), str(d / "refused")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "give that model (--model)" in err[0], err


def test_align_audio_with_a_gmm_uses_the_gmm_threshold(gmm_exp, capsys, caplog):
    """A GMM's gaps spread wider than a neural model's: with its own threshold the right
    transcripts of FSDD files pass and another digit's is flagged, the warning naming -7."""
    import logging

    from hybrid_asr.cli.main import main
    from hybrid_asr.features import FeatureStore

    utts = FeatureStore(gmm_exp / "mfcc/test").utterances[::25]
    flagged_right = flagged_wrong = 0
    for u in utts:
        wav = str(FSDD / "recordings" / f"{u.id}.wav")
        wrong = "ONE" if u.text != "ONE" else "SIX"
        for text in (u.text, wrong):
            caplog.clear()
            with caplog.at_level(logging.WARNING):
                assert main(["align-audio", str(gmm_exp / "mono"), str(gmm_exp / "lang"), wav, text]) == 0
            warned = [r.getMessage() for r in caplog.records if "fits the audio badly" in r.getMessage()]
            assert all("under -7)" in w for w in warned)
            flagged_right += text == u.text and bool(warned)
            flagged_wrong += text != u.text and bool(warned)
    capsys.readouterr()
    assert len(utts) >= 5 and flagged_right == 0 and flagged_wrong == len(utts), (flagged_right, flagged_wrong)
