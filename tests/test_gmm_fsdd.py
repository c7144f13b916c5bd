"""The GMM-HMM stage end to end on FSDD through the command line: MFCC + deltas with speaker CMVN,
flat start, train-gmm, then the same align / make-graph / decode-dataset / decode as a neural model."""

import json
import re

import pytest

from conftest import FSDD, run


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
