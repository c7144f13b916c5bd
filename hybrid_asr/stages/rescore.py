"""Stage: ``hybrid-asr rescore``: a first pass with the model's graph (its small LM), lattices,
exact N-best lists, and rescoring with another ARPA LM at a sweep of LM scales.

The decode directory receives ``ref.txt``; ``lattices/batch<k>.pt`` (the k2 lattices of each
batch, an FsaVec saved with :func:`hybrid_asr.lang.lang_dir.save_fsa`, whose ``index.json``
lists the utterance of each lattice); ``nbest.jsonl`` (one line per utterance: ``{"utt",
"hyps": [[words, score, old LM log-prob], ...]}``, score = the first-pass path score, natural log,
graph + scaled acoustic); ``hyp_first_pass.txt`` and ``hyp_lm<scale>.txt``; WER reports of each;
``rescore_stats.json`` (written last).

A hypothesis' new score is ``score - ln p_old(words) + scale * ln p_new(words)``: the first-pass
LM log-probability is taken out and the new one put in, times the scale (scale 1 with the same LM
gives the first pass back).
"""

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Tuple, Union

import k2

from hybrid_asr.bounds import bounded, check_bounds
from hybrid_asr.bundle import ModelBundle, load_graph
from hybrid_asr.decoding.dataset import MAX_BATCH_FRAMES, frame_batches
from hybrid_asr.decoding.lattice import lattice_of, word_nbest
from hybrid_asr.decoding.search import with_word_insertion_penalty
from hybrid_asr.errors import InputError
from hybrid_asr.features.storage import FeatureStore
from hybrid_asr.lang.lang_dir import save_fsa
from hybrid_asr.lang.lm import ArpaScorer
from hybrid_asr.likelihoods import log_likelihoods
from hybrid_asr.scoring import score, write_report, write_transcripts
from hybrid_asr.utils import progress, write_text_atomic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RescoreConfig:
    """N-best rescoring settings (``hybrid-asr rescore``).

    Attributes:
        lm_scales: scales of the new LM's log-probability to try (pick one on dev).
        nbest: distinct word sequences per utterance.
    """

    lm_scales: Tuple[float, ...] = bounded((0.5, 0.75, 1.0, 1.25, 1.5), gt=0)
    nbest: int = bounded(100, ge=1)

    def __post_init__(self) -> None:
        check_bounds(self)


class RescoreScores(NamedTuple):
    """What :func:`rescore` gives.

    Attributes:
        wers: ``{"first_pass": WER, "<LM scale>": WER, ...}`` in %.
        lines: summary lines (one per LM scale, then the first pass), for the caller to print.
    """

    wers: Dict[str, float]
    lines: List[str]


