"""Decode a feature store (a test set), with timing for the RTF."""

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import k2

from hybrid_asr.bundle import ModelBundle
from hybrid_asr.decoding.search import SearchConfig, Searcher
from hybrid_asr.likelihoods import log_likelihoods
from hybrid_asr.features.storage import FeatureStore
from hybrid_asr.utils import progress

log = logging.getLogger(__name__)


@dataclass
class DecodeTiming:
    """Wall-clock accounting of a decode (features excluded: they are computed once per split).

    Attributes:
        audio_seconds: duration of the decoded audio (frames x frame shift).
        model_seconds: time computing the acoustic scores (shared by all search settings).
        search_seconds: search time, one entry per search setting. With a lattice sweep
            (:attr:`SearchConfig.sweep` ``"lattice"``) each setting is charged the whole sweep (the
            lattice search and every setting's best path): at most what it costs alone.
    """

    audio_seconds: float = 0.0
    model_seconds: float = 0.0
    search_seconds: List[float] = field(default_factory=list)


#: Input frames per batch of dataset decoding (acoustic scoring and one k2 search call); bounds
#: the memory of both. The one default of ``decode-dataset --max-frames`` and ``rescore``.
MAX_BATCH_FRAMES = 3000


def frame_batches(lengths: Sequence[int], max_frames: int) -> Iterator[List[int]]:
    """Group item indices into batches of at most ``max_frames`` total frames (one item at least)."""
    batch: List[int] = []
    total = 0
    for i, n in enumerate(lengths):
        if batch and total + n > max_frames:
            yield batch
            batch, total = [], 0
        batch.append(i)
        total += n
    if batch:
        yield batch


def decode_store(
    bundle: ModelBundle,
    graph: k2.Fsa,
    store: FeatureStore,
    searches: Sequence[SearchConfig],
    cmvn: Optional[str] = None,
    max_frames: int = MAX_BATCH_FRAMES,
    utt_ids: Optional[Sequence[str]] = None,
    model_dir: Optional[Union[str, Path]] = None,
) -> Tuple[List[Dict[str, List[int]]], DecodeTiming]:
    """Decode every utterance of a store, once per search setting (acoustic scales share scores).

    Works batch by batch (``max_frames`` input frames each): the acoustic scores of a batch are
    computed, searched with every setting and dropped, so memory does not grow with the store.

    Args:
        bundle: acoustic model, priors, global CMVN.
        graph: decoding graph.
        store: features to decode.
        searches: one or more search settings (e.g. a sweep over acoustic scales); with more than
            one and ``searches[0].sweep == "lattice"``, one k2 lattice per utterance serves them
            all (:meth:`Searcher.sweep`). ``searches[0].device`` is where the model (moved there)
            and k2's searches run.
        cmvn: ``"utterance"``, ``"speaker"`` (the store's per-speaker statistics) or ``"global"``
            (the model's training statistics); default the model's own mode.
        max_frames: frames per k2 batch (bounds memory, see K2_NOTES).
        utt_ids: decode only these utterances (default: all, in store order).
        model_dir: the directory ``graph`` came from, whose stored OpenFst graph Kaldi's search
            reads (:class:`Searcher`).

    Returns:
        ``(per search setting {utt_id: word ids}, timing)``.
    """
    cmvn = cmvn or bundle.feature_config.cmvn
    timing = DecodeTiming(search_seconds=[0.0] * len(searches))
    utts = store.utterances if utt_ids is None else [store.utterance(u) for u in utt_ids]
    results: List[Dict[str, List[int]]] = [{} for _ in searches]
    timing.audio_seconds = sum(u.frames for u in utts) * store.config.frame_shift_ms / 1000
    # batch by batch: score a batch, search it at every setting, drop its scores (memory: one batch)
    batches = list(frame_batches([u.frames for u in utts], max_frames))
    device = searches[0].torch_device()
    bundle.model.to(device)  # log_posteriors scores on the model's device and returns CPU tensors
    search_graph = Searcher(graph, device, model_dir)
    lattice_sweep = len(searches) > 1 and searches[0].sweep == "lattice"
    for batch in progress(batches, desc="decode", unit="batch"):
        ids = [utts[i].id for i in batch]
        start = time.time()
        scores = [log_likelihoods(bundle.model, store.normalized(u, cmvn, bundle.cmvn), bundle.log_priors)
                  for u in ids]
        timing.model_seconds += time.time() - start
        if lattice_sweep:
            start = time.time()
            for k, words in enumerate(search_graph.sweep(scores, searches)):
                for utt, w in zip(ids, words):
                    results[k][utt] = w
            seconds = time.time() - start
            for k in range(len(searches)):
                timing.search_seconds[k] += seconds
            continue
        for k, search in enumerate(searches):
            start = time.time()
            for utt, words in zip(ids, search_graph(scores, search)):
                results[k][utt] = words
            timing.search_seconds[k] += time.time() - start
    return results, timing


__all__ = ["DecodeTiming", "decode_store", "frame_batches"]
