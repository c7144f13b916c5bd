"""Recording conditions: the AN4 test (or dev) set perturbed, decoded, and each condition's WER next to clean.

Every test file is rewritten under each condition (seeded), decoded with ``hybrid-asr decode``'s
decoder (:class:`hybrid_asr.stages.decode_audio.AudioDecoder`, the model's own settings unless
overridden) and scored against the test transcripts. Conditions:

    clean            the file as it is
    sil2             2 s of digital silence (zeros) before and after
    noise2           2 s of white noise at -50 dBFS (RMS) before and after
    lsb3             3 s of near-silence (+-1 LSB random) before and after
    sil30            30 s of digital silence before and after (on ``--long-files`` files only)
    gain-20, gain-30, gain-40, gain+12
                     level changed by -20, -30, -40 dB / +12 dB, written as `sox in.wav out.wav
                     vol 0.01` writes them: lowered levels with sox's default TPDF dither of +-1
                     LSB (at -40 dB the recording's background becomes dither and the speech has
                     6-9 bits left), +12 dB clipped at full scale
    gain-30r, gain-40r
                     the gain-30 / gain-40 file (16-bit, dithered) brought back to the original
                     level, as float samples: what an automatic gain control in front of the
                     features would see (the speech at its level, the rounding and dither noise
                     raised with it)
    dc               DC offset of +2000 (int16 units)
    snr20, snr10     white noise mixed in at 20 / 10 dB SNR over the whole file
    8k, 48k          resampled to 8 kHz (band-limited) / 48 kHz before decoding
    nan              one NaN sample and one Inf sample in a float32 copy

    .venv/bin/python benchmarks/conditions.py [--model-dir recipes/an4/exp/tdnn_fmllr]
        [--split test|dev] [--conditions clean,sil2,...] [--limit N] [--long-files 20] [--override key=value ...]
"""

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes/an4"
CONDITIONS = ("clean", "sil2", "noise2", "lsb3", "sil30", "gain-20", "gain-30", "gain-40", "gain+12", "dc", "snr20",
              "snr10", "8k", "48k", "nan", "gain-30r", "gain-40r")


