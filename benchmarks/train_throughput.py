"""Benchmark: training throughput of every architecture, and training memory against corpus size.

Part 1 prints, per architecture (at the sizes the AN4 recipe uses) and thread count, training
frames per second (output frames with a label, forward + backward + Adam step), the batch size and
the peak resident memory of the process (each measurement runs in its own process). The peer
in the same run is the DNN: every row also shows its speed relative to the DNN at the same thread
count. With ``--device cuda`` (when a GPU is lent) the same rows are measured on the GPU.

Part 2 runs the real training stage (``hybrid-asr train``, one epoch of the DNN) on a feature
store and on a store four times its size (the same utterances repeated under new ids) and prints
both peak RSS values and their ratio (target: under 1.5).

Run by hand, after the AN4 recipe (it reads recipes/an4/data/fbank/train_nodev and
recipes/an4/exp/cd400/ali1)::

    .venv/bin/python benchmarks/train_throughput.py [--feats DIR] [--ali DIR] [--seconds 20]
        [--threads 1,2] [--device cpu|cuda] [--skip-memory]
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

#: name -> (model type, config overrides, chunk frames, batch size in frames) as in the AN4 recipe.
ARCHS = {
    "dnn": ("dnn", {}, 1, 256),
    "tdnn": ("tdnn", {"hidden_dim": 256}, 32, 256),
    "tdnnf": ("tdnn", {"hidden_dim": 384, "bottleneck_dim": 96, "kernels": (5, 3, 3, 3, 3, 3, 3, 3),
                       "dilations": (1, 1, 1, 3, 3, 3, 3, 3)}, 32, 256),
    "lstm": ("lstm", {"hidden_dim": 256, "proj_dim": 128, "num_layers": 2}, 40, 640),
    "blstm": ("lstm", {"hidden_dim": 256, "proj_dim": 128, "num_layers": 2, "bidirectional": True,
                       "right_context": 40}, 40, 640),
    "cldnn": ("cldnn", {"lstm_dim": 256, "proj_dim": 128}, 40, 640),
    "tdnn_lstm": ("tdnn_lstm", {"hidden_dim": 256, "lstm_dim": 256, "proj_dim": 128}, 40, 320),
}


def measure(arch: str, threads: int, feats: str, ali: str, seconds: float, device: str) -> dict:
    """Train ``arch`` on real chunks for ``seconds`` and return frames/s and peak RSS (this process)."""
    os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")
    import torch

    from hybrid_asr.features import FeatureStore
    from hybrid_asr.hmm.alignment import Alignments
    from hybrid_asr.models import config_class, create_model
    from hybrid_asr.stages.train import alignment_targets
    from hybrid_asr.training import ChunkData

    torch.set_num_threads(threads)
    kind, overrides, chunk, batch_frames = ARCHS[arch]
    store = FeatureStore(feats)
    alis = Alignments.load(Path(ali) / "ali.npz")
    _, _, num_pdfs = alignment_targets(ali)
    model = create_model(config_class(kind)(feat_dim=store.config.dim, num_pdfs=num_pdfs, **overrides)).to(device)
    data = ChunkData(store, alis, [u.id for u in store.utterances], model.left_context, model.right_context, chunk)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=-100)
    per_batch = max(1, batch_frames // chunk)
    order = torch.randperm(len(data))
    frames, steps, start = 0, 0, None
    for x, y in data.batches(per_batch, order):
        if steps == 3:  # warm-up steps excluded
            if device == "cuda":
                torch.cuda.synchronize()
            start, frames = time.time(), 0
        x, y = x.to(device), y.to(device)
        logp, _ = model(x, torch.full((x.shape[0],), x.shape[1], dtype=torch.int64))
        loss = loss_fn(logp.reshape(-1, logp.shape[-1]), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        frames += int((y != -100).sum())
        steps += 1
        if start is not None and time.time() - start > seconds:
            break
    if device == "cuda":
        torch.cuda.synchronize()
    elapsed = time.time() - start
    return {"arch": arch, "threads": threads, "device": device, "params": model.num_parameters(),
            "chunk": chunk, "batch_frames": per_batch * chunk, "frames_per_second": frames / elapsed,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def repeated_store(src: Path, ali: Path, times: int, out: Path) -> None:
    """A feature store and alignment dir with every utterance of ``src`` repeated ``times`` times."""
    import numpy as np

    from hybrid_asr.hmm.alignment import Alignments

    index = json.loads((src / "index.json").read_text())
    feats = np.load(src / "feats.npy", mmap_mode="r")
    n = feats.shape[0]
    out.mkdir(parents=True)
    big = np.lib.format.open_memmap(out / "feats.npy", mode="w+", dtype=np.float32, shape=(n * times, feats.shape[1]))
    for k in range(times):
        big[k * n : (k + 1) * n] = feats
    big.flush()
    del big
    utts = [{**u, "id": f"{u['id']}_rep{k}", "offset": u["offset"] + k * n} for k in range(times)
            for u in index["utterances"]]
    shutil.copy(src / "cmvn.json", out / "cmvn.json")
    (out / "index.json").write_text(json.dumps({"config": index["config"], "utterances": utts}))
    alis = Alignments.load(ali / "ali.npz")
    (out / "ali").mkdir()
    Alignments({f"{u}_rep{k}": a for k in range(times) for u, a in alis.items()}).save(out / "ali" / "ali.npz")
    for name in ("topology.json", "tree.json", "phones.npz"):
        if (ali / name).exists():
            shutil.copy(ali / name, out / "ali" / name)


def train_rss(feats: Path, ali: Path, out: Path, threads: int) -> float:
    """Peak RSS (MB) of one epoch of ``hybrid-asr train`` (DNN, batch 1024) in a child process."""
    exe = ROOT / ".venv/bin/hybrid-asr"
    cmd = [str(exe if exe.exists() else "hybrid-asr"), "--num-threads", str(threads), "train", str(feats), str(ali),
           str(out), "--epochs", "1", "--batch-size", "1024"]
    # a fresh parent whose only child is the training, so RUSAGE_CHILDREN is that child's alone
    probe = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, capture_output=True); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out_kb = subprocess.run([sys.executable, "-c", probe, *cmd], check=True, capture_output=True, text=True).stdout
    return int(out_kb.strip()) / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--feats", default=str(ROOT / "recipes/an4/data/fbank/train_nodev"))
    p.add_argument("--ali", default=str(ROOT / "recipes/an4/exp/cd400/ali1"))
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--archs", default=",".join(ARCHS))
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--worker", nargs=2, metavar=("ARCH", "THREADS"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(measure(args.worker[0], int(args.worker[1]), args.feats, args.ali, args.seconds,
                                 args.device)))
        return
    print(f"{'arch':6} {'device':6} {'threads':>7} {'params':>8} {'chunk':>5} {'batch':>5} {'frames/s':>9} "
          f"{'x dnn':>6} {'peak RSS MB':>11}")
    threads = [int(t) for t in args.threads.split(",")] if args.device == "cpu" else [1]
    base = {}
    for t in [] if args.skip_speed else threads:
        for arch in args.archs.split(","):
            out = subprocess.run([sys.executable, __file__, "--feats", args.feats, "--ali", args.ali, "--seconds",
                                  str(args.seconds), "--device", args.device, "--worker", arch, str(t)],
                                 check=True, capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            base.setdefault(t, r["frames_per_second"] if arch == "dnn" else None)
            ratio = r["frames_per_second"] / base[t] if base.get(t) else float("nan")
            print(f"{arch:6} {r['device']:6} {t:7d} {r['params'] / 1e6:7.2f}M {r['chunk']:5d} {r['batch_frames']:5d} "
                  f"{r['frames_per_second']:9.0f} {ratio:6.2f} {r['peak_rss_mb']:11.0f}", flush=True)
    if args.skip_memory:
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        repeated_store(Path(args.feats), Path(args.ali), 4, tmp / "x4")
        one = train_rss(Path(args.feats), Path(args.ali), tmp / "exp1", threads[-1])
        four = train_rss(tmp / "x4", tmp / "x4" / "ali", tmp / "exp4", threads[-1])
    print(f"\npeak RSS of one DNN epoch: corpus x1 {one:.0f} MB, corpus x4 {four:.0f} MB, ratio {four / one:.2f} "
          "(target < 1.5)")


if __name__ == "__main__":
    main()