def rescore(model_dir: Union[str, Path], feats_dir: Union[str, Path], out_dir: Union[str, Path],
            new_arpa: Union[str, Path], config: RescoreConfig = RescoreConfig(),
            old_arpa: Optional[Union[str, Path]] = None, search_overrides: Optional[dict] = None,
            max_frames: int = MAX_BATCH_FRAMES) -> RescoreScores:
    """Decode a feature store with k2 lattices and rescore its N-best lists with ``new_arpa``.

    Args:
        model_dir: model directory with a graph (the first pass).
        feats_dir: feature store (its index has the references).
        out_dir: decode directory to write (see the module docstring).
        new_arpa: the rescoring LM.
        config: LM scales and N-best size.
        old_arpa: the first-pass LM (default: ``lm.arpa`` of the lang dir the graph was built from).
        search_overrides: fields of :class:`~hybrid_asr.bundle.SearchConfig` to change (acoustic
            scale, beams; ``output_beam`` is the lattice beam); the rest are the model's.
        max_frames: frames per batch of acoustic scoring.

    Returns:
        the WERs (``{"first_pass": WER, "<scale>": WER, ...}`` in %) and a summary line per LM
        scale and of the first pass (:class:`RescoreScores`).

    Raises:
        InputError: the model, store or an LM is missing or unreadable.
    """
    out = Path(out_dir)
    (out / "lattices").mkdir(parents=True, exist_ok=True)
    bundle = ModelBundle.load(model_dir)
    graph, words, search = load_graph(model_dir, bundle)
    search = replace(search, **(search_overrides or {}))
    graph = with_word_insertion_penalty(graph, search.normalized().word_insertion_penalty)
    if old_arpa is None:
        info = json.loads((Path(model_dir) / "graph_info.json").read_text())
        old_arpa = Path(info.get("lang_dir", "")) / "lm.arpa"
        if not Path(old_arpa).is_file():
            raise InputError(old_arpa, "the first-pass LM is missing: give it with --old-lm")
    old_lm, new_lm = ArpaScorer(old_arpa), ArpaScorer(new_arpa)
    store = FeatureStore(feats_dir)
    bundle.check_features(model_dir, feats_dir, store.config)
    utts = store.utterances
    refs = {u.id: u.text.split() for u in utts}
    write_transcripts(out / "ref.txt", refs)
    lists: Dict[str, List[tuple]] = {}
    index = []
    batches = list(frame_batches([u.frames for u in utts], max_frames))
    cmvn = bundle.feature_config.cmvn
    with open(out / "nbest.jsonl.tmp", "w", encoding="utf-8") as f:
        for k, batch in enumerate(progress(batches, desc="rescore", unit="batch")):
            lattices = []
            for i in batch:
                u = utts[i]
                scores = log_likelihoods(bundle.model, store.normalized(u.id, cmvn, bundle.cmvn), bundle.log_priors)
                lattice = lattice_of(graph, scores, search)
                lattices.append(lattice)
                hyps = []
                for ids, s in word_nbest(lattice, config.nbest):
                    ws = [words.get(w) for w in ids]
                    hyps.append((ws, s, old_lm.log_prob(ws)))
                lists[u.id] = hyps
                f.write(json.dumps({"utt": u.id, "hyps": hyps}) + "\n")
            save_fsa(k2.create_fsa_vec([lat[0] for lat in lattices]), out / "lattices" / f"batch{k}.pt")
            index.append([utts[i].id for i in batch])
    (out / "nbest.jsonl.tmp").rename(out / "nbest.jsonl")
    write_text_atomic(out / "lattices" / "index.json", json.dumps(index) + "\n")
    new_scores = {u: [new_lm.log_prob(ws) for ws, _, _ in hyps] for u, hyps in lists.items()}
    results: Dict[str, float] = {}
    lines: List[str] = []
    first = {u: (hyps[0][0] if hyps else []) for u, hyps in lists.items()}
    write_transcripts(out / "hyp_first_pass.txt", first)
    r = score(refs, first)
    write_report(r, out, "wer_first_pass")
    results["first_pass"] = r.wer
    log.info("first pass: %s", r.summary().splitlines()[0])
    for scale in config.lm_scales:
        best = {}
        for u, hyps in lists.items():
            if not hyps:
                best[u] = []
                continue
            totals = [s - old + scale * new for (_, s, old), new in zip(hyps, new_scores[u])]
            best[u] = hyps[max(range(len(hyps)), key=totals.__getitem__)][0]
        write_transcripts(out / f"hyp_lm{scale:g}.txt", best)
        r = score(refs, best)
        write_report(r, out, f"wer_lm{scale:g}")
        results[f"{scale:g}"] = r.wer
        lines.append(f"LM scale {scale:g}: {r.summary().splitlines()[0]}")
    stats = {"first_pass_wer": results["first_pass"], "wer": {k: v for k, v in results.items() if k != "first_pass"},
             "old_lm": str(old_arpa), "new_lm": str(new_arpa), "nbest": config.nbest,
             "acoustic_scale": search.acoustic_scale}
    stats["best_lm_scale"] = float(min(stats["wer"], key=stats["wer"].get)) if stats["wer"] else None
    write_text_atomic(out / "rescore_stats.json", json.dumps(stats, indent=2) + "\n")
    lines.append(f"first pass: %WER {results['first_pass']:.2f}")
    return RescoreScores(results, lines)