def perturb(name: str, wave: np.ndarray, rate: int, rng: np.random.Generator):
    """``(samples, rate, subtype)`` of condition ``name`` applied to float ``wave`` in [-1, 1]."""
    def pad(seconds, fill):
        n = int(seconds * rate)
        return np.concatenate([fill(n), wave, fill(n)])

    rms = float(np.sqrt(np.mean(wave ** 2)) + 1e-12)
    if name == "clean":
        return wave, rate, "PCM_16"
    if name in ("sil2", "sil30"):
        return pad(2 if name == "sil2" else 30, np.zeros), rate, "PCM_16"
    if name == "noise2":
        return pad(2, lambda n: rng.normal(0, 10 ** (-50 / 20), n)), rate, "PCM_16"
    if name == "lsb3":
        return pad(3, lambda n: rng.integers(-1, 2, n) / 32768.0), rate, "PCM_16"
    if name.startswith("gain") and name.endswith("r"):  # e.g. gain-30r
        quiet, _, _ = perturb(name[:-1], wave, rate, rng)
        restored = np.round(quiet * 32768) / 32768 * 10 ** (-float(name[4:-1]) / 20)
        return restored.astype(np.float32), rate, "FLOAT"
    if name.startswith("gain"):
        gain = float(name[4:])
        out = wave * 10 ** (gain / 20)
        if gain < 0:  # as `sox in.wav out.wav vol 0.01` writes it: TPDF dither of +-1 LSB before rounding
            out = out + (rng.uniform(-0.5, 0.5, len(out)) + rng.uniform(-0.5, 0.5, len(out))) / 32768
        return np.clip(out, -1, 32767 / 32768), rate, "PCM_16"
    if name == "dc":
        return np.clip(wave + 2000 / 32768, -1, 1), rate, "PCM_16"
    if name.startswith("snr"):
        noise = rng.normal(0, rms * 10 ** (-float(name[3:]) / 20), len(wave))
        return np.clip(wave + noise, -1, 1), rate, "PCM_16"
    if name in ("8k", "48k"):
        import torch
        import torchaudio
        new = 8000 if name == "8k" else 48000
        out = torchaudio.functional.resample(torch.from_numpy(wave).float(), rate, new).numpy()
        return np.clip(out, -1, 1), new, "PCM_16"
    if name == "nan":
        out = wave.astype(np.float32).copy()
        out[len(out) // 3], out[2 * len(out) // 3] = np.nan, np.inf
        return out, rate, "FLOAT"
    raise ValueError(f"unknown condition {name!r}")


def field_value(cls, item: str):
    """``key=value`` -> ``(key, value)`` typed by the dataclass field's annotation (bool, int,
    float, str, or Optional of one of them); exits with a one-line message on a bad key or value."""
    import typing

    key, sep, text = item.partition("=")
    hints = typing.get_type_hints(cls)
    if not sep or key not in hints:
        raise SystemExit(f"conditions.py: {item!r} is not key=value with a field of {cls.__name__} "
                         f"({', '.join(hints)})")
    kind = hints[key]
    if typing.get_origin(kind) is typing.Union:
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    try:
        if kind is bool:
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError(text)
            return key, text.lower() in ("true", "1")
        return key, kind(text)
    except (TypeError, ValueError):
        raise SystemExit(f"conditions.py: {key}={text!r} is not a valid {getattr(kind, '__name__', kind)}") from None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model-dir", default=str(RECIPE / "exp/tdnn_fmllr"), help="default: make an4's final model")
    p.add_argument("--manifests", default=str(RECIPE / "data/manifests"))
    p.add_argument("--conditions", default=",".join(CONDITIONS))
    p.add_argument("--split", default="test", help="manifest split (tune on dev, report on test)")
    p.add_argument("--limit", type=int, default=0, help="first N test files only (0: all)")
    p.add_argument("--long-files", type=int, default=20, help="files used for sil30")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--override", nargs="*", default=[], help="DecodeOptions fields, key=value")
    p.add_argument("--dither", type=float, default=None, help="decode with this dither, not the model's")
    p.add_argument("--trim", nargs="*", default=None,
                   help="TrimConfig fields, key=value (none given: the default); 'off': no trimming")
    args = p.parse_args()
    os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    logging.getLogger("hybrid_asr.features.audio").setLevel(logging.ERROR)  # the nan condition warns per file
    import soundfile

    from hybrid_asr.data import read_split
    from hybrid_asr.data.inputs import AudioSegment
    from hybrid_asr.features.trim import TrimConfig
    from hybrid_asr.scoring import score
    from hybrid_asr.stages.decode_audio import AudioDecoder, DecodeOptions

    overrides = dict(field_value(DecodeOptions, item) for item in args.override)
    if args.trim == ["off"]:
        overrides["trim"] = None
    elif args.trim:
        overrides["trim"] = TrimConfig(**dict(field_value(TrimConfig, item) for item in args.trim))
    decoder = AudioDecoder(args.model_dir, options=DecodeOptions(**overrides))
    if args.dither is not None:  # decode with another dither than the model was trained with
        from dataclasses import replace
        decoder.bundle.feature_config = replace(decoder.bundle.feature_config, dither=args.dither)
    recs, sups = read_split(Path(args.manifests), args.split)
    refs = {s.recording_id: s.text.split() for s in sups}
    paths = {r.id: Path(r.sources[0].source) for r in recs}
    ids = sorted(refs)[: args.limit or None]
    print(f"model {args.model_dir}, {len(ids)} {args.split} files, options {overrides or 'default'}")
    clean_wer, clean_hyps = None, {}
    with tempfile.TemporaryDirectory() as tmp:
        for cond in args.conditions.split(","):
            rng = np.random.default_rng(args.seed)
            use = ids[: args.long_files] if cond == "sil30" else ids
            hyps, seconds, t0, errors = {}, 0.0, time.time(), 0
            for utt in use:
                wave, rate = soundfile.read(str(paths[utt]), dtype="float64")
                out, new_rate, subtype = perturb(cond, wave, rate, rng)
                f = Path(tmp) / f"{utt}.wav"
                soundfile.write(str(f), out, new_rate, subtype=subtype)
                result = decoder.decode(AudioSegment(utt, f, utt))
                errors += result.error is not None
                hyps[utt] = [w.word for w in result.words]
                seconds += len(out) / new_rate
            ref_sub = {u: refs[u] for u in use}
            wer = score(ref_sub, hyps).wer
            if cond == "clean":
                clean_wer, clean_hyps = wer, hyps
            base = "" if clean_wer is None or cond == "clean" else f"  ({wer / max(clean_wer, 1e-9):.2f}x clean)"
            if clean_wer is not None and cond != "clean":
                same = sum(hyps[u] == clean_hyps.get(u) for u in use)
                base += f"  words as clean: {same}/{len(use)}"
            empty = sum(not hyps[u] and bool(refs[u]) for u in use)
            print(f"{cond:8s} WER {wer:6.2f}%{base}  no words: {empty}  {seconds:7.0f} s audio, "
                  f"{time.time() - t0:5.0f} s, {errors} errors", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
