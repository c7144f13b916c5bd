"""Benchmark: training frames/s of LF-MMI and MMI against cross-entropy, for the same model.

For one trained model (default: the AN4 recipe's triphone TDNN), each row trains it for
``--seconds`` with the production objective (forward, backward, Adam step; labelled output
frames per second, warm-up steps excluded), each in its own process at the given thread count:

- ``ce``: frame cross-entropy on chunks as the recipe trains it (``FrameCrossEntropy``,
  ``ChunkData``, 32-frame chunks, 256 frames per step) - the peer;
- ``lfmmi``: the phone-bigram denominator, pruned search (the default ``SequenceConfig``);
- ``lfmmi-exact``: the same denominator with the exact ``intersect_dense``;
- ``lfmmi-leaky``: the default with the leaky HMM at Kaldi's 0.1;
- ``mmi``: the model's HCLG as the denominator at its decoding acoustic scale.

The sequence rows train on whole utterances, 3000 output frames per step. With ``--device cuda``
(when a GPU is lent) the rows run on the GPU.

Run by hand, after the AN4 recipe::

    .venv/bin/python benchmarks/sequence_training.py [--model-dir DIR] [--feats DIR] [--lang DIR]
        [--ali DIR] [--seconds 30] [--threads 1] [--rows ce,lfmmi,...] [--device cpu|cuda]
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AN4 = ROOT / "recipes/an4"
ROWS = {
    "ce": None,
    "lfmmi": {},
    "lfmmi-exact": {"den_pruned": False},
    "lfmmi-leaky": {"leaky_hmm": 0.1},
    "mmi": {"criterion": "mmi"},
}


def measure(row: str, args) -> dict:
    os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")
    import torch

    from hybrid_asr.bundle import ModelBundle
    from hybrid_asr.features import FeatureStore
    from hybrid_asr.graph import TrainingGraphCompiler
    from hybrid_asr.hmm.alignment import load_alignment_dir
    from hybrid_asr.lang import Lang
    from hybrid_asr.stages.sequence import denominator_graph
    from hybrid_asr.training import ChunkData
    from hybrid_asr.training.sequence import MmiObjective, SequenceConfig, UtteranceData
    from hybrid_asr.training.trainer import FrameCrossEntropy

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    bundle = ModelBundle.load(args.model_dir)
    model = bundle.model.to(device).train()
    store = FeatureStore(args.feats)
    ali, marks, _ = load_alignment_dir(args.ali)
    ids = [u.id for u in store.utterances if u.id in ali]
    l, r, f = model.left_context, model.right_context, model.subsampling_factor
    info = {}
    if ROWS[row] is None:
        objective = FrameCrossEntropy()
        data = ChunkData(store, ali, ids, l, r, 32, f)
        order = torch.randperm(len(data))
        batches = data.batches(8, order)
    else:
        config = SequenceConfig(**ROWS[row])
        den, kappa, info = denominator_graph(bundle, Path(args.model_dir), [marks[u] for u in ids], config)
        objective = MmiObjective(TrainingGraphCompiler(Lang(args.lang), bundle.topology, bundle.make_h()), den,
                                 bundle.log_priors, kappa, config)
        data = UtteranceData(store, ali, ids, l, r, f, 3000)
        batches = data.batches(1, torch.randperm(len(data)))
    opt = torch.optim.Adam(model.parameters(), lr=1e-5)
    frames, steps, start = 0, 0, None
    for batch in batches:
        if steps == 2:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start, frames = time.time(), 0
        loss, stats = objective(model, batch, device)
        opt.zero_grad()
        loss.backward()
        opt.step()
        frames += stats["frames"]
        steps += 1
        if start is not None and time.time() - start > args.seconds:
            break
    if device.type == "cuda":
        torch.cuda.synchronize()
    return {"row": row, "frames_per_second": frames / (time.time() - start), "steps": steps - 2,
            "den_arcs": info.get("den_arcs", 0)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model-dir", default=str(AN4 / "exp/cd400/tdnn2"))
    p.add_argument("--feats", default=str(AN4 / "data/fbank/train_nodev"))
    p.add_argument("--lang", default=str(AN4 / "data/lang"))
    p.add_argument("--ali", default=str(AN4 / "exp/cd400/ali1"))
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rows", default=",".join(ROWS))
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(measure(args.worker, args)))
        return
    print(f"{'objective':12} {'device':6} {'threads':>7} {'den arcs':>9} {'frames/s':>9} {'x ce':>6}")
    base = None
    for row in args.rows.split(","):
        cmd = [sys.executable, __file__, "--model-dir", args.model_dir, "--feats", args.feats, "--lang", args.lang,
               "--ali", args.ali, "--seconds", str(args.seconds), "--threads", str(args.threads), "--device",
               args.device, "--worker", row]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        res = json.loads(out.strip().splitlines()[-1])
        if row == "ce":
            base = res["frames_per_second"]
        ratio = res["frames_per_second"] / base if base else float("nan")
        print(f"{row:12} {args.device:6} {args.threads:7d} {res['den_arcs']:9d} {res['frames_per_second']:9.0f} "
              f"{ratio:6.2f}", flush=True)


if __name__ == "__main__":
    main()
