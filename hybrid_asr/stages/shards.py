"""Splitting a stage into jobs: shard selection, a local process pool for ``--nj``, and the
directory convention of a sharded run.

A stage run with ``--num-shards K --shard-index i`` handles the speakers ``i, i + K, i + 2K, ...``
of the store (alignment and decoding: whole speakers, numbered in store order, for per-speaker
fMLLR; feature extraction takes the i-th contiguous block of utterances instead, so that the merged
store keeps the manifest order) and writes a complete output directory for them, e.g. as one task of
a Slurm array job; a merge command then combines the K directories into the one a single job
would have written (``hybrid-asr merge-feature-stores``, ``merge-alignments``, ``merge-decodes``). ``--nj N`` does
both on one machine: N worker processes (spawned, one torch thread each) write
``<out>/shards/<i>``, the merge writes ``<out>``, and the shard directories are removed.
"""

import logging
import multiprocessing
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Sequence, TypeVar, Union

from hybrid_asr.bounds import bounded, check_bounds
from hybrid_asr.errors import HybridAsrError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    """Job ``index`` of ``count`` (0-based).

    Raises:
        HybridAsrError: ``count < 1`` or ``index`` outside ``[0, count)``.
    """

    index: int = bounded(0, ge=0)
    count: int = bounded(1, ge=1)

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.index >= self.count:
            raise HybridAsrError(f"shard index {self.index} is not in 0..{self.count - 1}")

    def select(self, items: Sequence[T]) -> List[T]:
        """Every ``count``-th item from ``index`` (round robin, so shards have similar sizes)."""
        return list(items[self.index :: self.count])

    def select_groups(self, items: Sequence[T], group_of: Callable[[T], object]) -> List[T]:
        """The items of every ``count``-th group from ``index``, in their order: groups (e.g.
        speakers) are numbered in order of first appearance and dealt round robin, so a group is
        never split between shards (per-speaker fMLLR, as Kaldi's ``split_data.sh --per-spk``)."""
        number: dict = {}
        for item in items:
            number.setdefault(group_of(item), len(number))
        return [item for item in items if number[group_of(item)] % self.count == self.index]

    def block(self, items: Sequence[T]) -> List[T]:
        """The ``index``-th of ``count`` contiguous blocks of near-equal size (concatenating the
        blocks in index order gives ``items`` back)."""
        n = len(items)
        return list(items[self.index * n // self.count : (self.index + 1) * n // self.count])


#: Fewest utterances per local job (``--nj``) of the light stages, tree statistics and alignment
#: conversion: on fewer, starting a worker process (importing torch: seconds) costs more than the
#: work it takes over (AN4's 3,000 utterances take about 2 s in one process).
MIN_UTTERANCES_PER_LIGHT_JOB = 5000


def local_jobs(nj: int, num_utterances: int) -> int:
    """How many of ``nj`` local jobs of a light stage to start for ``num_utterances``: at most
    one per :data:`MIN_UTTERANCES_PER_LIGHT_JOB` utterances, at least one (1: run in this
    process)."""
    return max(1, min(nj, num_utterances // MIN_UTTERANCES_PER_LIGHT_JOB))


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def run_local_shards(job: Callable[..., object], args: Sequence[tuple], nj: int) -> List[object]:
    """Run ``job(*a)`` for every ``a`` in ``args`` on ``nj`` spawned processes (one torch thread
    each); results in order. ``job`` must be a module-level function."""
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=nj, mp_context=ctx, initializer=_init_worker) as pool:
        return list(pool.map(job, *zip(*args)))


def shard_dirs(out_dir: Union[str, Path], nj: int) -> List[Path]:
    """``<out>/shards/0 .. nj-1``: where ``--nj`` workers write."""
    return [Path(out_dir) / "shards" / str(i) for i in range(nj)]


def remove_shard_dirs(out_dir: Union[str, Path]) -> None:
    """Delete ``<out>/shards`` after a successful merge."""
    shutil.rmtree(Path(out_dir) / "shards", ignore_errors=True)
