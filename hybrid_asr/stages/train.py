"""The training stage: alignment dir + features -> model bundle."""

import json
import logging
import time
from pathlib import Path
from typing import Optional, Tuple, Union

from hybrid_asr.bundle import MANIFEST, ModelBundle
from hybrid_asr.errors import InputError
from hybrid_asr.features.storage import FeatureStore
from hybrid_asr.hmm.alignment import Alignments
from hybrid_asr.hmm.topology import HmmTopology
from hybrid_asr.hmm.tree import DecisionTree
from hybrid_asr.models import ModelConfig, create_model
from hybrid_asr.training.chunks import ChunkData
from hybrid_asr.training.distributed import DistributedContext
from hybrid_asr.training.priors import estimate_log_priors
from hybrid_asr.training.trainer import (TrainConfig, seed_everything, split_utterances, train_model,
                                         utterance_seconds)

log = logging.getLogger(__name__)


def alignment_targets(ali_dir: Union[str, Path]) -> Tuple[HmmTopology, Optional[DecisionTree], int]:
    """What a model trained on an alignment directory predicts.

    Returns:
        ``(topology, decision tree or None, number of pdf-ids)``: the tree's senones when the
        directory holds senone alignments (``tree.json``), else the topology's monophone pdfs.

    Raises:
        InputError: ``topology.json`` or ``tree.json`` is missing or invalid.
    """
    ali_dir = Path(ali_dir)
    topo = HmmTopology.load(ali_dir / "topology.json")
    tree = DecisionTree.load(ali_dir / "tree.json") if (ali_dir / "tree.json").is_file() else None
    return topo, tree, tree.num_pdfs if tree is not None else topo.num_pdfs


def check_alignment_frames(alignments, store: FeatureStore, ali_dir: Union[str, Path]) -> None:
    """Check that every aligned utterance of ``store`` has as many frames as its features.

    Args:
        alignments: ``utt_id -> int [T]`` per-frame alignments of ``ali_dir``.

    Raises:
        InputError: an utterance's frame counts differ (names ``ali_dir/ali.npz``, the store and both counts).
    """
    for utt in alignments:
        if utt in store and len(alignments[utt]) != store.utterance(utt).frames:
            raise InputError(Path(ali_dir) / "ali.npz", f"utterance {utt} has {len(alignments[utt])} aligned frames, "
                             f"the feature store {store.path} {store.utterance(utt).frames}: the alignments were made "
                             "on other features")


def train_stage(
    store: FeatureStore,
    ali_dir: Union[str, Path],
    out_dir: Union[str, Path],
    model_config: ModelConfig,
    train_config: TrainConfig,
    resume: bool = False,
) -> ModelBundle:
    """Train an acoustic model on the alignments of ``ali_dir`` and save a model bundle in ``out_dir``.

    The senone priors are estimated from the same alignments, and the bundle carries the
    alignment directory's topology (with its re-estimated transition probabilities) and the
    global CMVN statistics of ``store``. Under ``torchrun`` every rank trains its shard and rank 0
    writes the bundle, its manifest ``bundle.json`` last, so a directory with ``bundle.json`` is
    complete.

    Args:
        store: training features.
        ali_dir: alignment directory (``ali.npz`` + ``topology.json``, and ``tree.json`` when the
            alignments are context-dependent senones).
        out_dir: model directory to write.
        model_config: architecture (any :data:`hybrid_asr.models.MODEL_TYPES`); ``num_pdfs`` must
            match :func:`alignment_targets`.
        train_config: optimization settings.
        resume: continue an interrupted run from its newest checkpoint in ``out_dir``.

    Returns:
        The trained bundle (also saved).

    Raises:
        InputError: a file of ``ali_dir`` is missing or invalid; ``num_pdfs`` does not match; the
            alignments were made on features of other frame counts than ``store``'s.
        TrainingDivergedError: the loss, gradients or weights became NaN or infinite
            (:func:`~hybrid_asr.training.trainer.train_model`); no ``bundle.json`` is written.
    """
    ali_dir, out = Path(ali_dir), Path(out_dir)
    dist = DistributedContext.from_environment(train_config.device)
    alignments = Alignments.load(ali_dir / "ali.npz")
    topo, tree, num_pdfs = alignment_targets(ali_dir)
    if model_config.num_pdfs != num_pdfs:
        raise InputError(ali_dir, f"alignments have {num_pdfs} pdfs, the model config {model_config.num_pdfs} outputs")
    check_alignment_frames(alignments, store, ali_dir)
    seed_everything(train_config.seed)
    model = create_model(model_config)
    train_ids, valid_ids = split_utterances([u for u in alignments if u in store], train_config.valid_fraction,
                                            train_config.seed, utterance_seconds(store),
                                            train_config.valid_max_seconds)
    chunk = train_config.chunk_frames or model.default_chunk_frames
    ctx = (model.left_context, model.right_context, chunk, model.subsampling_factor)
    train = ChunkData(store, alignments, train_ids, *ctx)
    valid = ChunkData(store, alignments, valid_ids, *ctx) if valid_ids else None
    log.info("training a %d-parameter %s (context -%d/+%d, subsampling %d) on %d frames in %d chunks of %d "
             "(%d frames held out), %d senones, %d process(es)", model.num_parameters(), model_config.type,
             model.left_context, model.right_context, model.subsampling_factor, train.num_frames, len(train), chunk,
             valid.num_frames if valid else 0, num_pdfs, dist.world_size)
    if dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / MANIFEST).unlink(missing_ok=True)  # an earlier model here is replaced: incomplete until saved
        train_config.save(out / "train_config.json")
    start = time.time()
    train_model(model, train, valid, train_config, out, resume=resume, dist=dist)
    log.info("training took %.1f s", time.time() - start)
    bundle = ModelBundle(model.eval(), store.config, store.global_cmvn,
                         estimate_log_priors(alignments.values(), num_pdfs), topo, tree)
    if dist.is_main:
        if store.config.kind == "fmllr":
            save_fmllr_frontend(store, tree, out)
        bundle.save(out)
    dist.barrier()
    return bundle


def save_fmllr_frontend(store: FeatureStore, tree: Optional[DecisionTree], out: Path) -> None:
    """Copy the SAT GMM that made an fMLLR store (its ``adapt_info.json``) into the model
    directory (:class:`~hybrid_asr.stages.fmllr.FmllrFrontend`), so that ``decode`` can adapt
    lone files; a warning instead when that model is gone or has another tree than the
    alignments (its first pass must search the model's graph)."""
    from hybrid_asr.stages.fmllr import FmllrFrontend

    info_file = store.path / "adapt_info.json"
    try:
        sat_dir = Path(json.loads(info_file.read_text())["model"])
        sat = ModelBundle.load(sat_dir)
    except (OSError, ValueError, KeyError, InputError) as e:
        log.warning("%s: no SAT model to copy (%s): 'decode' of lone files will refuse this model; "
                    "decode-dataset on adapt-features stores still works", info_file, str(e).splitlines()[0])
        return
    if tree is None or sat.tree is None or sat.tree.to_dict() != tree.to_dict():
        log.warning("%s has another tree than the alignments: 'decode' of lone files will refuse this model "
                    "(the SAT first pass must search its graph)", sat_dir)
        return
    FmllrFrontend.save(sat_dir, out)
    log.info("copied the SAT model %s into %s for the fMLLR of lone files", sat_dir, out)
