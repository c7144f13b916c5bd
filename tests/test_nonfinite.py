"""A diverged model stops at training and never passes as a model: batches with a NaN or infinite
loss or gradient are skipped and counted, training stops with one line past
``--max-nonfinite-batches`` of them in a row or on a non-finite held-out loss, ``ModelBundle.save``
refuses non-finite weights or priors, and every command that loads a model refuses such a
directory (docs/robustness.md, "Diverged training")."""

import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import two_class_task

from hybrid_asr.bundle import MANIFEST, ModelBundle, file_sha256
from hybrid_asr.cli.main import main
from hybrid_asr.errors import InputError, TrainingDivergedError
from hybrid_asr.features import FeatureStore
from hybrid_asr.hmm.alignment import Alignments
from hybrid_asr.models import DnnConfig, create_model
from hybrid_asr.training import ChunkData, DistributedContext, TrainConfig, train_model
from hybrid_asr.training.trainer import FrameCrossEntropy

#: a DNN small enough to train in a fraction of a second on the store below
SMALL = ("--hidden-dim", "16", "--num-layers", "1", "--left-context", "2", "--right-context", "2",
         "--batch-size", "32", "--seed", "3")


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    """A feature store of 8 utterances (0.6 s of quiet then loud noise, 8 kHz, 23 bins) and an
    alignment dir labelling the halves 0 / 1: 13 batches of 32 frames per epoch."""
    utterances = []
    for i in range(8):
        g = torch.Generator().manual_seed(i)
        utterances.append((f"u{i}", f"s{i % 2}", torch.cat([1000 * torch.randn(2400, generator=g),
                                                            3000 * torch.randn(2400, generator=g)])))
    return two_class_task(tmp_path_factory.mktemp("nonfinite"), utterances)


def _train(task, out, *extra):
    return main(["train", str(task / "feats"), str(task / "ali"), str(out), *SMALL, *extra])


def _stderr_lines(capsys):
    return capsys.readouterr().err.strip().splitlines()


def _skip_warnings(caplog):
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and "its update is skipped" in r.getMessage()]


def _diverge(task, out, capsys, *extra):
    """Train into ``out`` (which holds an earlier model's ``bundle.json``); the exit status and
    stderr lines."""
    out.mkdir()
    (out / MANIFEST).write_text("{}")  # an earlier model in the directory: no longer complete once training starts
    capsys.readouterr()
    code = _train(task, out, *extra)
    return code, _stderr_lines(capsys)


def test_training_driven_to_nan_stops_with_one_line_and_writes_no_model(task, tmp_path, capsys):
    """``--optimizer sgd --lr 1e8``, through the production code: which check fires first
    depends on the arithmetic (here the gradient norm becomes inf in batch 7), so any of the
    three diverged messages passes; the tests below pin each one."""
    out = tmp_path / "m"
    code, err = _diverge(task, out, capsys, "--optimizer", "sgd", "--lr", "1e8", "--final-lr", "1e8",
                         "--epochs", "3", "--max-nonfinite-batches", "3", "--seed", "0")
    assert code == 1
    assert len(err) == 1 and re.fullmatch(
        rf"hybrid-asr train: error: {re.escape(str(out))}: training diverged: "
        r"(3 batches in a row had a NaN or infinite loss or gradient \(last: epoch \d, batch \d+/13, the "
        r"(loss|gradient norm) is (nan|inf)\)|after epoch \d, (weight|buffer) \S+ has \d+ NaN/Inf values \(of \d+\)"
        r"|the held-out loss of epoch \d is (nan|inf)); lower --lr or set --grad-clip", err[0]), err
    assert not (out / MANIFEST).exists() and not (out / "model.pt").exists()
    assert json.loads((out / "train_config.json").read_text())["max_nonfinite_batches"] == 3


def test_every_batch_nonfinite_stops_at_the_limit(task, tmp_path, capsys, caplog, monkeypatch):
    original = FrameCrossEntropy.__call__
    monkeypatch.setattr(FrameCrossEntropy, "__call__", lambda self, net, batch, device: (
        lambda loss, stats: (loss * float("nan"), stats))(*original(self, net, batch, device)))
    out = tmp_path / "m"
    code, err = _diverge(task, out, capsys, "--max-nonfinite-batches", "3")
    assert code == 1
    assert err == [f"hybrid-asr train: error: {out}: training diverged: 3 batches in a row had a NaN or infinite "
                   "loss or gradient (last: epoch 1, batch 3/13, the loss is nan); lower --lr or set --grad-clip"]
    assert _skip_warnings(caplog) == [  # the first two skips warn, the third stops
        f"epoch 1, batch {b}/13: the loss is nan; its update is skipped ({b} in a row, training stops at 3)"
        for b in (1, 2)]
    assert not (out / MANIFEST).exists() and not (out / "model.pt").exists()
    assert not (out / "checkpoints" / "epoch-1.pt").exists()


