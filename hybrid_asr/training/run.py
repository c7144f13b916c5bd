"""The training stage: alignment dir + features -> model bundle."""

import logging
import time
from pathlib import Path
from typing import Optional, Tuple, Union

from hybrid_asr.align.alignments import Alignments
from hybrid_asr.bundle import ModelBundle
from hybrid_asr.features.storage import FeatureStore
from hybrid_asr.hmm.topology import HmmTopology
from hybrid_asr.hmm.tree import DecisionTree
from hybrid_asr.models.dnn import DnnAcousticModel, DnnConfig
from hybrid_asr.training.frames import FrameData
from hybrid_asr.training.priors import estimate_log_priors
from hybrid_asr.training.trainer import TrainConfig, seed_everything, split_utterances, train_model

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


def train_stage(
    store: FeatureStore,
    ali_dir: Union[str, Path],
    out_dir: Union[str, Path],
    model_config: DnnConfig,
    train_config: TrainConfig,
) -> ModelBundle:
    """Train a DNN on the alignments of ``ali_dir`` and save a model bundle in ``out_dir``.

    The senone priors are estimated from the same alignments, and the bundle carries the
    alignment directory's topology (with its re-estimated transition probabilities) and the
    global CMVN statistics of ``store``.

    Args:
        store: training features.
        ali_dir: alignment directory (``ali.npz`` + ``topology.json``, and ``tree.json`` when the
            alignments are context-dependent senones).
        out_dir: model directory to write.
        model_config: architecture; ``num_pdfs`` must match :func:`alignment_targets`.
        train_config: optimization settings.

    Returns:
        The trained bundle (also saved).
    """
    ali_dir, out = Path(ali_dir), Path(out_dir)
    alignments = Alignments.load(ali_dir / "ali.npz")
    topo, tree, num_pdfs = alignment_targets(ali_dir)
    if model_config.num_pdfs != num_pdfs:
        raise ValueError(f"model has {model_config.num_pdfs} outputs, alignments {num_pdfs} pdfs")
    seed_everything(train_config.seed)
    train_ids, valid_ids = split_utterances([u for u in alignments if u in store], train_config.valid_fraction,
                                            train_config.seed)
    ctx = (model_config.left_context, model_config.right_context)
    train = FrameData(store, alignments, train_ids, *ctx)
    valid = FrameData(store, alignments, valid_ids, *ctx) if valid_ids else None
    model = DnnAcousticModel(model_config)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("training %d-parameter DNN on %d frames (%d held out), %d senones", n_params, len(train),
             len(valid) if valid else 0, num_pdfs)
    out.mkdir(parents=True, exist_ok=True)
    train_config.save(out / "train_config.json")
    start = time.time()
    train_model(model, train, valid, train_config, out)
    log.info("training took %.1f s", time.time() - start)
    bundle = ModelBundle(model.eval(), store.config, store.global_cmvn,
                         estimate_log_priors(alignments.values(), num_pdfs), topo, tree)
    bundle.save(out)
    return bundle
