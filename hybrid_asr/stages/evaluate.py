"""Decode a feature store and score it: hypotheses, WER reports and timing for each acoustic scale.

A decode directory holds ``ref.txt`` and ``utt2spk``; per search setting ``hyp_ac<key>.txt``, where
the key is the acoustic scale (``0.1``) or, with a word insertion penalty, scale and penalty
(``0.1_wip0.5``: :func:`setting_key`); ``timing.json`` (utterances, audio, model and search seconds
per setting, the search settings besides the acoustic scale and penalty: beams, token limits,
backend, LM scale; written last by the decoding job); and, once scored, ``wer_ac<key>.txt``,
``wer_ac<key>_details.txt`` (per-utterance REF/HYP alignment; the summary has tables of WER per
speaker and, given a ``spk2group`` map, per group of speakers) and ``decode_stats.json`` (RTF and WER
per setting, per group at each setting, the best acoustic scale and word insertion penalty; written
last).
Sharded decoding writes one decode directory per shard; :func:`merge_decode_dirs` concatenates
them and the scoring is then that of a single job.
"""

import json
import logging
from dataclasses import asdict, replace
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

from hybrid_asr.bundle import ModelBundle, load_graph, save_search_config
from hybrid_asr.data.kaldi_dir import read_kaldi_map
from hybrid_asr.decoding.dataset import MAX_BATCH_FRAMES, decode_store
from hybrid_asr.errors import InputError
from hybrid_asr.features.storage import FeatureStore
from hybrid_asr.likelihoods import decode_chunk_frames
from hybrid_asr.scoring import read_transcripts, score, speaker_breakdowns, write_report, write_transcripts
from hybrid_asr.stages.gmm import speaker_independent_dir
from hybrid_asr.stages.shards import Shard, remove_shard_dirs, run_local_shards, shard_dirs
from hybrid_asr.utils import write_text_atomic

log = logging.getLogger(__name__)

Setting = Tuple[float, float]
"""A point of the decode sweep: ``(acoustic scale, word insertion penalty)``."""


def setting_key(acoustic_scale: float, word_insertion_penalty: float = 0.0) -> str:
    """The name of a sweep point in file names and JSON keys: ``"0.1"``, or ``"0.1_wip0.5"`` with a
    nonzero word insertion penalty (so a sweep without penalties keeps the names it always had)."""
    key = f"{acoustic_scale:g}"
    return key if word_insertion_penalty == 0 else f"{key}_wip{word_insertion_penalty:g}"


def parse_setting_key(key: str) -> Setting:
    """``(acoustic scale, word insertion penalty)`` of a :func:`setting_key` name.

    Raises:
        ValueError: ``key`` is not such a name.
    """
    scale, _, penalty = key.partition("_wip")
    return float(scale), float(penalty) if penalty else 0.0


