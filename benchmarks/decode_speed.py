"""Benchmark: decoding speed of model directories on the same feature store, at equal beams.

Each model decodes the store once with ``decode-dataset``'s code (:func:`hybrid_asr.stages.evaluate.evaluate_store`,
the model's stored acoustic scale, the given search beam for all), and the script prints per
model: WER, output frames searched, acoustic-model seconds, search seconds, RTF (both, features
excluded), and each model's RTF as a ratio of the first model's. Issue 23 compares a chain model
(frame subsampling 3: a third of the frames to search, scores at acoustic scale 1.0) with the
cross-entropy TDNN. Run by hand, one thread each, nothing else on the machine::

    .venv/bin/python benchmarks/decode_speed.py --feats recipes/an4/data/fmllr/dev \\
        recipes/an4/exp/tdnn_fmllr recipes/an4/exp/chain/tdnn [--beam 16] [--repeat 2]

``--repeat N`` decodes N times and keeps each model's fastest run (the first run also loads the
graph from a cold page cache).
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model_dirs", nargs="+", help="model directories with graphs; the first is the reference")
    p.add_argument("--feats", required=True, help="feature store every model reads (same front end)")
    p.add_argument("--beam", type=float, default=16.0, help="search beam of every model")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")
    import torch

    torch.set_num_threads(args.threads)
    from hybrid_asr.bundle import ModelBundle
    from hybrid_asr.stages.evaluate import evaluate_store

    rows = []
    for model in args.model_dirs:
        best = None
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as out:
                start = time.time()
                scores = evaluate_store(model, args.feats, out, search_overrides={"search_beam": args.beam})
                wall = time.time() - start
                stats = json.loads((Path(out) / "decode_stats.json").read_text())
            model_s = stats["model_seconds"]
            search_s = sum(stats["search_seconds"].values())
            run = (model_s + search_s, model_s, search_s, wall, stats, scores)
            best = run if best is None or run[0] < best[0] else best
        total, model_s, search_s, wall, stats, scores = best
        f = ModelBundle.load(model).model.subsampling_factor
        rows.append((model, next(iter(scores.wers.values())), f, model_s, search_s, total / stats["audio_seconds"]))
    ref_rtf = rows[0][-1]
    print(f"{len(rows)} models on {args.feats}, beam {args.beam:g}, {args.threads} thread(s), best of {args.repeat}")
    print(f"{'model':40s} {'WER':>6s} {'f':>2s} {'model s':>8s} {'search s':>9s} {'RTF':>7s} {'ratio':>6s}")
    for model, wer, f, model_s, search_s, rtf in rows:
        print(f"{model:40s} {wer:6.2f} {f:2d} {model_s:8.2f} {search_s:9.2f} {rtf:7.4f} {rtf / ref_rtf:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
