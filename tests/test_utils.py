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