def test_nonfinite_buffer_stops_training_at_the_end_of_the_epoch(task, tmp_path, capsys, monkeypatch):
    """BatchNorm statistics that overflow leave every loss finite (training mode uses the batch's
    own statistics): the check at the end of the epoch stops the run."""
    original = FrameCrossEntropy.__call__

    def overflow(self, net, batch, device):
        net.state_dict()["body.1.running_var"][:4] = float("inf")
        return original(self, net, batch, device)

    monkeypatch.setattr(FrameCrossEntropy, "__call__", overflow)
    out = tmp_path / "m"
    code, err = _diverge(task, out, capsys, "--valid-fraction", "0")
    assert code == 1
    assert err == [f"hybrid-asr train: error: {out}: training diverged: after epoch 1, buffer body.1.running_var has "
                   "4 NaN/Inf values (of 16); lower --lr or set --grad-clip"]
    assert not (out / MANIFEST).exists() and not (out / "checkpoints" / "epoch-1.pt").exists()


def test_nonfinite_batches_are_skipped_counted_and_training_finishes(task, tmp_path, monkeypatch, caplog):
    """Call 3 returns a NaN loss, call 6 a finite loss with NaN gradients (``sqrt`` at 0): both
    updates are skipped (the parameters before the next batch are those before the bad one),
    the others are not, and the first epoch's metrics count 2."""
    original = FrameCrossEntropy.__call__
    before = []  # parameters at the start of each call

    def flaky(self, net, batch, device):
        before.append([p.detach().clone() for p in net.parameters()])
        loss, stats = original(self, net, batch, device)
        if len(before) == 3:
            loss = loss * float("nan")
        elif len(before) == 6:
            loss = loss + torch.sqrt(next(net.parameters()).flatten()[0] * 0)  # value 0, gradient NaN
            assert torch.isfinite(loss)
        return loss, stats

    monkeypatch.setattr(FrameCrossEntropy, "__call__", flaky)
    out = tmp_path / "m"
    assert _train(task, out, "--epochs", "2", "--valid-fraction", "0") == 0

    def same(a, b):
        return all(torch.equal(x, y) for x, y in zip(before[a - 1], before[b - 1]))

    assert same(3, 4) and same(6, 7)  # no update from calls 3 and 6
    assert not same(2, 3) and not same(4, 5) and not same(7, 8)  # every other call updates
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["skipped_batches"] for r in rows] == [2, 0]
    assert _skip_warnings(caplog) == [
        "epoch 1, batch 3/15: the loss is nan; its update is skipped (1 in a row, training stops at 10)",
        "epoch 1, batch 6/15: the gradient norm is nan; its update is skipped (1 in a row, training stops at 10)"]
    bundle = ModelBundle.load(out)  # complete, and finite (load refuses anything else)
    assert all(torch.isfinite(t).all() for t in bundle.model.state_dict().values() if t.is_floating_point())


class _OtherRankBad(DistributedContext):
    """Rank 0 of two whose (simulated) other rank finds a non-finite batch at the given 1-based
    reductions of the skip flag (one per batch, then one per epoch end); the model is not
    wrapped, the other reductions return this rank's values."""

    def __init__(self, bad):
        super().__init__(rank=0, world_size=2)
        self.bad, self.flags = set(bad), 0

    def wrap(self, model):
        return model

    def all_reduce_sum(self, values):
        if len(values) > 1:
            return [float(v) for v in values]
        self.flags += 1
        return [float(values[0]) + (self.flags in self.bad)]

    def barrier(self):
        pass


