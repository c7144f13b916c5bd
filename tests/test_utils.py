"""Atomic writes."""

import os
import stat

import pytest

from hybrid_asr.utils import atomic_path, write_text_atomic


def test_atomic_write_replaces_only_on_success(tmp_path):
    target = tmp_path / "out.txt"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half-written")
            raise RuntimeError("crash while writing")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]  # no temporary file left behind
    write_text_atomic(target, "new")
    assert target.read_text() == "new"


def test_atomic_write_keeps_suffix_and_normal_permissions(tmp_path):
    with atomic_path(tmp_path / "x.jsonl.gz") as tmp:
        assert tmp.name.endswith(".jsonl.gz")
        tmp.write_bytes(b"")
    mode = stat.S_IMODE((tmp_path / "x.jsonl.gz").stat().st_mode)
    assert mode & 0o044 == 0o044  # readable by group and others (mkstemp alone gives 0600)


def test_state_file_roundtrip_keeps_types_and_loads_safely(tmp_path):
    import torch

    from hybrid_asr.utils import load_state, save_state

    state = {"opt": {"state": {0: {"step": torch.tensor(3.0)}}, "param_groups": [{"betas": (0.9, 0.99), "lr": 1e-3}]},
             "best": float("inf"), "done": True, "name": "x", "none": None, "w": torch.arange(4)}
    save_state(state, tmp_path / "s.pt")
    back = load_state(tmp_path / "s.pt")
    assert back["opt"]["state"][0]["step"].item() == 3.0  # int keys stay ints
    assert back["opt"]["param_groups"][0]["betas"] == (0.9, 0.99)
    assert back["best"] == float("inf") and back["done"] is True and back["none"] is None
    assert torch.equal(back["w"], torch.arange(4))
    assert torch.load(tmp_path / "s.pt", weights_only=True)["tensors"][1].tolist() == [0, 1, 2, 3]


def test_shard_select_groups_keeps_speakers_whole():
    """Speakers dealt round robin in order of first appearance: no speaker in two shards, every
    item in one, store order kept; more shards than speakers leaves a shard empty."""
    from hybrid_asr.stages.shards import Shard

    items = [("u1", "a"), ("u2", "a"), ("u3", "b"), ("u4", "c"), ("u5", "b"), ("u6", "d"), ("u7", "a")]
    shards = [Shard(i, 2).select_groups(items, lambda x: x[1]) for i in range(2)]
    assert shards == [[("u1", "a"), ("u2", "a"), ("u4", "c"), ("u7", "a")], [("u3", "b"), ("u5", "b"), ("u6", "d")]]
    assert Shard(4, 5).select_groups(items, lambda x: x[1]) == []


def test_light_stages_start_one_job_per_5000_utterances_at_most():
    """build-tree and convert-ali with --nj: no more jobs than the utterances fill (AN4's ~3,000
    run in one process), never fewer than one, never more than asked."""
    from hybrid_asr.stages.shards import MIN_UTTERANCES_PER_LIGHT_JOB, local_jobs

    assert MIN_UTTERANCES_PER_LIGHT_JOB == 5000
    assert [local_jobs(4, n) for n in (0, 2999, 9999, 10000, 10**6)] == [1, 1, 1, 2, 4]
    assert local_jobs(1, 10**6) == 1
