"""The tree-building stage: monophone alignments + features -> decision-tree directory.

Writes ``tree.json`` (:class:`DecisionTree`), ``tree.txt`` (its readable dump), ``questions.txt``
(one question per line) and ``tree_info.json`` (contexts seen, leaves, senones, seconds).

The statistics can be accumulated in shards, as Kaldi's ``acc-tree-stats`` runs per job before
``sum-tree-stats``: with ``--num-shards K --shard-index i`` the stage only accumulates the
statistics of aligned utterances ``i, i + K, ...`` (alignment order) into ``tree_stats.npz`` and
``tree_stats.json`` (which alignments, which shard; written last), and ``build-tree --from-stats``
sums the K shard directories and builds the tree; ``--nj N`` does both on one machine. The sum
refuses shards of other alignments, another frame subsampling, or a set that is not exactly shards
``0..K-1`` of one split.
"""

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Dict, Optional, Sequence, Union

from hybrid_asr.bundle import file_sha256
from hybrid_asr.errors import HybridAsrError, InputError
from hybrid_asr.features.storage import FeatureStore
from hybrid_asr.hmm.alignment import load_alignment_dir, load_hmm_states
from hybrid_asr.hmm.questions import read_phone_classes
from hybrid_asr.hmm.tree import DecisionTree, TreeConfig, tree_from_stats
from hybrid_asr.hmm.tree_stats import (Context, GaussStats, accumulate_tree_stats, add_tree_stats, load_tree_stats,
                                       save_tree_stats)
from hybrid_asr.lang.lexicon import SIL, SPN
from hybrid_asr.stages.shards import Shard, local_jobs, remove_shard_dirs, run_local_shards, shard_dirs
from hybrid_asr.utils import write_text_atomic

log = logging.getLogger(__name__)


TREE_STATS = "tree_stats.npz"
TREE_STATS_INFO = "tree_stats.json"


def alignment_fingerprint(ali_dir: Union[str, Path]) -> str:
    """SHA-256 of the files tree statistics are accumulated from (``ali.npz``, ``phones.npz``
    and ``states.npz`` where present): shards of one accumulation share it. The SHA-256 of
    the lines ``name digest`` of the files present."""
    lines = [f"{name} {file_sha256(Path(ali_dir) / name)}\n" for name in ("ali.npz", "phones.npz", "states.npz")
             if (Path(ali_dir) / name).is_file()]
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def accumulate_stage(store: FeatureStore, ali_dir: Union[str, Path], frame_subsampling: int = 1,
                     shard: Shard = Shard()) -> Dict[Context, GaussStats]:
    """Triphone-state statistics of the aligned utterances of ``store`` in ``shard`` (dealt
    round robin in alignment order).

    Raises:
        InputError: a file of the alignment directory is missing or invalid.
        HybridAsrError: no aligned utterance is in the feature store.
    """
    _, marks, topo = load_alignment_dir(ali_dir)
    aligned = {u: a for u, a in load_hmm_states(ali_dir).items() if u in store}
    if not aligned:
        raise HybridAsrError(f"{ali_dir}: none of its utterances is in the feature store {store.path}")
    mine = shard.select(list(aligned))
    return accumulate_tree_stats({u: aligned[u] for u in mine}, marks, lambda u: store.normalized(u).numpy(), topo,
                                 frame_subsampling)


