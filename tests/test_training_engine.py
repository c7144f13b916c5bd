"""The training engine as a process: exact resume after SIGKILL, and data-parallel training of two
CPU processes under torchrun (gloo)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import two_class_task

from hybrid_asr.utils import load_state

BIN = Path(sys.executable).parent


def _tone(freq, seconds, rate=8000, seed=0):
    t = torch.arange(int(seconds * rate)) / rate
    noise = torch.randn(t.numel(), generator=torch.Generator().manual_seed(seed))
    return 3000 * torch.sin(2 * torch.pi * freq * t) + 300 * noise


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    """A feature store of 40 two-tone utterances and an alignment dir labelling the tones 0 / 1."""
    return two_class_task(tmp_path_factory.mktemp("engine"), [
        (f"u{i:02d}", f"s{i % 4}", torch.cat([_tone(200 + 10 * i, 0.6, seed=i), _tone(2500 + 20 * i, 0.6, seed=100 + i)]))
        for i in range(40)])


def _train_cmd(task, out, *extra):
    return [str(BIN / "hybrid-asr"), "train", str(task / "feats"), str(task / "ali"), str(out), "--epochs", "3",
            "--batch-size", "32", "--hidden-dim", "64", "--num-layers", "2", "--left-context", "2",
            "--right-context", "2", "--checkpoint-every", "20", "--seed", "7", *extra]


def _final_weights(out):
    return torch.load(out / "model.pt", weights_only=True)


#: SpecAugment and dropout draw from the RNG whose state the checkpoints keep
RANDOM_OPTIONS = ("--spec-freq-masks", "1", "--spec-freq-width", "6", "--spec-time-masks", "1",
                  "--spec-time-width", "2", "--dropout", "0.1")


def test_resume_after_sigkill_reaches_the_same_weights(task, tmp_path):
    """A run killed inside an epoch and resumed ends with the uninterrupted run's weights, also
    when its batches are built by two data-loader workers and the reference's in-process."""
    reference = tmp_path / "ref"
    subprocess.run(_train_cmd(task, reference, *RANDOM_OPTIONS), check=True, capture_output=True)
    killed = tmp_path / "killed"
    workers = ("--num-workers", "2")
    proc = subprocess.Popen(_train_cmd(task, killed, *RANDOM_OPTIONS, *workers), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    latest = killed / "checkpoints" / "latest"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if latest.is_file() and latest.read_text().startswith("step-") and \
                int(latest.read_text().split("-")[1].split(".")[0]) >= 40:
            break
        time.sleep(0.005)
    assert proc.poll() is None, "training finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "model.pt").exists()
    state = load_state(killed / "checkpoints" / latest.read_text().strip())
    assert not state["epoch_done"] and 0 < state["batch"]  # killed inside an epoch
    result = subprocess.run(_train_cmd(task, killed, *RANDOM_OPTIONS, *workers, "--resume"), capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "resuming at epoch" in result.stderr
    ref, got = _final_weights(reference), _final_weights(killed)
    assert set(ref) == set(got)
    for name in ref:
        assert torch.equal(ref[name], got[name]), name
    ref_rows = [json.loads(x) for x in (reference / "metrics.jsonl").read_text().splitlines()]
    got_rows = [json.loads(x) for x in (killed / "metrics.jsonl").read_text().splitlines()]
    assert [r["train_loss"] for r in got_rows] == pytest.approx([r["train_loss"] for r in ref_rows], rel=1e-9)


def test_two_gloo_processes_under_torchrun_match_one_process(task, tmp_path):
    """Two ranks end with identical weights, and their loss trajectory is the one-process run's
    with the same global batch (DDP averages the two half-batch gradients; relative 1e-4); the
    held-out set, evaluated half on each rank, gives the one-process run's loss and accuracy."""
    worker = Path(__file__).with_name("ddp_worker.py")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    single, double = tmp_path / "single", tmp_path / "ddp"
    subprocess.run([sys.executable, str(worker), str(task / "feats"), str(task / "ali"), str(single)],
                   check=True, capture_output=True, env=env)
    result = subprocess.run([str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2", str(worker),
                             str(task / "feats"), str(task / "ali"), str(double)],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    info = json.loads((double / "training.json").read_text())
    assert info["world_size"] == 2 and info["chunks_per_batch"] == 4
    w0 = torch.load(double / "rank-0-weights.pt", weights_only=True)
    w1 = torch.load(double / "rank-1-weights.pt", weights_only=True)
    assert all(torch.equal(w0[k], w1[k]) for k in w0)
    one = [json.loads(x) for x in (single / "metrics.jsonl").read_text().splitlines()]
    two = [json.loads(x) for x in (double / "metrics.jsonl").read_text().splitlines()]
    assert len(two) == 2
    for key in ("train_loss", "valid_loss", "valid_frame_acc"):
        assert [r[key] for r in two] == pytest.approx([r[key] for r in one], rel=1e-4), key
    ref = torch.load(single / "rank-0-weights.pt", weights_only=True)
    assert all(torch.allclose(w0[k], v, atol=1e-4) for k, v in ref.items())


def test_train_options_come_from_the_configs_and_bad_ones_are_one_line(task, tmp_path, capsys):
    from hybrid_asr.cli.main import main

    assert main(["train", str(task / "feats"), str(task / "ali"), str(tmp_path / "m"), "--bidirectional"]) == 1
    err = capsys.readouterr().err
    assert "--bidirectional do not apply to model type dnn" in err and err.count("\n") == 1
    assert main(["train", str(task / "feats"), str(task / "ali"), str(tmp_path / "m"), "--optimizer", "rmsprop"]) == 1
    assert "optimizer must be one of" in capsys.readouterr().err
    assert main(["train", str(task / "feats"), str(task / "ali"), str(tmp_path / "m"), "--model", "tdnn",
                 "--kernels", "3,3", "--dilations", "1,2", "--hidden-dim", "8", "--epochs", "1"]) == 0
    cfg = json.loads((tmp_path / "m" / "model_config.json").read_text())
    assert cfg["type"] == "tdnn" and cfg["kernels"] == [3, 3] and cfg["hidden_dim"] == 8
    assert cfg["bottleneck_dim"] == 0  # not given: the dataclass default
    train_cfg = json.loads((tmp_path / "m" / "train_config.json").read_text())
    assert train_cfg["epochs"] == 1 and train_cfg["lr"] == 1e-3


def test_dropout_schedule_sets_every_dropout_layer_by_training_progress(task, tmp_path, capsys, monkeypatch):
    """Kaldi's schedule syntax, interpolated linearly; the trainer applies it before every step."""
    from hybrid_asr.cli.main import main
    from hybrid_asr.training import trainer

    points = trainer.parse_dropout_schedule("0,0@0.20,0.5@0.50,0")
    assert [round(trainer.dropout_at(points, f), 6) for f in (0, 0.2, 0.35, 0.5, 0.75, 1)] == [0, 0, 0.25, 0.5, 0.25, 0]
    assert trainer.parse_dropout_schedule("0,0.5,0") == [(0.0, 0.0), (0.5, 0.5), (1.0, 0.0)]
    seen = []
    real = trainer.set_dropout
    monkeypatch.setattr(trainer, "set_dropout", lambda model, p: (seen.append(p), real(model, p)))
    assert main(["train", str(task / "feats"), str(task / "ali"), str(tmp_path / "m"), "--epochs", "2", "--dropout",
                 "0.1", "--hidden-dim", "16", "--batch-size", "256", "--dropout-schedule", "0.4,0"]) == 0
    n = len(seen)
    assert n >= 4 and seen[0] == pytest.approx(0.4) and seen == sorted(seen, reverse=True)
    assert seen[n // 2] == pytest.approx(0.4 * (1 - (n // 2) / n), abs=1e-6)  # progress counts batches
    assert main(["train", str(task / "feats"), str(task / "ali"), str(tmp_path / "m2"), "--dropout-schedule",
                 "0,1.5"]) == 1
    assert "probabilities must be in [0, 1)" in capsys.readouterr().err
    assert main(["train", str(task / "feats"), str(task / "ali"), str(tmp_path / "m3"), "--dropout", "0",
                 "--dropout-schedule", "0.2,0", "--epochs", "1"]) == 1
    assert "the model has no dropout layers" in capsys.readouterr().err


def test_training_runs_without_k2(task, tmp_path):
    """The training stage needs no k2 (a GPU machine's newest torch may have no k2 build, and
    benchmarks/gpu_check.py trains there): with ``import k2`` failing, ``hybrid-asr train`` writes a
    complete model directory, and k2 was never imported."""
    script = (
        "import importlib.abc, sys\n"
        "class NoK2(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'k2' or name.startswith('k2.'):\n"
        "            raise ImportError('k2 blocked by the test')\n"
        "sys.meta_path.insert(0, NoK2())\n"
        "from hybrid_asr.cli.main import main\n"
        "status = main(sys.argv[1:])\n"
        "assert 'k2' not in sys.modules\n"
        "sys.exit(status)\n")
    out = tmp_path / "model"
    result = subprocess.run([sys.executable, "-c", script, *_train_cmd(task, out)[1:]], capture_output=True,
                            text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "bundle.json").is_file() and (out / "model.pt").is_file()