def decode_to_dir(model_dir: Union[str, Path], feats_dir: Union[str, Path], out_dir: Union[str, Path],
                  acoustic_scales: Optional[Sequence[float]] = None, cmvn: Optional[str] = None,
                  max_frames: int = MAX_BATCH_FRAMES, shard: Shard = Shard(), chunk_frames: Optional[int] = None,
                  search_overrides: Optional[dict] = None,
                  word_insertion_penalties: Optional[Sequence[float]] = None) -> None:
    """Decode the utterances of ``shard`` and write ``ref.txt``, ``hyp_ac<key>.txt`` and
    ``timing.json`` (last) into ``out_dir``; see :func:`evaluate_store` for the arguments. A SAT
    model directory (with ``si_model/``) is decoded in two passes with per-speaker fMLLR
    (:mod:`hybrid_asr.stages.fmllr`); ``timing.json`` then holds an ``fmllr`` summary."""
    out = Path(out_dir)
    for marker in ("decode_stats.json", "timing.json"):  # incomplete until both are written again
        (out / marker).unlink(missing_ok=True)
    bundle = ModelBundle.load(model_dir)
    if chunk_frames is not None and hasattr(bundle.model.config, "decode_chunk_frames"):
        bundle.model.config = replace(bundle.model.config, decode_chunk_frames=chunk_frames)
    graph, words, search = load_graph(model_dir, bundle)
    search = replace(search, **(search_overrides or {}))
    store = FeatureStore(feats_dir)
    bundle.check_features(model_dir, feats_dir, store.config)
    scales = list(acoustic_scales) if acoustic_scales else [search.acoustic_scale]
    penalties = list(word_insertion_penalties) if word_insertion_penalties else [search.word_insertion_penalty]
    settings = [(s, p) for p in penalties for s in scales]
    keys = [setting_key(s, p) for s, p in settings]
    utts = shard.select_groups(store.utterances, lambda u: u.speaker)
    searches = [replace(search, acoustic_scale=s, word_insertion_penalty=p) for s, p in settings]
    si_dir, fmllr = speaker_independent_dir(model_dir), None
    if si_dir is not None:
        from hybrid_asr.lang.lang_dir import Lang
        from hybrid_asr.stages.fmllr import decode_store_fmllr

        log.info("%s is speaker-adapted (SAT): first pass with %s, fMLLR per speaker, second pass", model_dir, si_dir)
        results, timing, fmllr = decode_store_fmllr(bundle, ModelBundle.load(si_dir), Lang(Path(model_dir) / "lang"),
                                                    graph, words, store, searches, search, cmvn, max_frames,
                                                    [u.id for u in utts])
    else:
        results, timing = decode_store(bundle, graph, store, searches, cmvn, max_frames, [u.id for u in utts],
                                       model_dir)
    write_transcripts(out / "ref.txt", {u.id: u.text.split() for u in utts})
    write_text_atomic(out / "utt2spk", "".join(f"{u.id} {u.speaker}\n" for u in utts))
    for key, hyp_ids in zip(keys, results):
        write_transcripts(out / f"hyp_ac{key}.txt", {u: [words.get(i) for i in ids] for u, ids in hyp_ids.items()})
    swept = ("acoustic_scale", "word_insertion_penalty")
    info = {"utterances": len(utts), "audio_seconds": timing.audio_seconds, "model_seconds": timing.model_seconds,
            "search_seconds": dict(zip(keys, timing.search_seconds)),
            "cmvn": cmvn or bundle.feature_config.cmvn, "chunk_frames": decode_chunk_frames(bundle.model),
            "search": {k: v for k, v in asdict(search).items() if k not in swept}}
    if fmllr is not None:
        info["fmllr"] = fmllr
    write_text_atomic(out / "timing.json", json.dumps(info, indent=2) + "\n")
    log.info("decoded %.1f s of audio: acoustic model %.1f s, search %s s", timing.audio_seconds,
             timing.model_seconds, ", ".join(f"{t:.1f}" for t in timing.search_seconds))


def _decode_job(model_dir: str, feats_dir: str, out_dir: str, scales, cmvn, max_frames: int, shard: Shard,
                chunk_frames: Optional[int], search_overrides: Optional[dict], penalties) -> None:
    decode_to_dir(model_dir, feats_dir, out_dir, scales, cmvn, max_frames, shard, chunk_frames, search_overrides,
                  penalties)


def _timing(d: Path) -> dict:
    if not (d / "timing.json").is_file():
        raise InputError(d, "not a complete decode directory (timing.json missing)")
    return json.loads((d / "timing.json").read_text())


def _read_utt2spk(decode_dir: Path) -> Dict[str, str]:
    """The ``utt2spk`` of a decode directory; empty if it has none (written before it existed)."""
    path = decode_dir / "utt2spk"
    return read_kaldi_map(path) if path.is_file() else {}


