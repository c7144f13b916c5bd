"""Priors, spliced frame batches, the DNN, the training loop and the model bundle."""

import json

import numpy as np
import pytest
import torch

from hybrid_asr.bundle import ModelBundle, file_sha256
from hybrid_asr.errors import InputError
from hybrid_asr.features import (
    FeatureConfig,
    FeatureStore,
    compute_feature_store,
    splice,
)
from hybrid_asr.hmm import HmmTopology
from hybrid_asr.models import DnnAcousticModel, DnnConfig, LstmConfig, TdnnConfig, TdnnLstmConfig, create_model, pad_context
from hybrid_asr.training import (
    IGNORE,
    ChunkData,
    TrainConfig,
    average_state_dicts,
    chunk_starts,
    epoch_order,
    estimate_log_priors,
    split_utterances,
    train_model,
)
from hybrid_asr.training.spec_augment import SpecAugmentConfig, spec_augment
from hybrid_asr.training.trainer import FrameCrossEntropy, LrSchedule, load_checkpoint


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


def test_chunks_read_the_right_normalized_frames_with_context(tone_store):
    """Every chunk's input is the utterance's CMVN-normalized frames around the chunk, edge frames
    repeated at the utterance boundaries, and its targets the chunk's own frames."""
    store, alis = tone_store
    data = ChunkData(store, alis, ["u0", "u1"], left=2, right=3, chunk_frames=8)
    n0, n1 = store.utterance("u0").frames, store.utterance("u1").frames
    assert len(data) == -(-n0 // 8) + -(-n1 // 8) and data.num_frames == n0 + n1
    x, y = data.batch(np.arange(len(data)))
    assert x.shape == (len(data), 8 + 2 + 3, 23) and y.shape == (len(data), 8)
    for k in range(len(data)):
        utt = data.utt_ids[data.chunk_utt[k]]
        start = int(data.chunk_start[k])
        want = pad_context(store.normalized(utt), 2, 3)[start : start + 13]
        assert torch.allclose(x[k], want, atol=1e-5)
        assert y[k].tolist() == alis[utt][start : start + 8].tolist()
    last = [k for k in range(len(data)) if data.chunk_utt[k] == 0][-1]
    assert int(data.chunk_start[last]) == n0 - 8  # the last chunk ends on the last frame


def test_short_utterance_chunk_is_padded_and_its_padding_ignored(tone_store):
    store, alis = tone_store
    n0 = store.utterance("u0").frames
    data = ChunkData(store, alis, ["u0"], left=1, right=1, chunk_frames=n0 + 5, subsampling=1)
    _, y = data.batch([0])
    assert (y[0, :n0] >= 0).all() and (y[0, n0:] == IGNORE).all()
    sub = ChunkData(store, alis, ["u0"], left=0, right=0, chunk_frames=4, subsampling=3)
    assert sub.num_frames == -(-n0 // 3)
    _, y = sub.batch([0])
    assert y[0].tolist() == alis["u0"][0:12:3].tolist()


def test_chunk_starts_cover_every_frame():
    for t in (1, 7, 8, 9, 30):
        starts = chunk_starts(t, 8)
        covered = set()
        for s in starts:
            covered.update(range(s, min(s + 8, t)))
        assert covered == set(range(t)) and starts.max() <= max(0, t - 8)


def test_epoch_order_shards_one_global_permutation():
    full = epoch_order(101, seed=3, epoch=2)
    assert sorted(full.tolist()) == list(range(101))
    assert not torch.equal(full, epoch_order(101, seed=3, epoch=3))
    r0, r1 = epoch_order(101, 3, 2, 0, 2), epoch_order(101, 3, 2, 1, 2)
    assert len(r0) == len(r1) == 50
    assert torch.equal(torch.stack([r0, r1], 1).reshape(-1), full[:100])


def test_block_order_reads_blocks_of_the_store_in_random_order_shuffled_in_windows():
    """--shuffle-block-chunks: a permutation of every chunk, seeded by (seed, epoch); with a
    window of one block the chunks of each block are read together; with a window of
    W chunks every W consecutive positions come from at most W / B + 1 blocks, and the order
    inside a window is shuffled; ranks interleave one permutation as without blocks."""
    n, b = 1003, 10
    one_block = epoch_order(n, seed=4, epoch=1, block_chunks=b, window_chunks=b).tolist()
    assert sorted(one_block) == list(range(n))
    runs = [sorted(one_block[i:i + b]) for i in range(0, n, b)]
    # each window holds one block's chunks (after the short last block, windows straddle two)
    assert sum(r == list(range(r[0], r[0] + b)) for r in runs) >= len(runs) // 3
    assert one_block != sorted(one_block)  # blocks in a random order
    order = epoch_order(n, seed=4, epoch=1, block_chunks=b)  # window 4 blocks
    assert sorted(order.tolist()) == list(range(n))
    assert all(len({c // b for c in order[i:i + 4 * b].tolist()}) <= 5 for i in range(0, n, 4 * b))
    assert torch.equal(order, epoch_order(n, seed=4, epoch=1, block_chunks=b))
    assert not torch.equal(order, epoch_order(n, seed=4, epoch=2, block_chunks=b))
    assert sum(x < y for x, y in zip(order.tolist(), order.tolist()[1:])) < 0.8 * n  # shuffled inside windows
    r0, r1 = (epoch_order(n, 4, 1, r, 2, block_chunks=b) for r in (0, 1))
    assert torch.equal(torch.stack([r0, r1], 1).reshape(-1), order[:n - 1])


def test_dnn_splices_in_kaldi_order():
    """The DNN's forward is its layers on Kaldi-spliced frames (so older model files still load)."""
    cfg = DnnConfig(feat_dim=5, num_pdfs=7, left_context=1, right_context=2, hidden_dim=16, num_layers=2)
    model = DnnAcousticModel(cfg).eval()
    feats = torch.randn(9, 5)
    out, lengths = model(pad_context(feats, 1, 2).unsqueeze(0), torch.tensor([12]))
    want = torch.log_softmax(model.output(model.body(splice(feats, 1, 2))), dim=-1)
    assert lengths.tolist() == [9] and torch.allclose(out[0], want, atol=1e-6)


def test_split_utterances_is_deterministic_and_disjoint():
    ids = [f"u{i}" for i in range(40)]
    tr, va = split_utterances(ids, 0.1, seed=3)
    assert (tr, va) == split_utterances(list(reversed(ids)), 0.1, seed=3)
    assert len(va) == 4 and not set(tr) & set(va) and set(tr) | set(va) == set(ids)
    perturbed = ids + [f"{u}_sp0.9" for u in ids]
    tr, va = split_utterances(perturbed, 0.1, seed=3)
    assert len(va) == 8 and {u.replace("_sp0.9", "") for u in va} & {u.replace("_sp0.9", "") for u in tr} == set()
    # augmented copies (compute-features --augment: <id>_aug) stay with their original too
    copies = ids + [f"{u}_aug" for u in ids] + [f"{u}_sp1.1" for u in ids]
    tr, va = split_utterances(copies, 0.1, seed=3)
    base = {u.split("_")[0] for u in va}
    assert len(va) == 12 and len(base) == 4 and not base & {u.split("_")[0] for u in tr}


@pytest.mark.parametrize("model_type", ["dnn", "tdnn", "lstm", "tdnn_lstm"])
def test_training_learns_a_separable_task(tone_store, tmp_path, model_type):
    store, alis = tone_store
    torch.manual_seed(0)
    cfg = {"dnn": DnnConfig(feat_dim=23, num_pdfs=2, left_context=2, right_context=2, hidden_dim=32, num_layers=2),
           "tdnn": TdnnConfig(feat_dim=23, num_pdfs=2, kernels=(3, 3), dilations=(1, 2), hidden_dim=32),
           "lstm": LstmConfig(feat_dim=23, num_pdfs=2, hidden_dim=16, proj_dim=8, num_layers=1, left_context=5),
           "tdnn_lstm": TdnnLstmConfig(feat_dim=23, num_pdfs=2, kernels=(3, 3), dilations=(1, 3), lstm_after=(1, 2),
                                       hidden_dim=16, lstm_dim=16, proj_dim=8, left_context=6),
           }[model_type]
    model = create_model(cfg)
    chunk = model.default_chunk_frames
    ctx = (model.left_context, model.right_context, chunk)
    train = ChunkData(store, alis, [f"u{i}" for i in range(6)], *ctx)
    valid = ChunkData(store, alis, ["u6", "u7"], *ctx)
    config = TrainConfig(epochs=3, batch_size=64, lr=3e-3, final_model="average", scheduler="plateau",
                         warmup_steps=3, grad_clip=5.0)
    history = train_model(model, train, valid, config, tmp_path)
    assert history[-1]["valid_frame_acc"] > 90.0
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]
    assert all(json.loads(line)["frames_per_second"] > 0 for line in lines)
    assert (tmp_path / "metrics.png").stat().st_size > 1000
    ckpt = load_checkpoint(tmp_path / "checkpoints" / "epoch-3.pt")
    assert ckpt["epoch"] == 3 and ckpt["epoch_done"] and set(ckpt["model"]) == set(model.state_dict())
    info = json.loads((tmp_path / "training.json").read_text())
    assert info["final_model"] == "average of epochs 2,3" and info["parameters"] == model.num_parameters()
    averaged = average_state_dicts([load_checkpoint(tmp_path / "checkpoints" / f"epoch-{e}.pt")["model"]
                                    for e in (2, 3)])
    assert all(torch.allclose(model.state_dict()[k].float(), v.float()) for k, v in averaged.items())


def test_spec_augment_zeroes_whole_bands_of_bounded_width():
    torch.manual_seed(3)
    x = torch.rand(200, 50, 40) + 1.0  # no zero before masking
    before = x.clone()
    config = SpecAugmentConfig(freq_masks=2, freq_width=8, time_masks=1, time_width=10)
    out = spec_augment(x, config)
    assert torch.equal(x, before)  # input untouched
    zero = out == 0
    bins = zero.all(dim=1)  # [B, F]: bins masked at every frame
    frames = zero.all(dim=2)  # [B, T]
    # every zero is in a masked bin or a masked frame, and nothing else changed
    assert torch.equal(zero, bins[:, None, :] | frames[:, :, None])
    assert torch.equal(out[~zero], x[~zero])

    def runs(mask):  # contiguous True runs of a 1-D mask
        padded = torch.cat([torch.tensor([False]), mask, torch.tensor([False])]).int()
        edges = torch.nonzero(padded.diff()).flatten()
        return (edges[1::2] - edges[::2]).tolist()

    for b in range(200):
        freq_runs, time_runs = runs(bins[b]), runs(frames[b])
        # (the time band, <= 10 of 50 frames, never zeroes a whole bin, nor the bands a whole frame)
        assert len(freq_runs) <= 2 and all(r <= 16 for r in freq_runs)
        assert len(time_runs) <= 1 and all(r <= 10 for r in time_runs)
    # widths uniform in [0, w]: about 2 * 4 / 40 of the bins and 5 / 50 of the frames on average
    assert 0.12 < bins.float().mean() < 0.22 and 0.06 < frames.float().mean() < 0.14
    assert spec_augment(x, SpecAugmentConfig()) is x
    with pytest.raises(ValueError):
        SpecAugmentConfig(freq_masks=-1)
    with pytest.raises(ValueError):
        TrainConfig(spec_time_width=-2)


def test_spec_augment_masks_training_batches_only(tone_store):
    store, alis = tone_store
    torch.manual_seed(0)
    model = create_model(TdnnConfig(feat_dim=23, num_pdfs=2, kernels=(3, 3), dilations=(1, 2), hidden_dim=32))
    data = ChunkData(store, alis, ["u0", "u1"], model.left_context, model.right_context, 8)
    batch = data.batch(list(range(len(data))))
    model.eval()
    plain, masked = FrameCrossEntropy(), FrameCrossEntropy(augment=TrainConfig(
        spec_freq_masks=2, spec_freq_width=10, spec_time_masks=2, spec_time_width=6).spec_augment)
    loss_plain, _ = plain(model, batch, torch.device("cpu"))
    torch.manual_seed(1)
    loss_masked, _ = masked(model, batch, torch.device("cpu"))
    torch.manual_seed(1)
    again, _ = masked(model, batch, torch.device("cpu"))
    assert loss_masked.item() != pytest.approx(loss_plain.item(), rel=1e-4)
    assert again.item() == loss_masked.item()  # the masks come from torch's seeded generator
    assert masked.evaluate(model, data) == plain.evaluate(model, data)


def test_learning_rate_schedule():
    sched = LrSchedule(TrainConfig(epochs=3, lr=1e-2, final_lr=1e-4, warmup_steps=10))
    assert sched.lr(1, 5) == pytest.approx(5e-3)
    assert sched.lr(2, 50) == pytest.approx(1e-3) and sched.lr(3, 100) == pytest.approx(1e-4)
    plateau = LrSchedule(TrainConfig(lr=1e-2, final_lr=2e-3, scheduler="plateau", plateau_factor=0.5))
    for loss in (1.0, 0.9, 0.95, 0.95, 0.95):
        plateau.end_epoch(loss)
    assert plateau.lr(5, 1000) == pytest.approx(2e-3)  # halved three times, floored at final_lr
    plateau.load_state_dict({"factor": 0.5, "best": 0.9})
    assert plateau.lr(1, 1000) == pytest.approx(5e-3)


def test_bundle_roundtrip_and_missing_file(tone_store, tmp_path):
    store, alis = tone_store
    cfg = DnnConfig(feat_dim=23, num_pdfs=2, left_context=1, right_context=1, hidden_dim=8, num_layers=1)
    model = DnnAcousticModel(cfg).eval()
    topo = HmmTopology(["SIL"], [1], [2])
    bundle = ModelBundle(model, store.config, store.global_cmvn, estimate_log_priors(alis.values(), 2), topo)
    bundle.save(tmp_path)
    back = ModelBundle.load(tmp_path)
    x, lengths = torch.randn(3, 6, 23), torch.tensor([6, 6, 6])
    assert torch.allclose(back.model(x, lengths)[0], model(x, lengths)[0])
    assert back.topology.num_pdfs == 2 and back.feature_config == store.config
    assert torch.equal(back.log_priors, bundle.log_priors)
    (tmp_path / "priors.pt").unlink()
    with pytest.raises(InputError, match="priors.pt: missing from the model directory"):
        ModelBundle.load(tmp_path)


class _RunsCode:
    """Unpickling this calls ``os.system`` (an untrusted model file)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("name", ["model.pt", "priors.pt"])
def test_bundle_load_never_runs_code_from_its_files(tone_store, tmp_path, name):
    store, alis = tone_store
    cfg = DnnConfig(feat_dim=23, num_pdfs=2, left_context=1, right_context=1, hidden_dim=8, num_layers=1)
    topo = HmmTopology(["SIL"], [1], [2])
    ModelBundle(DnnAcousticModel(cfg), store.config, store.global_cmvn, estimate_log_priors(alis.values(), 2),
                topo).save(tmp_path)
    marker = tmp_path / "pwned"
    torch.save({"x": _RunsCode(marker)} if name == "model.pt" else _RunsCode(marker), tmp_path / name)
    with pytest.raises(InputError, match=f"{name}: differs from the file bundle.json was written with"):
        ModelBundle.load(tmp_path)
    manifest = json.loads((tmp_path / "bundle.json").read_text())  # as if the manifest were forged too
    manifest["files"][name] = file_sha256(tmp_path / name)
    (tmp_path / "bundle.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match=f"{name}: cannot be loaded as tensors only"):
        ModelBundle.load(tmp_path)
    assert not marker.exists()


def test_bundle_rejects_priors_of_the_wrong_shape(tone_store, tmp_path):
    store, alis = tone_store
    cfg = DnnConfig(feat_dim=23, num_pdfs=2, left_context=1, right_context=1, hidden_dim=8, num_layers=1)
    ModelBundle(DnnAcousticModel(cfg), store.config, store.global_cmvn, torch.zeros(2, 2),
                HmmTopology(["SIL"], [1], [2])).save(tmp_path)
    with pytest.raises(InputError, match="priors.pt: is not a 1-D tensor"):
        ModelBundle.load(tmp_path)


def test_held_out_split_keeps_copies_together_and_is_capped_in_seconds():
    from hybrid_asr.training.trainer import split_utterances

    ids = [f"u{i:02d}{sp}" for i in range(40) for sp in ("", "_sp0.9", "_sp1.1")]
    train, valid = split_utterances(ids, 0.25, seed=1)
    assert len(valid) == 30 and sorted(train + valid) == sorted(ids)
    originals = {v.split("_sp")[0] for v in valid}
    assert all(f"{o}{sp}" in valid for o in originals for sp in ("", "_sp0.9", "_sp1.1"))
    seconds = {u: 2.0 for u in ids}  # 6 s per utterance with its copies
    capped_train, capped = split_utterances(ids, 0.25, seed=1, seconds=seconds, max_valid_seconds=20.0)
    assert len(capped) == 9 and set(capped) < set(valid) and sorted(capped_train + capped) == sorted(ids)
    one = split_utterances(ids, 0.25, seed=1, seconds=seconds, max_valid_seconds=1.0)[1]
    assert len(one) == 3 and set(one) < set(capped)  # never fewer than one utterance with its copies


def test_data_loader_workers_hand_over_the_in_process_batches_in_order(tone_store):
    """epoch_batches with two workers yields exactly the batches built in-process, in the
    epoch's order, from the resumed batch on; sequence-training minibatches keep their NumPy
    alignments and text lists."""
    from hybrid_asr.training.chunks import epoch_order
    from hybrid_asr.training.loader import epoch_batches
    from hybrid_asr.training.sequence import UtteranceData

    store, alis = tone_store
    data = ChunkData(store, alis, [u.id for u in store.utterances], left=2, right=2, chunk_frames=4)
    order = epoch_order(len(data), seed=3, epoch=2)
    want = list(data.batches(5, order, skip=2))
    got = epoch_batches(data, 5, order, skip=2, num_workers=2)
    assert len(got) == len(want) == -(-len(order) // 5) - 2
    got = list(got)
    assert len(got) == len(want)
    for (gx, gy), (wx, wy) in zip(got, want):
        assert torch.equal(gx, wx) and torch.equal(gy, wy)
    utts = UtteranceData(store, alis, [u.id for u in store.utterances], 1, 1, 1, 2)
    order = torch.arange(len(utts)).flip(0)
    want = list(utts.batches(1, order))
    got = list(epoch_batches(utts, 1, order, num_workers=2))
    assert len(got) == len(want) == len(utts)
    for g, w in zip(got, want):
        assert torch.equal(g[0], w[0]) and torch.equal(g[2], w[2]) and g[3] == w[3]
        assert all(isinstance(a, np.ndarray) and np.array_equal(a, b) for a, b in zip(g[4], w[4]))
