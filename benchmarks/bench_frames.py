"""Benchmark: spliced mini-batches by on-the-fly gathering (FrameData) vs materialized splicing.

FrameData keeps one [N, F] copy of the frames and gathers the 2k+1 neighbours of each batch;
the peer splices every utterance up front ([N, (2k+1)F], what Kaldi's splice-feats pipeline
feeds a DNN) and slices batches from it. Prints time per epoch of batch preparation and the
memory of the training matrix for both, and their ratios.

Run by hand: .venv/bin/python benchmarks/bench_frames.py [FEATS_DIR] [ALI_DIR]
(defaults: the AN4 recipe's recipes/an4/data/fbank/train and recipes/an4/exp/ali1).
"""

import sys
import time
from pathlib import Path

import hybrid_asr  # noqa: F401, I001  (sets MKL_DEBUG_CPU_TYPE before torch loads)
import torch  # noqa: I001
from hybrid_asr.align import Alignments
from hybrid_asr.features import FeatureStore, splice
from hybrid_asr.training import FrameData

root = Path(__file__).resolve().parents[1]
feats_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else root / "recipes/an4/data/fbank/train"
ali_dir = Path(sys.argv[2]) if len(sys.argv) > 2 else root / "recipes/an4/exp/ali1"
K, BATCH = 5, 256
torch.set_num_threads(1)

store = FeatureStore(feats_dir)
alis = Alignments.load(ali_dir / "ali.npz")
ids = [u.id for u in store.utterances if u.id in alis]

t = time.time()
data = FrameData(store, alis, ids, K, K)
ours_build = time.time() - t
t = time.time()
for _ in data.batches(BATCH, shuffle=True, generator=torch.Generator().manual_seed(0)):
    pass
ours_epoch = time.time() - t
ours_mem = data.feats.numel() * 4

t = time.time()
full = torch.cat([splice(store.normalized(u), K, K) for u in ids])
peer_build = time.time() - t
t = time.time()
order = torch.randperm(full.shape[0], generator=torch.Generator().manual_seed(0))
for i in range(0, full.shape[0], BATCH):
    full[order[i: i + BATCH]]
peer_epoch = time.time() - t
peer_mem = full.numel() * 4

print(f"{len(data)} frames, splice +-{K}, batch {BATCH}")
print(f"{'':24s}{'FrameData':>12s}{'materialized':>14s}{'ratio':>8s}")
print(f"{'build (s)':24s}{ours_build:12.2f}{peer_build:14.2f}{ours_build / peer_build:8.2f}")
print(f"{'batches per epoch (s)':24s}{ours_epoch:12.2f}{peer_epoch:14.2f}{ours_epoch / peer_epoch:8.2f}")
print(f"{'training matrix (MB)':24s}{ours_mem / 1e6:12.1f}{peer_mem / 1e6:14.1f}{ours_mem / peer_mem:8.2f}")
