"""Benchmark: decoding graph size and search speed, k2 against Kaldi's FasterDecoder.

For each graph construction (``compose``: H with self-loops composed with LG; ``mkgraph``:
determinized, self-loops added last) it builds the model's graph from its lang dir and prints
states, arcs, build time and peak RSS. Then, on the same scaled log-likelihoods of every
utterance of a feature store (computed once; the acoustic model is not timed), it searches with
k2 (``k2.intersect_dense_pruned``, one utterance per call) and with ``kaldi_decoder.FasterDecoder``
(the graph converted with ``kaldifst``) at each beam, and prints per beam: the WER of each, how
many utterances got the same words from both, the search RTF of each and their ratio. Last, a k2
batch-size sweep at one beam. The process pins itself to one core (``taskset -c 0``; k2's
pruning runs on its own thread pool whatever torch's thread count), unless ``--no-pin``.

Run by hand after the AN4 recipe::

    .venv/bin/python benchmarks/search_speed.py [--model-dir recipes/an4/exp/cd400/tdnn2]
        [--feats recipes/an4/data/fbank/dev] [--beams 8,12,16,20] [--batch-sizes 1,8,32]
        [--constructions compose,mkgraph] [--acoustic-scale X] [--every N]

``--every N`` searches every N-th utterance only (a corpus whose search is slow, such as
speechocean762 at low acoustic scales); ``--batch-sizes ""`` skips the batch-size sweep.
"""

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model-dir", default=str(ROOT / "recipes/an4/exp/cd400/tdnn2"))
    p.add_argument("--feats", default=str(ROOT / "recipes/an4/data/fbank/dev"))
    p.add_argument("--beams", default="8,12,16,20")
    p.add_argument("--batch-sizes", default="1,8,32")
    p.add_argument("--sweep-beam", type=float, default=None, help="beam of the batch-size sweep (default: the "
                   "model's search_config.json)")
    p.add_argument("--constructions", default="compose,mkgraph")
    p.add_argument("--acoustic-scale", type=float, default=None, help="default: the model's search_config.json")
    p.add_argument("--every", type=int, default=1, help="search every N-th utterance of the store only")
    p.add_argument("--no-pin", action="store_true", help="do not pin the process to one core")
    args = p.parse_args()
    if not args.no_pin and len(os.sched_getaffinity(0)) > 1 and shutil.which("taskset"):
        os.execvp("taskset", ["taskset", "-c", "0", sys.executable, *sys.argv])
    os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")
    import torch

    from hybrid_asr.bundle import ModelBundle, load_graph
    from hybrid_asr.decoding.kaldi_search import KaldiSearch
    from hybrid_asr.decoding.search import decode_scores
    from hybrid_asr.features.storage import FeatureStore
    from hybrid_asr.graph import GraphConfig, make_decoding_graph
    from hybrid_asr.lang import Lang
    from hybrid_asr.likelihoods import log_likelihoods
    from hybrid_asr.scoring import score
    from hybrid_asr.stages.graph import peak_rss_mb

    torch.set_num_threads(1)
    bundle = ModelBundle.load(args.model_dir)
    _, words, search = load_graph(args.model_dir)
    info = json.loads((Path(args.model_dir) / "graph_info.json").read_text())
    lang = Lang(info["lang_dir"])
    scale = info.get("self_loop_scale", info.get("transition_scale", GraphConfig.self_loop_scale))
    if args.acoustic_scale is not None:
        search = replace(search, acoustic_scale=args.acoustic_scale)
    store = FeatureStore(args.feats)
    utts = store.utterances[::max(1, args.every)]
    audio = sum(u.frames for u in utts) * store.config.frame_shift_ms / 1000
    cmvn = bundle.feature_config.cmvn
    with torch.no_grad():
        scores = [log_likelihoods(bundle.model, store.normalized(u.id, cmvn, bundle.cmvn), bundle.log_priors)
                  for u in utts]
    refs = {u.id: u.text.split() for u in utts}
    print(f"model {args.model_dir}: {len(utts)} utterances, {audio:.1f} s of audio, acoustic scale "
          f"{search.acoustic_scale:g}, self-loop scale {scale:g}, one core" + ("" if args.no_pin else " (taskset -c 0)"))

    def wer(hyp_ids):
        hyps = {u.id: [words.get(i) for i in h] for u, h in zip(utts, hyp_ids)}
        return score(refs, hyps).wer

    for construction in args.constructions.split(","):
        rss0, start = peak_rss_mb(), time.time()
        graph = make_decoding_graph(lang, bundle.topology, bundle.tree,
                                    GraphConfig(self_loop_scale=scale, construction=construction))
        build = time.time() - start
        print(f"\n## {construction}: {graph.shape[0]:,} states, {graph.num_arcs:,} arcs, built in {build:.1f} s, "
              f"peak RSS {peak_rss_mb():.0f} MB (before {rss0:.0f} MB)")
        start = time.time()
        kaldi = KaldiSearch(graph, search)
        print(f"converted to OpenFst in {time.time() - start:.1f} s")
        print("| beam | k2 WER | Kaldi WER | same words | k2 search RTF | Kaldi search RTF | k2 / Kaldi |")
        print("|---|---|---|---|---|---|---|")
        for beam in [float(b) for b in args.beams.split(",")]:
            cfg = replace(search, search_beam=beam)
            start = time.time()
            k2_hyps = [decode_scores(graph, [s], cfg)[0] for s in scores]
            k2_time = time.time() - start
            kaldi.set_config(cfg)
            start = time.time()
            kd_hyps = kaldi.decode(scores)
            kd_time = time.time() - start
            same = sum(a == b for a, b in zip(k2_hyps, kd_hyps))
            print(f"| {beam:g} | {wer(k2_hyps):.2f} | {wer(kd_hyps):.2f} | {same} / {len(utts)} | "
                  f"{k2_time / audio:.4f} | {kd_time / audio:.4f} | {k2_time / kd_time:.2f} |")
        beam = args.sweep_beam if args.sweep_beam is not None else search.search_beam
        if not args.batch_sizes:
            del graph, kaldi
            continue
        print(f"\nk2 batch sizes at beam {beam:g} (utterances sorted by length, as decode-dataset does):")
        print("| batch | k2 search RTF | x batch 1 |")
        print("|---|---|---|")
        order = sorted(range(len(scores)), key=lambda i: -scores[i].shape[0])
        base = None
        for bs in [int(b) for b in args.batch_sizes.split(",")]:
            cfg = replace(search, search_beam=beam)
            start = time.time()
            for i in range(0, len(order), bs):
                decode_scores(graph, [scores[j] for j in order[i:i + bs]], cfg)
            t = time.time() - start
            base = base or t
            print(f"| {bs} | {t / audio:.4f} | {base / t:.2f} |")
        del graph, kaldi
    return 0


if __name__ == "__main__":
    sys.exit(main())
