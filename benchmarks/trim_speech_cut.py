"""Trimmer settings measured against forced alignments, without decoding: how much aligned speech
each setting leaves outside the trimmed piece, and how much padding it keeps.

For every utterance of an aligned training split (the AN4 recipe's ``exp/tri3_ali`` of
``train_nodev`` by default), the frames whose phone is not silence are speech; a frame is cut when
its centre lies outside :func:`hybrid_asr.features.trim.speech_bounds`. The first ``--padded``
utterances are also padded as ``benchmarks/conditions.py`` pads them (``noise2``: 2 s of -50 dBFS
white noise each side, ``lsb3``: 3 s of +-1 LSB, ``sil2``: 2 s of zeros) and the padding kept beyond
the original file is measured (the margin included). Used to choose ``TrimConfig.extend_gap_frames``
on training data rather than test (docs/robustness.md).

    .venv/bin/python benchmarks/trim_speech_cut.py [--recipe recipes/an4] "" "extend_gap_frames=20" \\
        "edge_below_peak_db=20;extend_gap_frames=30"

Each argument is one setting: ``;``-separated TrimConfig ``field=value`` pairs (``""``: the defaults).
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conditions import perturb  # noqa: E402

PADDING_SECONDS = {"noise2": 2.0, "lsb3": 3.0, "sil2": 2.0}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("settings", nargs="*", default=[""])
    p.add_argument("--recipe", default=str(Path(__file__).resolve().parents[1] / "recipes/an4"))
    p.add_argument("--split", default="train_nodev")
    p.add_argument("--ali", default="exp/tri3_ali", help="alignment dir (with phones.npz), relative to --recipe")
    p.add_argument("--padded", type=int, default=300, help="utterances padded for the padding measurement")
    args = p.parse_args()
    from hybrid_asr.data import read_split
    from hybrid_asr.features.audio import load_audio
    from hybrid_asr.features.trim import TrimConfig, speech_bounds
    from hybrid_asr.hmm.alignment import Alignments, frame_phones

    recipe = Path(args.recipe)
    marks = Alignments.load(recipe / args.ali / "phones.npz")
    phone_ids = {int(line.split()[1]): line.split()[0] for line in (recipe / "data/lang/phones.txt").read_text().splitlines()}
    silence = [i for i, name in phone_ids.items() if name in ("SIL", "<eps>")]
    recs, sups = read_split(recipe / "data/manifests", args.split)
    paths = {r.id: Path(r.sources[0].source) for r in recs}
    sups = [s for s in sups if s.id in marks]
    waves = {s.id: load_audio(paths[s.recording_id], 16000, s.start, s.duration) for s in sups}
    padded = {}
    for cond, seconds in PADDING_SECONDS.items():
        rng = np.random.default_rng(0)
        padded[cond] = []
        for s in sups[: args.padded]:
            wave = waves[s.id].numpy() / 32768.0
            out, _, _ = perturb(cond, wave, 16000, rng)
            samples = torch.from_numpy(np.round(np.clip(out, -1, 32767 / 32768) * 32768)).float()
            padded[cond].append((samples, int(seconds * 16000), len(wave)))
    defaults = TrimConfig()
    print(f"{len(sups)} utterances of {args.split} ({args.ali}); padding measured on {min(args.padded, len(sups))}")
    for spec in args.settings:
        fields = dict(kv.split("=", 1) for kv in spec.split(";") if kv)
        config = TrimConfig(**{k: type(getattr(defaults, k))(v) for k, v in fields.items()})
        cut_files = cut_frames = speech_frames = 0
        for s in sups:
            speech = np.flatnonzero(~np.isin(frame_phones(marks[s.id]), silence))
            speech_frames += len(speech)
            lo, hi = speech_bounds(waves[s.id], 16000, config) or (0, 0)
            centre = speech * 160 + 200  # 25 ms frames every 10 ms
            cut = int(((centre < lo) | (centre >= hi)).sum())
            cut_files += bool(cut)
            cut_frames += cut
        kept = {}
        for cond, items in padded.items():
            extra = 0
            for samples, pad, n in items:
                lo, hi = speech_bounds(samples, 16000, config) or (0, 0)
                extra += max(0, pad - lo) + max(0, hi - (pad + n))
            kept[cond] = extra / 16000 / max(1, len(items))
        print(f"{spec or 'defaults':45s} speech frames cut {cut_frames:5d} of {speech_frames} in {cut_files:3d} files; "
              "padding kept per file: " + ", ".join(f"{c} {v:.3f} s" for c, v in kept.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