def test_a_batch_bad_on_another_rank_is_skipped_on_this_one(task, tmp_path, caplog):
    """Under DDP every rank takes the skip decision of all: a rank whose own batch is finite does
    not step when another rank's is not (its loss is local, so DDP's gradient average alone
    would not tell it)."""
    store = FeatureStore(task / "feats")
    alis = Alignments.load(task / "ali" / "ali.npz")
    torch.manual_seed(0)
    model = create_model(DnnConfig(feat_dim=store.config.dim, num_pdfs=2, hidden_dim=16, num_layers=1,
                                   left_context=2, right_context=2, dropout=0.0))
    data = ChunkData(store, alis, list(alis), 2, 2, 1, 1)
    before = []
    original = FrameCrossEntropy()

    def objective(net, batch, device):
        before.append([p.detach().clone() for p in net.parameters()])
        return original(net, batch, device)

    objective.evaluate = original.evaluate
    rows = train_model(model, data, None, TrainConfig(epochs=1, batch_size=32), tmp_path / "m",
                       dist=_OtherRankBad({3}), objective=objective)
    assert [r["skipped_batches"] for r in rows] == [1]
    assert all(torch.equal(x, y) for x, y in zip(before[2], before[3]))  # batch 3: no update
    assert not any(torch.equal(x, y) for x, y in zip(before[1], before[2]))  # batch 2 (finite everywhere): one
    n = -(-(len(data) // 2) // 16)  # batches of 16 chunks on this rank
    assert _skip_warnings(caplog) == [f"epoch 1, batch 3/{n}: the loss or gradient is not finite on 1 other rank(s); "
                                      "its update is skipped (1 in a row, training stops at 10)"]


def test_nonfinite_heldout_loss_stops_training(task, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(FrameCrossEntropy, "evaluate", lambda self, model, data, device="cpu", order=None:
                        {"loss": float("inf"), "frame_acc": 50.0, "frames": 100})
    out = tmp_path / "m"
    code, err = _diverge(task, out, capsys, "--epochs", "2")
    assert code == 1
    assert err == [f"hybrid-asr train: error: {out}: training diverged: the held-out loss of epoch 1 is inf; "
                   "lower --lr or set --grad-clip"]
    assert not (out / MANIFEST).exists() and not (out / "checkpoints" / "epoch-1.pt").exists()


@pytest.fixture()
def model_dir(task, toy_topo, tmp_path):
    """A complete, finite model directory over the toy phones, and the first weight's name."""
    store = FeatureStore(task / "feats")
    torch.manual_seed(0)
    model = create_model(DnnConfig(feat_dim=store.config.dim, num_pdfs=toy_topo.num_pdfs, hidden_dim=8,
                                   num_layers=1, left_context=1, right_context=1)).eval()
    priors = torch.full((toy_topo.num_pdfs,), -float(np.log(toy_topo.num_pdfs)))
    ModelBundle(model, store.config, store.global_cmvn, priors, toy_topo).save(tmp_path / "model")
    return tmp_path / "model", next(iter(model.state_dict()))


def _poison(model_dir: Path, name: str, key=None, count=5):
    """Set ``count`` values of ``name`` (model.pt's tensor ``key``, or priors.pt) to NaN/Inf and
    record the new file in the manifest, as a diverged model saved without the check would be."""
    state = torch.load(model_dir / name, weights_only=True)
    t = state[key] if key is not None else state
    t.view(-1)[:count] = torch.tensor([float("nan"), float("inf")]).repeat(count)[:count]
    torch.save(state, model_dir / name)
    manifest = json.loads((model_dir / MANIFEST).read_text())
    manifest["files"][name] = file_sha256(model_dir / name)
    (model_dir / MANIFEST).write_text(json.dumps(manifest))
    return t.numel()


def test_save_refuses_nonfinite_weights_and_priors(model_dir, tmp_path):
    d, key = model_dir
    bundle = ModelBundle.load(d)
    with torch.no_grad():
        bundle.model.state_dict()[key].view(-1)[:3] = float("nan")
    numel = bundle.model.state_dict()[key].numel()
    with pytest.raises(TrainingDivergedError) as e:
        bundle.save(d)
    assert str(e.value) == (f"{d}: not saved as a model: model weight {key} has 3 NaN/Inf values (of {numel:,}): "
                            "training diverged (lower --lr)")
    assert not (d / MANIFEST).exists()  # the model that was there is no longer marked complete
    bundle.model.load_state_dict({k: torch.zeros_like(v) for k, v in bundle.model.state_dict().items()})
    bundle.log_priors = bundle.log_priors.clone()
    bundle.log_priors[1] = -float("inf")
    with pytest.raises(TrainingDivergedError, match=r"not saved as a model: 1 of the \d+ log priors are NaN/Inf"):
        bundle.save(tmp_path / "other")
    assert not (tmp_path / "other" / MANIFEST).exists() and not (tmp_path / "other" / "model.pt").exists()


@pytest.mark.parametrize("name", ["model.pt", "priors.pt"])
def test_nonfinite_model_dir_is_refused_by_load_and_every_command(model_dir, task, toy_lang, tmp_path, capsys, name):
    d, key = model_dir
    numel = _poison(d, name, key if name == "model.pt" else None)
    if name == "model.pt":
        problem = (f"{d / name}: weight {key} has 5 NaN/Inf values (of {numel:,}): training diverged, the model is "
                   "unusable (retrain it with a lower --lr)")
    else:
        problem = f"{d / name}: 5 of its {numel:,} log priors are NaN or infinite: the model is unusable (retrain it)"
    with pytest.raises(InputError) as e:
        ModelBundle.load(d)
    assert str(e.value) == problem
    wav = tmp_path / "a.wav"
    sf.write(wav, np.random.default_rng(0).normal(0, 0.1, 8000).astype(np.float32), 8000)
    commands = {"decode": [d, wav], "make-graph": [d, toy_lang.path],
                "align-audio": [d, toy_lang.path, wav, "AB"],
                "decode-dataset": [d, task / "feats", tmp_path / "decode"],
                "align": [task / "feats", toy_lang.path, tmp_path / "ali", "--model", d]}
    for command, args in commands.items():
        capsys.readouterr()
        assert main([command, *map(str, args)]) == 1, command
        assert _stderr_lines(capsys) == [f"hybrid-asr {command}: error: {problem}"], command
    assert not (d / "graph_info.json").exists()
