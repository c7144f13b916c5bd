"""Checks of ``hybrid-asr decode`` on AN4 (run by hand after the AN4 recipe).

1. Decode the AN4 test WAV directory with ``--output json --word-times --confidence`` and score
   it against the test transcripts: the WER must be the recipe's test WER.
2. Word times: for every correctly recognised word, is its CTM start and end within 50 ms of the
   same word's span in a forced alignment of the reference transcript by another model (the
   monophone system by default)? Prints the fraction.
3. Confidences: mean confidence of correct words and of substituted or inserted ones.
4. Long audio: the test files concatenated into a recording of about ``--long-minutes`` minutes
   and a 1-minute one, each decoded in its own process: peak RSS of both, and the WER of the long
   recording's words against the per-file decodes concatenated.

    .venv/bin/python benchmarks/decode_checks.py [--model-dir recipes/an4/exp/cd400/tdnn2]
        [--align-model recipes/an4/exp/dnn4] [--long-minutes 60]
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes/an4"


def run_decode(model_dir, inputs, extra=()):
    """Run ``hybrid-asr decode --output json`` in a child process: (results, peak RSS MB, stderr)."""
    cmd = ["/usr/bin/time", "-f", "%M", sys.executable, "-m", "hybrid_asr", "decode", str(model_dir),
           *map(str, inputs), "--output", "json", *extra]
    out = subprocess.run(cmd, capture_output=True, text=True)
    rss = int(out.stderr.strip().splitlines()[-1]) / 1024
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()], rss, out.stderr


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model-dir", default=str(RECIPE / "exp/cd400/tdnn2"))
    p.add_argument("--align-model", default=str(RECIPE / "exp/dnn4"))
    p.add_argument("--wav-dir", default=str(ROOT.parent / "shared/data/an4/wav/an4test_clstk"))
    p.add_argument("--manifests", default=str(RECIPE / "data/manifests"))
    p.add_argument("--long-minutes", type=float, default=60.0)
    args = p.parse_args()
    os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")
    import kaldialign
    import torch
    import torchaudio

    from hybrid_asr.align.viterbi import viterbi_align
    from hybrid_asr.align.words import word_spans
    from hybrid_asr.bundle import ModelBundle
    from hybrid_asr.data import read_split
    from hybrid_asr.graph.training import TrainingGraphCompiler
    from hybrid_asr.hmm.alignment import segments_from_marks, upsample_alignment
    from hybrid_asr.lang import Lang
    from hybrid_asr.likelihoods import audio_log_likelihoods
    from hybrid_asr.scoring import score

    recs, sups = read_split(Path(args.manifests), "test")
    refs = {s.recording_id: s.text.split() for s in sups}
    results, rss, _ = run_decode(args.model_dir, [args.wav_dir], ["--word-times", "--confidence"])
    hyps = {Path(r["file"]).stem: r["words"] for r in results if "words" in r}
    wer = score(refs, hyps)
    print(f"1. decode {args.wav_dir}: {len(hyps)} files, {wer.summary()}")

    # 2 + 3: word times against a forced alignment of the reference by another model; confidences
    info = json.loads((Path(args.model_dir) / "graph_info.json").read_text())
    lang = Lang(info["lang_dir"])
    other = ModelBundle.load(args.align_model)
    compiler = TrainingGraphCompiler(lang, other.topology, other.make_h())
    shift = other.feature_config.frame_shift_ms / 1000
    within = total = 0
    conf_ok, conf_bad = [], []
    for r in results:
        if "word_info" not in r:
            continue
        rec = Path(r["file"]).stem
        path = Path(r["file"])
        scores = audio_log_likelihoods(other, path)
        ali = viterbi_align(compiler, [" ".join(refs[rec])], [scores])[0]
        ali = upsample_alignment(ali, other.model.subsampling_factor, scores.shape[0] * other.model.subsampling_factor)
        spans = word_spans(segments_from_marks(ali.phone_marks, other.topology.phone_names), refs[rec], lang.lexicon)
        info_words = r["word_info"]
        i = j = 0
        for a, b in kaldialign.align(refs[rec], r["words"], "*"):
            if a != "*" and b != "*":
                w = info_words[j]
                if a == b:
                    _, s0, s1 = spans[i]
                    total += 1
                    within += abs(w["start"] - s0 * shift) <= 0.05 and abs(w["start"] + w["duration"] - s1 * shift) <= 0.05
                    conf_ok.append(w["confidence"])
                else:
                    conf_bad.append(w["confidence"])
            elif b != "*":
                conf_bad.append(info_words[j]["confidence"])
            i += a != "*"
            j += b != "*"
    print(f"2. word times of the {total} correct words: {100 * within / max(total, 1):.1f}% start and end within "
          f"50 ms of the reference's forced alignment by {args.align_model}")
    mean = lambda v: sum(v) / max(len(v), 1)  # noqa: E731
    print(f"3. mean confidence: correct words {mean(conf_ok):.3f} ({len(conf_ok)}), substitutions and insertions "
          f"{mean(conf_bad):.3f} ({len(conf_bad)})")

    # 4: long recording
    files = sorted(Path(args.wav_dir).rglob("*.wav"))
    waves = [torchaudio.load(str(f))[0] for f in files]
    rate = torchaudio.info(str(files[0])).sample_rate
    one = torch.cat(waves, dim=1)
    with tempfile.TemporaryDirectory() as tmp:
        reps = max(1, round(args.long_minutes * 60 * rate / one.shape[1]))
        long_path, short_path = Path(tmp) / "long.wav", Path(tmp) / "short.wav"
        torchaudio.save(str(long_path), one.repeat(1, reps), rate)
        torchaudio.save(str(short_path), one[:, : 60 * rate], rate)
        per_file = [w for f in files for w in hyps.get(f.stem, [])] * reps
        (_, short_rss, _), (long_res, long_rss, err) = (run_decode(args.model_dir, [short_path]),
                                                               run_decode(args.model_dir, [long_path]))
        long_words = long_res[0].get("words", []) if long_res else []
        seconds = one.shape[1] * reps / rate
        agree = score({"x": per_file}, {"x": long_words})
        print(f"4. {seconds / 60:.1f}-minute recording: peak RSS {long_rss:.0f} MB; 1-minute one: {short_rss:.0f} MB "
              f"(ratio {long_rss / short_rss:.2f}); its {len(long_words)} words against the {len(per_file)} of the "
              f"per-file decodes: WER {agree.wer:.2f}%; {re.findall(r'real-time factor [0-9.]+', err)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
