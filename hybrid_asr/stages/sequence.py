"""The sequence-training stage: a cross-entropy model dir + features + lang + alignments -> a
(LF-)MMI fine-tuned model dir (:mod:`hybrid_asr.training.sequence`)."""

import copy
import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Union

from hybrid_asr.bundle import MANIFEST, ModelBundle, load_graph
from hybrid_asr.errors import InputError
from hybrid_asr.features.storage import FeatureStore
from hybrid_asr.graph.denominator import add_leaky_hmm, as_acceptor, graph_size, make_lfmmi_denominator
from hybrid_asr.graph.training import TrainingGraphCompiler
from hybrid_asr.hmm.alignment import load_alignment_dir
from hybrid_asr.lang.lang_dir import Lang
from hybrid_asr.lang.phone_lm import PhoneLm, PhoneLmConfig, phone_sequences
from hybrid_asr.stages.train import alignment_targets, check_alignment_frames, save_fmllr_frontend
from hybrid_asr.training.distributed import DistributedContext
from hybrid_asr.training.sequence import MmiObjective, SequenceConfig, UtteranceData
from hybrid_asr.training.trainer import (TrainConfig, seed_everything, split_utterances, train_model,
                                         utterance_seconds)
from hybrid_asr.utils import write_text_atomic

log = logging.getLogger(__name__)

#: The optimization defaults of sequence training (overriding :class:`TrainConfig`'s, which are
#: for cross-entropy from scratch): a few epochs at a small learning rate from the CE model, as
#: Vesely et al. 2013 and Kaldi's ``nnet3/train_discriminative.py``; ``batch_size`` counts output
#: frames of whole utterances per step. Tuned on the AN4 dev set (docs/sequence.md).
SEQUENCE_TRAIN_DEFAULTS = {"epochs": 2, "lr": 5e-5, "final_lr": 1e-5, "batch_size": 3000, "final_model": "last"}


def sequence_train_config(**overrides) -> TrainConfig:
    """The :class:`TrainConfig` of sequence training: :data:`SEQUENCE_TRAIN_DEFAULTS` and then
    ``overrides`` (command-line options)."""
    return TrainConfig(**{**SEQUENCE_TRAIN_DEFAULTS, **overrides})


def denominator_graph(bundle: ModelBundle, model_dir: Path, marks, config: SequenceConfig):
    """The denominator of ``config.criterion`` and the acoustic scale to train at.

    Returns:
        ``(graph, kappa, info)``: info says what the graph is (for ``sequence.json``).
    """
    if config.criterion == "lfmmi":
        lm_config = PhoneLmConfig(order=config.phone_lm_order, full_order=min(config.phone_lm_order, 3),
                                  max_extra_states=config.phone_lm_extra_states)
        lm = PhoneLm(phone_sequences(marks), bundle.topology.phone_ids, lm_config)
        phone_lm = lm.to_fsa()
        den = add_leaky_hmm(make_lfmmi_denominator(bundle.make_h(), phone_lm), config.leaky_hmm)
        info = {"denominator": f"H o phone {config.phone_lm_order}-gram", "phone_lm_states": int(phone_lm.shape[0]),
                "phone_lm_arcs": int(phone_lm.num_arcs)}
        kappa = config.acoustic_scale or 1.0
    else:
        graph, _, search = load_graph(model_dir, bundle)
        den = as_acceptor(graph)
        info = {"denominator": f"the model's decoding graph ({bundle.graph_file})"}
        kappa = config.acoustic_scale or search.normalized().acoustic_scale  # the graph's weights at scale 1
    states, arcs = graph_size(den)
    info.update(den_states=states, den_arcs=arcs, acoustic_scale=kappa)
    return den, kappa, info