def write_tree_stats(store: FeatureStore, ali_dir: Union[str, Path], out_dir: Union[str, Path],
                     frame_subsampling: int, shard: Shard) -> None:
    """Accumulate one shard's statistics (:func:`accumulate_stage`) into ``out_dir``:
    ``tree_stats.npz`` and, last, ``tree_stats.json``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / TREE_STATS_INFO).unlink(missing_ok=True)  # incomplete until the new info is written
    stats = accumulate_stage(store, ali_dir, frame_subsampling, shard)
    save_tree_stats(out / TREE_STATS, stats)
    info = {"alignment": alignment_fingerprint(ali_dir), "ali_dir": str(Path(ali_dir).resolve()),
            "frame_subsampling_factor": frame_subsampling, "shard_index": shard.index, "num_shards": shard.count,
            "contexts": len(stats)}
    write_text_atomic(out / TREE_STATS_INFO, json.dumps(info, indent=2) + "\n")


def _accumulate_job(feats_dir: str, ali_dir: str, out_dir: str, frame_subsampling: int, shard: Shard) -> None:
    write_tree_stats(FeatureStore(feats_dir), ali_dir, out_dir, frame_subsampling, shard)


def summed_tree_stats(stats_dirs: Sequence[Union[str, Path]], ali_dir: Union[str, Path],
                      frame_subsampling: int) -> Dict[Context, GaussStats]:
    """The statistics of shard directories written by :func:`write_tree_stats`, summed.

    Raises:
        InputError: a directory is incomplete.
        HybridAsrError: a shard was accumulated from other alignments than ``ali_dir``'s, with
            another frame subsampling, or the directories are not shards ``0..K-1`` of one split,
            each once.
    """
    expected = alignment_fingerprint(ali_dir)
    seen, count = set(), None
    parts = []
    for d in map(Path, stats_dirs):
        f = d / TREE_STATS_INFO
        if not f.is_file():
            raise InputError(f, "missing: not a complete tree statistics shard (build-tree --num-shards)")
        info = json.loads(f.read_text())
        if info.get("alignment") != expected:
            raise HybridAsrError(f"{d}: tree statistics of other alignments ({info.get('ali_dir')}) than {ali_dir}")
        if info.get("frame_subsampling_factor") != frame_subsampling:
            raise HybridAsrError(f"{d}: statistics of every {info.get('frame_subsampling_factor')}th frame, the tree "
                                 f"asks for every {frame_subsampling}th (--frame-subsampling-factor)")
        if count is not None and info["num_shards"] != count or info["shard_index"] in seen:
            raise HybridAsrError(f"{d}: shard {info['shard_index']} of {info['num_shards']} does not fit the other "
                                 f"directories (shards of one split, each once)")
        count = info["num_shards"]
        seen.add(info["shard_index"])
        parts.append(load_tree_stats(d / TREE_STATS))
    if seen != set(range(count or 0)):
        raise HybridAsrError(f"tree statistics shards {sorted(set(range(count)) - seen)} of {count} are missing")
    return add_tree_stats(parts)


def build_tree_stage(store: FeatureStore, ali_dir: Union[str, Path], out_dir: Union[str, Path],
                     config: TreeConfig, classes: Optional[Union[str, Path]] = None, shard: Shard = Shard(),
                     nj: int = 1, stats_dirs: Sequence[Union[str, Path]] = ()) -> Optional[DecisionTree]:
    """Accumulate triphone-state statistics, make questions, build and save the tree.

    Args:
        store: training features (normalized with the store's CMVN mode).
        ali_dir: alignment directory (``ali.npz``, ``phones.npz``, ``topology.json``): monophone,
            or senone alignments with their HMM states (``states.npz``, as Kaldi builds a
            triphone system's tree from the previous triphone system's alignments).
        out_dir: directory to write.
        config: tree settings (leaf budget, thresholds).
        classes: optional hand-written phone class file added to the automatic questions.
        shard: with several shards, only accumulate this shard's statistics into ``out_dir``
            (:func:`write_tree_stats`) and build no tree.
        nj: accumulate in up to ``nj`` local processes (at most one per
            :data:`~hybrid_asr.stages.shards.MIN_UTTERANCES_PER_LIGHT_JOB` utterances), then sum
            and build.
        stats_dirs: build from these shard directories' summed statistics instead of
            accumulating (:func:`summed_tree_stats`).

    Returns:
        The tree (None for one shard of several).

    Raises:
        InputError: a file of the alignment directory is missing or invalid (a senone directory
            without ``states.npz``), or a statistics shard is incomplete.
        HybridAsrError: no aligned utterance is in the feature store; statistics shards that do
            not belong together.
    """
    start = time.time()
    ali_dir, out = Path(ali_dir), Path(out_dir)
    f = config.frame_subsampling_factor
    if shard.count > 1:
        write_tree_stats(store, ali_dir, out, f, shard)
        log.info("tree statistics of shard %d of %d -> %s", shard.index, shard.count, out)
        return None
    alis, _, topo = load_alignment_dir(ali_dir)
    nj = local_jobs(nj, len(alis))
    if stats_dirs:
        stats = summed_tree_stats(stats_dirs, ali_dir, f)
    elif nj > 1:
        dirs = shard_dirs(out, nj)
        run_local_shards(_accumulate_job, [(str(store.path), str(ali_dir), str(d), f, Shard(i, nj))
                                           for i, d in enumerate(dirs)], nj)
        stats = summed_tree_stats(dirs, ali_dir, f)
        remove_shard_dirs(out)
    else:
        stats = accumulate_stage(store, ali_dir, f)
    if not stats:
        raise HybridAsrError(f"{ali_dir}: no tree statistics (no aligned frames)")
    extra = read_phone_classes(classes, topo.phones) if classes is not None else []
    tree, questions = tree_from_stats(stats, topo, config, (SIL, SPN), extra)
    contexts = len(stats)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tree.json").unlink(missing_ok=True)  # incomplete until the new tree.json is written
    write_text_atomic(out / "questions.txt", "".join(" ".join(sorted(q)) + "\n" for q in questions))
    write_text_atomic(out / "tree.txt", tree.format())
    info = {"contexts": contexts, "questions": len(questions), "leaves": len(tree.leaf_pdf),
            "senones": tree.num_pdfs, "seconds": round(time.time() - start, 2), "config": config.__dict__}
    write_text_atomic(out / "tree_info.json", json.dumps(info, indent=2) + "\n")
    tree.save(out / "tree.json")  # last: marks a complete directory
    log.info("tree: %d contexts, %d questions, %d leaves, %d senones -> %s", contexts, len(questions),
             len(tree.leaf_pdf), tree.num_pdfs, out)
    return tree
