"""Decode a test set and score it: hypotheses, WER reports and timing for each acoustic scale."""

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Dict, Optional, Sequence, Union

from hybrid_asr.bundle import ModelBundle, load_graph, save_search_config
from hybrid_asr.decoding.dataset import decode_store
from hybrid_asr.features.storage import FeatureStore
from hybrid_asr.scoring import score, write_report, write_transcripts
from hybrid_asr.utils import write_text_atomic

log = logging.getLogger(__name__)


def evaluate_store(
    model_dir: Union[str, Path],
    feats_dir: Union[str, Path],
    out_dir: Union[str, Path],
    acoustic_scales: Optional[Sequence[float]] = None,
    cmvn: Optional[str] = None,
    max_frames: int = 3000,
    store_best: bool = False,
) -> Dict[float, float]:
    """Decode a feature store with a model directory and write, into ``out_dir``:

    ``ref.txt``; per acoustic scale ``hyp_ac<scale>.txt``, ``wer_ac<scale>.txt`` and
    ``wer_ac<scale>_details.txt`` (per-utterance REF/HYP alignment); ``decode_stats.json``
    (audio seconds, model and search seconds, RTF, WER per scale). The WER summary of every
    scale is printed.

    Args:
        model_dir: model directory with a graph.
        feats_dir: feature store to decode (its index carries the reference texts).
        out_dir: output directory.
        acoustic_scales: scales to try; default the model's stored one.
        cmvn: ``"utterance"``, ``"speaker"`` or ``"global"`` normalization; default the model's.
        max_frames: frames per k2 batch.
        store_best: write the best acoustic scale of the sweep into the model directory's
            ``search_config.json`` (for a dev set: later decodes then use it by default).

    Returns:
        ``{acoustic scale: WER %}``.
    """
    out = Path(out_dir)
    bundle = ModelBundle.load(model_dir)
    hlg, words, search = load_graph(model_dir)
    store = FeatureStore(feats_dir)
    scales = list(acoustic_scales) if acoustic_scales else [search.acoustic_scale]
    results, timing = decode_store(bundle, hlg, store, [replace(search, acoustic_scale=s) for s in scales],
                                   cmvn, max_frames)
    refs = {u.id: u.text.split() for u in store.utterances}
    write_transcripts(out / "ref.txt", refs)
    wers: Dict[float, float] = {}
    for k, (scale, hyp_ids) in enumerate(zip(scales, results)):
        hyps = {u: [words.get(i) for i in ids] for u, ids in hyp_ids.items()}
        write_transcripts(out / f"hyp_ac{scale:g}.txt", hyps)
        result = score(refs, hyps)
        write_report(result, out, f"wer_ac{scale:g}")
        wers[scale] = result.wer
        print(f"acoustic scale {scale:g}: {result.summary().splitlines()[0]}  "
              f"{result.summary().splitlines()[1]}  RTF {timing.rtf(k):.4f}")
    best = min(wers, key=wers.get)
    stats = {
        "utterances": len(store),
        "audio_seconds": timing.audio_seconds,
        "model_seconds": timing.model_seconds,
        "search_seconds": {f"{s:g}": t for s, t in zip(scales, timing.search_seconds)},
        "rtf": {f"{s:g}": timing.rtf(k) for k, s in enumerate(scales)},
        "cmvn": cmvn or bundle.feature_config.cmvn,
        "wer": {f"{s:g}": w for s, w in wers.items()},
        "best_acoustic_scale": best,
    }
    write_text_atomic(out / "decode_stats.json", json.dumps(stats, indent=2) + "\n")
    if store_best:
        save_search_config(model_dir, replace(search, acoustic_scale=best))
        log.info("stored acoustic scale %g as the default of %s", best, model_dir)
    log.info("decoded %.1f s of audio: acoustic model %.1f s, search %s s", timing.audio_seconds,
             timing.model_seconds, ", ".join(f"{t:.1f}" for t in timing.search_seconds))
    return wers