def sequence_train_stage(
    model_dir: Union[str, Path],
    store: FeatureStore,
    lang_dir: Union[str, Path],
    ali_dir: Union[str, Path],
    out_dir: Union[str, Path],
    config: SequenceConfig = SequenceConfig(),
    train_config: TrainConfig = None,
    resume: bool = False,
) -> ModelBundle:
    """Fine-tune a cross-entropy model with (LF-)MMI and save it as a new model dir.

    The new directory has the CE model's front end, CMVN statistics, priors, topology and tree;
    only the weights change. ``sequence_config.json`` and ``train_config.json`` hold the
    settings, ``sequence.json`` the denominator's size and the acoustic scale, and the trainer's
    checkpoints and metrics are beside them; ``bundle.json`` is written last. Run ``make-graph``
    on it before decoding.

    Args:
        model_dir: the CE model (with its decoding graph for ``criterion="mmi"``).
        store: training features (the model's front end).
        lang_dir: the lang dir of the model (L and words for the numerator graphs).
        ali_dir: alignments of ``store`` with the model's pdfs (cross-entropy targets, the
            phone LM of ``lfmmi``, the held-out split).
        out_dir: model directory to write.
        config: criterion, denominator, regularization.
        train_config: optimization (default :func:`sequence_train_config`).
        resume: continue an interrupted run from its newest checkpoint.

    Returns:
        The fine-tuned bundle (also saved).

    Raises:
        InputError: the parts do not belong together (lang dir, features, alignments against the
            model), or a file is missing.
        TrainingDivergedError: the loss, gradients or weights became NaN or infinite
            (:func:`~hybrid_asr.training.trainer.train_model`); no ``bundle.json`` is written.
    """
    model_dir, out = Path(model_dir), Path(out_dir)
    train_config = train_config or sequence_train_config()
    dist = DistributedContext.from_environment(train_config.device)
    bundle = ModelBundle.load(model_dir)
    lang = Lang(lang_dir)
    bundle.check_lang(model_dir, lang_dir, lang.phone_pairs)
    bundle.check_features(model_dir, store.path, store.config)
    alignments, marks, _ = load_alignment_dir(ali_dir)
    _, _, num_pdfs = alignment_targets(ali_dir)
    if num_pdfs != bundle.num_pdfs:
        raise InputError(Path(ali_dir) / "ali.npz", f"alignments have {num_pdfs} pdfs, model {model_dir} "
                         f"{bundle.num_pdfs}: align with the model first")
    check_alignment_frames(alignments, store, ali_dir)
    seed_everything(train_config.seed)
    model = copy.deepcopy(bundle.model)
    train_ids, valid_ids = split_utterances([u for u in alignments if u in store], train_config.valid_fraction,
                                            train_config.seed, utterance_seconds(store),
                                            train_config.valid_max_seconds)
    den, kappa, info = denominator_graph(bundle, model_dir, [marks[u] for u in train_ids], config)
    ctx = (model.left_context, model.right_context, model.subsampling_factor, train_config.batch_size)
    train = UtteranceData(store, alignments, train_ids, *ctx)
    valid = UtteranceData(store, alignments, valid_ids, *ctx) if valid_ids else None
    objective = MmiObjective(TrainingGraphCompiler(lang, bundle.topology, bundle.make_h()), den, bundle.log_priors,
                             kappa, config)
    log.info("%s training of %s: denominator %s (%d states, %d arcs), acoustic scale %g, %d frames in %d "
             "minibatches (%d frames held out)", config.criterion, model_dir, info["denominator"], info["den_states"],
             info["den_arcs"], kappa, train.num_frames, len(train), valid.num_frames if valid else 0)
    if dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / MANIFEST).unlink(missing_ok=True)  # an earlier model here is replaced: incomplete until saved
        train_config.save(out / "train_config.json")
        config.save(out / "sequence_config.json")
    start = time.time()
    train_model(model, train, valid, train_config, out, resume=resume, dist=dist, objective=objective)
    info.update(seconds=round(time.time() - start, 1), initial_model=str(model_dir),
                skipped_utterances=objective.skipped)
    log.info("sequence training took %.1f s (%d utterance passes left out: no numerator or denominator path)",
             info["seconds"], objective.skipped)
    tuned = replace(bundle, model=model.eval())
    if dist.is_main:
        write_text_atomic(out / "sequence.json", json.dumps(info, indent=2) + "\n")
        if store.config.kind == "fmllr":  # `decode` of lone files needs the SAT GMM, as the CE model did
            save_fmllr_frontend(store, bundle.tree, out)
        tuned.save(out)
    dist.barrier()
    return tuned


__all__ = ["SEQUENCE_TRAIN_DEFAULTS", "denominator_graph", "sequence_train_config", "sequence_train_stage"]
