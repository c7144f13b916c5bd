"""Priors, spliced frame batches, the DNN, the training loop and the model bundle."""

import json

import numpy as np
import pytest
import torch

from hybrid_asr.bundle import ModelBundle
from hybrid_asr.errors import InputError
from hybrid_asr.features import (
    FeatureConfig,
    FeatureStore,
    compute_feature_store,
    splice,
)
from hybrid_asr.hmm import HmmTopology
from hybrid_asr.models import DnnAcousticModel, DnnConfig
from hybrid_asr.training import (
    FrameData,
    TrainConfig,
    estimate_log_priors,
    split_utterances,
    train_model,
)


def test_priors_from_counts_with_floor():
    logp = estimate_log_priors([np.array([0, 0, 2]), np.array([2, 2, 1])], num_pdfs=4, floor=1e-3)
    p = logp.exp()
    assert p.sum().item() == pytest.approx(1.0, abs=1e-6)
    assert p[2] > p[0] > p[1] > p[3] > 0
    assert (p[0] / p[1]).item() == pytest.approx(2.0, rel=1e-3)
    assert p[3].item() == pytest.approx(1e-3 / (1 + 1e-3), rel=1e-3)


def _tone(freq, seconds=0.6, rate=8000):
    t = torch.arange(int(seconds * rate)) / rate
    noise = torch.randn(t.numel(), generator=torch.Generator().manual_seed(freq))
    return 3000 * torch.sin(2 * torch.pi * freq * t) + 30 * noise


@pytest.fixture(scope="module")
def tone_store(tmp_path_factory):
    """Utterances of a low tone then a high tone; frame labels 0 (low) / 1 (high)."""
    out = tmp_path_factory.mktemp("tones")
    segs = []
    for i in range(8):
        lo, hi = 200 + 20 * i, 2500 + 50 * i
        wave = torch.cat([_tone(lo), _tone(hi)])
        segs.append((f"u{i}", f"s{i % 2}", "X", lambda rate, w=wave: w))
    compute_feature_store(segs, FeatureConfig(sample_rate=8000, num_mel_bins=23), out)
    store = FeatureStore(out)
    alis = {}
    for u in store.utterances:
        half = u.frames // 2
        alis[u.id] = np.array([0] * half + [1] * (u.frames - half), dtype=np.int32)
    return store, alis


def test_frame_data_splices_within_utterances(tone_store):
    store, alis = tone_store
    data = FrameData(store, alis, ["u0", "u1"], 2, 3)
    n0 = store.utterance("u0").frames
    assert len(data) == n0 + store.utterance("u1").frames
    idx = torch.tensor([0, n0 - 1, n0, len(data) - 1])
    got = data.spliced(idx)
    want0 = splice(store.normalized("u0"), 2, 3)
    want1 = splice(store.normalized("u1"), 2, 3)
    assert torch.allclose(got[0], want0[0]) and torch.allclose(got[1], want0[-1])
    assert torch.allclose(got[2], want1[0]) and torch.allclose(got[3], want1[-1])
    assert data.targets[idx].tolist() == [0, 1, 0, 1]


def test_dnn_shapes_and_log_softmax():
    cfg = DnnConfig(feat_dim=5, num_pdfs=7, left_context=1, right_context=1, hidden_dim=16, num_layers=2)
    model = DnnAcousticModel(cfg).eval()
    out = model(torch.randn(2, 9, cfg.input_dim))
    assert out.shape == (2, 9, 7)
    assert torch.allclose(out.exp().sum(-1), torch.ones(2, 9), atol=1e-5)


def test_split_utterances_is_deterministic_and_disjoint():
    ids = [f"u{i}" for i in range(40)]
    tr, va = split_utterances(ids, 0.1, seed=3)
    assert (tr, va) == split_utterances(list(reversed(ids)), 0.1, seed=3)
    assert len(va) == 4 and not set(tr) & set(va) and set(tr) | set(va) == set(ids)
    perturbed = ids + [f"{u}_sp0.9" for u in ids]
    tr, va = split_utterances(perturbed, 0.1, seed=3)
    assert len(va) == 8 and {u.replace("_sp0.9", "") for u in va} & {u.replace("_sp0.9", "") for u in tr} == set()


def test_training_learns_a_separable_task(tone_store, tmp_path):
    store, alis = tone_store
    torch.manual_seed(0)
    cfg = DnnConfig(feat_dim=23, num_pdfs=2, left_context=2, right_context=2, hidden_dim=32, num_layers=2)
    model = DnnAcousticModel(cfg)
    train = FrameData(store, alis, [f"u{i}" for i in range(6)], 2, 2)
    valid = FrameData(store, alis, ["u6", "u7"], 2, 2)
    history = train_model(model, train, valid, TrainConfig(epochs=3, batch_size=64, lr=3e-3), tmp_path)
    assert history[-1]["valid_frame_acc"] > 90.0
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]
    assert (tmp_path / "metrics.png").stat().st_size > 1000
    ckpt = torch.load(tmp_path / "checkpoints" / "epoch-3.pt")
    assert ckpt["epoch"] == 3 and set(ckpt["model"]) == set(model.state_dict())


def test_bundle_roundtrip_and_missing_file(tone_store, tmp_path):
    store, alis = tone_store
    cfg = DnnConfig(feat_dim=23, num_pdfs=2, left_context=1, right_context=1, hidden_dim=8, num_layers=1)
    model = DnnAcousticModel(cfg).eval()
    topo = HmmTopology(["SIL"], [1], [2])
    bundle = ModelBundle(model, store.config, store.global_cmvn, estimate_log_priors(alis.values(), 2), topo)
    bundle.save(tmp_path)
    back = ModelBundle.load(tmp_path)
    x = torch.randn(4, cfg.input_dim)
    assert torch.allclose(back.model(x), model(x))
    assert back.topology.num_pdfs == 2 and back.feature_config == store.config
    assert torch.equal(back.log_priors, bundle.log_priors)
    (tmp_path / "priors.pt").unlink()
    with pytest.raises(InputError, match="priors.pt: missing from the model directory"):
        ModelBundle.load(tmp_path)
