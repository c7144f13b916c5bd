"""A model directory you can check and trust: the manifest written last, hashes of every file,
parts that must agree, files that never run code, and one-line errors for mismatched parts."""

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from conftest import FSDD, corpus_mark, run

from hybrid_asr.bundle import MANIFEST, ModelBundle, file_sha256
from hybrid_asr.cli.main import main
from hybrid_asr.errors import InputError

pytestmark = corpus_mark(FSDD)


class _RunsCommand:
    """Unpickling this runs a shell command (what a tampered file would do)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _copy_model(fsdd_exp, tmp_path) -> Path:
    model = tmp_path / "model"
    shutil.copytree(fsdd_exp / "dnn2", model)
    return model


def _one_line_error(capsys, argv):
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and err, (code, err)
    return err


@pytest.mark.parametrize("name", ["model.pt", "priors.pt", "HLG.pt"])
def test_tampered_file_gives_one_line_error_and_never_runs_code(fsdd_exp, tmp_path, capsys, name):
    model = _copy_model(fsdd_exp, tmp_path)
    marker = tmp_path / "pwned"
    torch.save({"x": _RunsCommand(marker)}, model / name)
    wav = FSDD / "recordings" / "3_george_0.wav"
    err = _one_line_error(capsys, ["decode", str(model), str(wav)])
    assert len(err) == 1 and name in err[0], err
    assert not marker.exists()
    # even with the manifest rewritten to match the tampered file, loading refuses it
    assert "differs from the file" in err[0], err
    record = MANIFEST if name != "HLG.pt" else "graph_info.json"
    manifest = json.loads((model / record).read_text())
    if name in manifest.get("files", {}):
        manifest["files"][name] = file_sha256(model / name)
    else:
        manifest["sha256"] = file_sha256(model / name)
    (model / record).write_text(json.dumps(manifest))
    err = _one_line_error(capsys, ["decode", str(model), str(wav)])
    refusal = "cannot be loaded as tensors only"
    assert len(err) == 1 and name in err[0] and refusal in err[0], err
    assert not marker.exists()


def test_interrupted_save_is_not_a_model(fsdd_exp, tmp_path):
    """A directory whose save stopped before the manifest (e.g. between topology.json and
    tree.json of a context-dependent model) is refused, not read as another kind of model."""
    model = _copy_model(fsdd_exp, tmp_path)
    (model / MANIFEST).unlink()
    with pytest.raises(InputError, match="bundle.json: missing: the model directory is incomplete"):
        ModelBundle.load(model)
    bundle = ModelBundle.load(fsdd_exp / "dnn2")
    bundle.save(tmp_path / "again")
    assert json.loads((tmp_path / "again" / MANIFEST).read_text())["kind"] == "monophone"
    assert ModelBundle.load(tmp_path / "again").num_pdfs == bundle.num_pdfs


def test_priors_of_the_wrong_size(fsdd_exp, tmp_path, capsys):
    model = _copy_model(fsdd_exp, tmp_path)
    priors = torch.load(model / "priors.pt", weights_only=True)
    torch.save(priors[:-3], model / "priors.pt")
    with pytest.raises(InputError, match="priors.pt: differs from the file bundle.json was written with"):
        ModelBundle.load(model)
    manifest = json.loads((model / MANIFEST).read_text())
    manifest["files"]["priors.pt"] = file_sha256(model / "priors.pt")
    (model / MANIFEST).write_text(json.dumps(manifest))
    err = _one_line_error(capsys, ["decode", str(model), str(FSDD / "recordings" / "3_george_0.wav")])
    assert len(err) == 1 and f"priors.pt {priors.numel() - 3}" in err[0] and "sizes of the model's parts disagree" in err[0]


def test_lang_dir_of_another_phone_set_is_refused_by_align_audio_and_make_graph(fsdd_exp, tmp_path, capsys):
    other = tmp_path / "lang_other"
    shutil.copytree(fsdd_exp / "lang", other)
    lines = (other / "phones.txt").read_text().splitlines()
    # swap the ids of two real phones: same phone names, shifted labels
    names = [line.split() for line in lines]
    i, j = 3, 4
    names[i][1], names[j][1] = names[j][1], names[i][1]
    names.sort(key=lambda x: int(x[1]))
    (other / "phones.txt").write_text("".join(f"{a} {b}\n" for a, b in names))
    model = str(fsdd_exp / "dnn2")
    wav = str(FSDD / "recordings" / "3_george_0.wav")
    err = _one_line_error(capsys, ["align-audio", model, str(other), wav, "THREE"])
    assert len(err) == 1 and "lang_other/phones.txt: its phone set is not the one model" in err[0], err
    err = _one_line_error(capsys, ["make-graph", model, str(other)])
    assert len(err) == 1 and "phone set is not the one model" in err[0], err
    # the right lang dir aligns
    capsys.readouterr()
    assert main(["align-audio", model, str(fsdd_exp / "lang"), wav, "THREE"]) == 0


def test_feature_store_of_another_front_end_is_refused(fsdd_exp, tmp_path, capsys):
    run("compute-features", fsdd_exp / "manifests", "test", tmp_path / "fbank40", "--sample-rate", 8000,
        "--num-mel-bins", 40)
    err = _one_line_error(capsys, ["decode-dataset", str(fsdd_exp / "dnn2"), str(tmp_path / "fbank40"),
                                   str(tmp_path / "decode")])
    assert len(err) == 1 and "fbank40/index.json: features were made with another front end" in err[0]
    assert "num_mel_bins 40 vs 23" in err[0]
    err = _one_line_error(capsys, ["align", str(tmp_path / "fbank40"), str(fsdd_exp / "lang"), str(tmp_path / "ali"),
                                   "--model", str(fsdd_exp / "dnn2")])
    assert len(err) == 1 and "another front end" in err[0]


def test_graph_of_another_model_is_refused(fsdd_exp, tmp_path, capsys):
    model = _copy_model(fsdd_exp, tmp_path)
    info = json.loads((model / "graph_info.json").read_text())
    info["phone_set"] = "0" * 64
    (model / "graph_info.json").write_text(json.dumps(info))
    err = _one_line_error(capsys, ["decode", str(model), str(FSDD / "recordings" / "3_george_0.wav")])
    assert len(err) == 1 and "HLG.pt: was built over another phone set" in err[0]


def test_same_seed_gives_identical_weights_and_words(fsdd_exp, tmp_path):
    """Two CPU training runs with one seed: bit-identical weights, identical decodes."""
    common = ["--hidden-dim", 64, "--num-layers", 1, "--left-context", 2, "--right-context", 2, "--batch-size", 256,
              "--epochs", 1, "--seed", 7]
    results = []
    for k in range(2):
        out = tmp_path / f"run{k}"
        run("train", fsdd_exp / "fbank/train", fsdd_exp / "ali1", out, *common)
        run("make-graph", out, fsdd_exp / "lang", "--acoustic-scale", 0.5)
        run("decode-dataset", out, fsdd_exp / "fbank/test", out / "decode", "--acoustic-scales", "0.5")
        results.append((torch.load(out / "model.pt", weights_only=True), (out / "decode/hyp_ac0.5.txt").read_text()))
    (w0, hyp0), (w1, hyp1) = results
    assert w0.keys() == w1.keys() and all(torch.equal(w0[k], w1[k]) for k in w0)
    assert hyp0 == hyp1
