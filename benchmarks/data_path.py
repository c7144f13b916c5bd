"""Benchmark: the training data path at growing corpus sizes (issue 24).

For each store size (multiples of AN4's training set, random float32 features of its shape:
40-dim fbank, utterances of AN4's mean length) this writes a synthetic feature store with the
production writer, then, each in a fresh process:

1. start-up: seconds and peak resident memory to open the store and build the training chunks
   (``ChunkData``: per-utterance CMVN statistics, chunk index) for all of it;
2. loader: training-batch frames per second delivered by
   :func:`hybrid_asr.training.loader.epoch_batches` with 0, 2 and 4 workers over the first
   ``--batches`` batches of a shuffled epoch, in a random chunk order and in blocks of 1,024
   consecutive chunks shuffled in windows (``train --shuffle-block-chunks``), the store's pages dropped from the page cache first
   (``posix_fadvise(DONTNEED)``: a cold read as far as the kernel allows without root), and the
   process's peak resident memory;
3. the peer, measured in the same run: frames per second the recipe's TDNN consumes (forward,
   backward and Adam step on the same batches, read in advance), so every loader row prints the
   ratio loader / model (above 1: the data path keeps up).

Run by hand (about 2 minutes at the default sizes on 2 cores; the 100x store is 4.3 GB on disk,
written under ``--work``, removed at the end)::

    .venv/bin/python benchmarks/data_path.py [--sizes 1,10,100] [--workers 0,2,4] [--batches 200]
        [--block-chunks 0,1024] [--threads 2] [--work DIR]
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AN4_UTTERANCES = 948
AN4_MEAN_FRAMES = 300
DIM = 40
CHUNK = 32
BATCH_FRAMES = 256


def write_store(path: Path, multiple: int) -> int:
    """A synthetic store of ``multiple`` times AN4's training utterances; returns its frames."""
    import numpy as np
    import torch

    from hybrid_asr.features import FeatureConfig
    from hybrid_asr.features.storage import write_feature_store

    rng = np.random.default_rng(0)
    n = AN4_UTTERANCES * multiple
    lengths = rng.integers(AN4_MEAN_FRAMES // 2, AN4_MEAN_FRAMES * 3 // 2, n)

    def make(frames):
        return lambda: torch.from_numpy(rng.standard_normal((frames, DIM), dtype=np.float32))

    utts = [(f"u{i:07d}", f"s{i // 50}", "X", make(int(t))) for i, t in enumerate(lengths)]
    write_feature_store(utts, FeatureConfig(num_mel_bins=DIM), path)
    return int(lengths.sum())


def _child(args) -> None:
    """One measurement in this process; prints one JSON line."""
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from hybrid_asr.features import FeatureStore
    from hybrid_asr.models import TdnnConfig, create_model
    from hybrid_asr.training.chunks import ChunkData, epoch_order
    from hybrid_asr.training.loader import epoch_batches

    start = time.time()
    store = FeatureStore(args.store)
    alis = {u.id: np.zeros(u.frames, dtype=np.int32) for u in store.utterances}
    model = create_model(TdnnConfig(feat_dim=DIM, num_pdfs=400, hidden_dim=256))
    data = ChunkData(store, alis, list(alis), model.left_context, model.right_context, CHUNK)
    startup = time.time() - start
    if args.what == "startup":
        print(json.dumps({"seconds": startup, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
        return
    order = epoch_order(len(data), seed=0, epoch=1, block_chunks=args.block_chunks)[
        : args.batches * (BATCH_FRAMES // CHUNK)]
    if args.what == "loader":
        fd = os.open(store.path / "feats.npy", os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
        start, frames = time.time(), 0
        for _, y in epoch_batches(data, BATCH_FRAMES // CHUNK, order, num_workers=args.workers):
            frames += y.numel()
        seconds = time.time() - start
        print(json.dumps({"fps": frames / seconds,
                          "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
        return
    batches = list(epoch_batches(data, BATCH_FRAMES // CHUNK, order[: 40 * (BATCH_FRAMES // CHUNK)]))
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    start, frames = time.time(), 0
    for x, y in batches:
        logp, _ = model(x, torch.full((x.shape[0],), x.shape[1], dtype=torch.int64))
        loss = loss_fn(logp.reshape(-1, logp.shape[-1]), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        frames += y.numel()
    print(json.dumps({"fps": frames / (time.time() - start)}))


def measure(store: Path, what: str, args, workers: int = 0, block_chunks: int = 0) -> dict:
    cmd = [sys.executable, __file__, "--child", what, "--store", str(store), "--workers", str(workers),
           "--batches", str(args.batches), "--threads", str(args.threads), "--block-chunks", str(block_chunks)]
    env = dict(os.environ, MKL_DEBUG_CPU_TYPE="5")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="1,10,100", help="store sizes in multiples of AN4's training set")
    p.add_argument("--workers", default="0,2,4")
    p.add_argument("--batches", type=int, default=200, help="batches of 256 frames read per loader measurement")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--work", default=None, help="folder for the synthetic stores (default: a temporary one)")
    p.add_argument("--block-chunks", default="0,1024",
                   help="chunk orders measured: 0 = a random permutation, B = blocks of B consecutive chunks "
                   "in random order, shuffled in windows of 4 B (train --shuffle-block-chunks B)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--store", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        args.what = args.child
        args.workers, args.block_chunks = int(args.workers), int(args.block_chunks)
        _child(args)
        return
    sys.path.insert(0, str(ROOT))
    work = Path(tempfile.mkdtemp(prefix="data_path_", dir=args.work))
    try:
        model_fps = None
        base_rss = None
        print(f"{'store':>8} {'frames':>11} {'GB':>6} | {'start-up s':>10} {'RSS MB':>7} | loader frames/s (ratio to "
              f"the TDNN's consumption), peak RSS MB, per worker count")
        for m in [int(x) for x in args.sizes.split(",")]:
            store = work / f"x{m}"
            frames = write_store(store, m)
            if model_fps is None:
                model_fps = measure(store, "model", args)["fps"]
                print(f"the peer: TDNN (hidden 256, 400 senones) trains at {model_fps:.0f} frames/s "
                      f"with {args.threads} threads")
            st = measure(store, "startup", args)
            base_rss = base_rss or st["rss_mb"]
            rows = []
            for b in [int(x) for x in args.block_chunks.split(",")]:
                for w in [int(x) for x in args.workers.split(",")]:
                    r = measure(store, "loader", args, w, b)
                    rows.append(f"{'blocks ' + str(b) if b else 'random'}, {w} workers: {r['fps']:.0f} "
                                f"({r['fps'] / model_fps:.1f}x), {r['rss_mb']:.0f}")
            size = (store / "feats.npy").stat().st_size / 1e9
            print(f"{m:>7}x {frames:>11} {size:>6.2f} | {st['seconds']:>10.2f} {st['rss_mb']:>7.0f} "
                  f"({st['rss_mb'] / base_rss:.2f}x) | " + "; ".join(rows))
            shutil.rmtree(store)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
