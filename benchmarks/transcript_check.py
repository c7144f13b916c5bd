"""How well align-audio's score tells a file's own transcript from another utterance's.

Every utterance of a split is aligned (``hybrid_asr.align.audio.align_audio``) with its own
transcript and with a random other utterance's (a different text), and the gaps per frame
(``AlignmentScore.gap``) of both are summarized, with the share flagged at several thresholds.
Choose the threshold on dev (``TranscriptCheckConfig.max_gap``).

    .venv/bin/python benchmarks/transcript_check.py [--model-dir recipes/an4/exp/cd400/tdnn2]
        [--lang-dir recipes/an4/data/lang] [--manifests recipes/an4/data/manifests] [--split dev]
"""

import argparse
import os
import random
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes/an4"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model-dir", default=str(RECIPE / "exp/cd400/tdnn2"))
    p.add_argument("--lang-dir", default=str(RECIPE / "data/lang"))
    p.add_argument("--manifests", default=str(RECIPE / "data/manifests"))
    p.add_argument("--split", default="dev", help="manifest split (choose the threshold on dev)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--thresholds", default="-1,-1.5,-2,-2.5,-3,-4",
                   help="comma-separated gaps to report (a GMM's are wider: e.g. -4,-6,-8,-10,-12)")
    args = p.parse_args()
    os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")
    import torch

    from hybrid_asr.align.audio import align_audio
    from hybrid_asr.bundle import ModelBundle
    from hybrid_asr.data import read_split
    from hybrid_asr.errors import AlignmentError
    from hybrid_asr.lang import Lang

    torch.set_num_threads(1)
    bundle, lang = ModelBundle.load(args.model_dir), Lang(args.lang_dir)
    recs, sups = read_split(Path(args.manifests), args.split)
    paths = {r.id: r.sources[0].source for r in recs}
    sups = sorted(sups, key=lambda s: s.id)
    rng = random.Random(args.seed)
    right, wrong, refused = [], [], 0
    for s in sups:
        other = rng.choice([o for o in sups if o.text.split() != s.text.split()])
        right.append(align_audio(bundle, lang, paths[s.recording_id], s.text).score.gap)
        try:
            wrong.append(align_audio(bundle, lang, paths[s.recording_id], other.text).score.gap)
        except AlignmentError:  # more HMM states than frames: refused outright
            refused += 1
    print(f"model {args.model_dir}, {len(sups)} {args.split} utterances")
    for name, gaps in (("right", right), ("wrong", wrong)):
        pct = np.percentile(gaps, [1, 5, 50, 95, 99])
        print(f"{name:5s} gap per frame, percentiles 1/5/50/95/99: " + " ".join(f"{x:.2f}" for x in pct))
    print(f"wrong transcripts refused (cannot align): {refused}")
    for t in (float(x) for x in args.thresholds.split(",")):
        flagged_wrong = (sum(g < t for g in wrong) + refused) / len(sups)
        print(f"threshold {t:5.1f}: right flagged {100 * np.mean(np.array(right) < t):5.1f}%, "
              f"wrong flagged {100 * flagged_wrong:5.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