def merge_decode_dirs(shard_dirs: Sequence[Union[str, Path]], out_dir: Union[str, Path]) -> None:
    """Concatenate the references, hypotheses and timings of decode directories (the shards of
    one decode) into ``out_dir``, which :func:`score_decode_dir` then scores.

    Raises:
        InputError: a shard is incomplete, or the shards used different acoustic scales.
    """
    out = Path(out_dir)
    timings = [_timing(Path(d)) for d in shard_dirs]
    scales = list(timings[0]["search_seconds"])
    if any(list(t["search_seconds"]) != scales for t in timings):
        raise InputError(shard_dirs[0], "the shards were decoded at different acoustic scales or word insertion "
                         "penalties")
    refs: Dict[str, List[str]] = {}
    for d in shard_dirs:
        refs.update(read_transcripts(Path(d) / "ref.txt"))
    write_transcripts(out / "ref.txt", refs)
    utt2spk = {}
    for d in shard_dirs:
        utt2spk.update(_read_utt2spk(Path(d)))
    if utt2spk:
        write_text_atomic(out / "utt2spk", "".join(f"{u} {k}\n" for u, k in sorted(utt2spk.items())))
    for s in scales:
        hyps: Dict[str, List[str]] = {}
        for d in shard_dirs:
            hyps.update(read_transcripts(Path(d) / f"hyp_ac{s}.txt"))
        write_transcripts(out / f"hyp_ac{s}.txt", hyps)
    info = {"utterances": sum(t["utterances"] for t in timings),
            "audio_seconds": sum(t["audio_seconds"] for t in timings),
            "model_seconds": sum(t["model_seconds"] for t in timings),
            "search_seconds": {s: sum(t["search_seconds"][s] for t in timings) for s in scales},
            "cmvn": timings[0]["cmvn"], "chunk_frames": timings[0].get("chunk_frames", 0),
            "search": timings[0].get("search"), "shards": len(timings)}
    fmllr = [t["fmllr"] for t in timings if "fmllr" in t]
    if fmllr:  # two-pass SAT decodes: speakers add up, the mean gain is weighted by them
        speakers = sum(f["speakers"] for f in fmllr)
        info["fmllr"] = {**fmllr[0], "speakers": speakers,
                         "mean_objective_gain": round(sum(f["mean_objective_gain"] * f["speakers"] for f in fmllr)
                                                      / max(speakers, 1), 4),
                         "first_pass_search_seconds": sum(f["first_pass_search_seconds"] for f in fmllr)}
    write_text_atomic(out / "timing.json", json.dumps(info, indent=2) + "\n")


class DecodeScores(NamedTuple):
    """What scoring a decode directory gives.

    Attributes:
        wers: ``{(acoustic scale, word insertion penalty): WER %}``.
        lines: one summary line per setting (WER, SER, RTF, per-group WER), for the caller to print.
    """

    wers: Dict[Setting, float]
    lines: List[str]


def score_decode_dir(out_dir: Union[str, Path], model_dir: Optional[Union[str, Path]] = None,
                     store_best: bool = False, spk2group: Optional[Union[str, Path]] = None) -> DecodeScores:
    """Score a decode directory: WER reports per search setting (acoustic scale and word
    insertion penalty), ``decode_stats.json`` (last), and a summary line per setting; with
    ``store_best`` the best setting becomes the default of ``model_dir`` (its
    ``search_config.json``). Ties go to the setting decoded first.

    Args:
        out_dir: the decode directory.
        model_dir: its model directory (for ``store_best``).
        store_best: see above.
        spk2group: ``<speaker> <group>`` file (e.g. ``spk2gender``, children/adults): WER per
            group too; speakers it lacks count as group ``unknown``.

    Returns:
        the WER of each setting and the summary lines (see :class:`DecodeScores`).

    Raises:
        InputError: the directory is incomplete, or ``spk2group`` is missing or malformed.
    """
    out = Path(out_dir)
    timing = _timing(out)
    refs = read_transcripts(out / "ref.txt")
    groups = read_kaldi_map(Path(spk2group)) if spk2group is not None else None
    breakdowns = speaker_breakdowns(_read_utt2spk(out), groups)
    by_group: Dict[str, Dict[str, float]] = {}
    wers: Dict[str, float] = {}
    lines: List[str] = []
    audio = max(timing["audio_seconds"], 1e-9)
    rtf = {s: (timing["model_seconds"] + t) / audio for s, t in timing["search_seconds"].items()}
    for s in timing["search_seconds"]:
        result = score(refs, read_transcripts(out / f"hyp_ac{s}.txt"))
        write_report(result, out, f"wer_ac{s}", breakdowns)
        wers[s] = result.wer
        summary = result.summary().splitlines()
        groups_text = ""
        if "group" in breakdowns:
            by_group[s] = {k: r.wer for k, r in result.breakdown(breakdowns["group"]).items()}
            groups_text = "  (" + ", ".join(f"{k} {w:.2f}" for k, w in by_group[s].items()) + ")"
        scale, penalty = parse_setting_key(s)
        name = f"acoustic scale {scale:g}" + (f", word insertion penalty {penalty:g}" if penalty else "")
        lines.append(f"{name}: {summary[0]}  {summary[1]}  RTF {rtf[s]:.4f}{groups_text}")
    best_key = min(wers, key=wers.get)
    best_scale, best_penalty = parse_setting_key(best_key)
    keys = ("utterances", "audio_seconds", "model_seconds", "search_seconds", "cmvn", "chunk_frames", "search")
    stats = {**{k: timing.get(k) for k in keys}, "rtf": rtf, "wer": wers, "best_setting": best_key,
             "best_acoustic_scale": best_scale, "best_word_insertion_penalty": best_penalty}
    if by_group:
        stats["wer_by_group"] = by_group
    write_text_atomic(out / "decode_stats.json", json.dumps(stats, indent=2) + "\n")
    if store_best and model_dir is not None:
        _, _, search = load_graph(model_dir)
        save_search_config(model_dir, replace(search, acoustic_scale=best_scale, word_insertion_penalty=best_penalty))
        log.info("stored acoustic scale %g and word insertion penalty %g as the defaults of %s", best_scale,
                 best_penalty, model_dir)
    return DecodeScores({parse_setting_key(k): w for k, w in wers.items()}, lines)


def evaluate_store(
    model_dir: Union[str, Path],
    feats_dir: Union[str, Path],
    out_dir: Union[str, Path],
    acoustic_scales: Optional[Sequence[float]] = None,
    cmvn: Optional[str] = None,
    max_frames: int = MAX_BATCH_FRAMES,
    store_best: bool = False,
    shard: Shard = Shard(),
    nj: int = 1,
    chunk_frames: Optional[int] = None,
    spk2group: Optional[Union[str, Path]] = None,
    search_overrides: Optional[dict] = None,
    word_insertion_penalties: Optional[Sequence[float]] = None,
) -> DecodeScores:
    """Decode a feature store with a model directory and score it (see the module docstring for
    what ``out_dir`` receives).

    Args:
        model_dir: model directory with a graph.
        feats_dir: feature store to decode (its index carries the reference texts).
        out_dir: output directory.
        acoustic_scales: scales to try; default the model's stored one.
        cmvn: ``"utterance"``, ``"speaker"`` or ``"global"`` normalization; default the model's.
        max_frames: frames per k2 batch.
        store_best: write the best acoustic scale and word insertion penalty of the sweep into the
            model directory's ``search_config.json`` (for a dev set: later decodes then use them by
            default).
        shard: decode only this shard, unscored (``merge-decodes`` scores the shards together).
        nj: decode ``nj`` local shards in parallel processes, merge and score them.
        chunk_frames: recurrent models: score in chunks of this many output frames (0: whole
            utterances) instead of the model's ``decode_chunk_frames``.
        spk2group: report the WER per group of speakers too (see :func:`score_decode_dir`).
        search_overrides: fields of :class:`~hybrid_asr.bundle.SearchConfig` to change (beams,
            backend) for this decode; the rest come from the model's ``search_config.json``.
        word_insertion_penalties: penalties to try, each with every acoustic scale (Kaldi's
            ``local/score.sh`` grid); default the model's stored one.

    Returns:
        the WER of each setting and the summary lines (:class:`DecodeScores`; empty for one shard
        of several).
    """
    if nj > 1:
        (Path(out_dir) / "decode_stats.json").unlink(missing_ok=True)  # incomplete until scored again
        dirs = shard_dirs(out_dir, nj)
        run_local_shards(_decode_job, [(str(model_dir), str(feats_dir), str(d), acoustic_scales, cmvn, max_frames,
                                        Shard(i, nj), chunk_frames, search_overrides, word_insertion_penalties)
                                       for i, d in enumerate(dirs)], nj)
        merge_decode_dirs(dirs, out_dir)
        remove_shard_dirs(out_dir)
    else:
        decode_to_dir(model_dir, feats_dir, out_dir, acoustic_scales, cmvn, max_frames, shard, chunk_frames,
                      search_overrides, word_insertion_penalties)
        if shard.count > 1:
            return DecodeScores({}, [])
    return score_decode_dir(out_dir, model_dir, store_best, spk2group)
