"""The GMM-HMM training stage: alignment + features -> a GMM model bundle.

A monophone alignment directory (a flat start) gives a monophone system as Kaldi's
``train_mono.sh``; a senone alignment directory (``convert-ali`` of a monophone alignment
through a tree from ``build-tree``, holding ``tree.json``) gives a triphone system on that tree as
``train_deltas.sh``; with :class:`~hybrid_asr.training.gmm.LdaMlltTrainConfig`, a senone alignment
gives an LDA+MLLT system on a new tree as ``train_lda_mllt.sh`` (the store then holds MFCC
without deltas; the model splices and transforms them itself); with
:class:`~hybrid_asr.training.gmm.SatTrainConfig` and the LDA+MLLT model that made the alignment, a
speaker-adaptively trained system as ``train_sat.sh``. A SAT model directory holds, beside the
adapted GMMs, ``si_model/`` (a complete bundle of the speaker-independent GMMs on the same tree, for
first decoding passes; Kaldi's ``final.alimdl``) and ``fmllr_train.npz`` (the training speakers'
transforms).

The bundle is an ordinary model directory (``model_config.json`` of type ``gmm``, zero priors),
so ``align``, ``make-graph``, ``decode-dataset`` and ``decode`` use it as they use a neural model.
Beside it: ``gmm_train_config.json`` and ``gmm_config.json`` (the settings), ``metrics.jsonl`` and
``metrics.png`` (log-likelihood and Gaussians per iteration).
"""

import json
import logging
import time
from pathlib import Path
from typing import Dict, Optional, Type, Union

import numpy as np

import torch

from hybrid_asr.bundle import MANIFEST, ModelBundle
from hybrid_asr.errors import ConfigError, InputError
from hybrid_asr.features.storage import FeatureStore
from hybrid_asr.gmm.diag_gmm import GmmConfig
from hybrid_asr.hmm.alignment import load_alignment_dir, load_hmm_states
from hybrid_asr.hmm.tree import DecisionTree, TreeConfig
from hybrid_asr.lang.lang_dir import Lang
from hybrid_asr.models.base import pad_context
from hybrid_asr.models.gmm import GmmAcousticModel
from hybrid_asr.training.gmm import (GmmTrainConfig, LdaMlltTrainConfig, SatTrainConfig, TriGmmTrainConfig, train_gmm,
                                     train_lda_mllt_gmm, train_sat_gmm, write_history)
from hybrid_asr.utils import write_text_atomic

log = logging.getLogger(__name__)


def train_config_class(ali_dir: Union[str, Path], lda_mllt: bool = False, sat: bool = False) -> Type[GmmTrainConfig]:
    """The training settings' class (and so defaults) for an alignment directory:
    :class:`SatTrainConfig` if ``sat``, :class:`LdaMlltTrainConfig` if ``lda_mllt``, else
    :class:`TriGmmTrainConfig` for senone alignments (with ``tree.json``), else
    :class:`GmmTrainConfig`."""
    if sat:
        return SatTrainConfig
    if lda_mllt:
        return LdaMlltTrainConfig
    return TriGmmTrainConfig if (Path(ali_dir) / "tree.json").is_file() else GmmTrainConfig


def train_gmm_stage(store: FeatureStore, lang: Lang, ali_dir: Union[str, Path], out_dir: Union[str, Path],
                    config: Optional[GmmTrainConfig] = None, gmm_config: GmmConfig = GmmConfig(),
                    tree_config: TreeConfig = TreeConfig(), si_model_dir: Optional[Union[str, Path]] = None) -> ModelBundle:
    """Train monophone or triphone GMMs (:func:`~hybrid_asr.training.gmm.train_gmm`) and save the
    bundle (with the tree for triphones).

    Args:
        store: training features, normalized with the store's CMVN mode (Kaldi's GMMs use MFCC
            with deltas and per-speaker CMVN: ``compute-features --kind mfcc --deltas
            --cmvn speaker``).
        lang: lang directory of the training graphs.
        ali_dir: an alignment directory made on ``store``'s frames: a monophone flat start
            (``align --flat-start``), or senone alignments with their tree (``convert-ali``).
        out_dir: model directory to write (``bundle.json`` last).
        config: iterations, realignment, Gaussians; an :class:`LdaMlltTrainConfig` trains an
            LDA+MLLT system; None: the defaults of :func:`train_config_class`.
        gmm_config: floors of the update and the mix-up.
        tree_config: the new tree of an LDA+MLLT or SAT system (leaves, thresholds).
        si_model_dir: with a :class:`SatTrainConfig`: the LDA+MLLT GMM model directory whose
            alignment ``ali_dir`` is (its feature transform and GMMs start the fMLLR transforms).

    Returns:
        The bundle (also saved).

    Raises:
        InputError: the alignment directory is incomplete (for LDA+MLLT and SAT: not a senone
            alignment with HMM states) or was made on other frames than ``store``'s; for SAT,
            ``si_model_dir`` is not an LDA+MLLT GMM model of the alignment's tree.
        ConfigError: SAT without ``si_model_dir``.
    """
    ali_dir, out = Path(ali_dir), Path(out_dir)
    alignments, marks, topo = load_alignment_dir(ali_dir)
    tree = DecisionTree.load(ali_dir / "tree.json") if (ali_dir / "tree.json").is_file() else None
    if config is None:
        config = train_config_class(ali_dir)()
    lda_mllt, sat = isinstance(config, LdaMlltTrainConfig), isinstance(config, SatTrainConfig)
    if (lda_mllt or sat) and tree is None:
        raise InputError(ali_dir, "LDA+MLLT and SAT training start from a triphone system's alignment (with tree.json)")
    si_bundle = _lda_mllt_bundle(si_model_dir, tree) if sat else None
    states = dict(load_hmm_states(ali_dir).items()) if tree is not None else None
    for u in alignments:
        if u in store and len(alignments[u]) != store.utterance(u).frames:
            raise InputError(ali_dir / "ali.npz", f"utterance {u} has {len(alignments[u])} aligned frames, the "
                             f"feature store {store.path} {store.utterance(u).frames}: made on other features")
    mode, cmvn = store.config.cmvn, store.global_cmvn
    utts = [(u.id, u.text, store.normalized(u.id, mode, cmvn)) for u in store.utterances]
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)  # an earlier model here is replaced: incomplete until saved
    config.save(out / "gmm_train_config.json")
    gmm_config.save(out / "gmm_config.json")
    if lda_mllt or sat:
        write_text_atomic(out / "tree_config.json", json.dumps(tree_config.__dict__, indent=2) + "\n")
    history = []

    def progress(record):
        history.append(record)
        write_history(history, out)

    start = time.time()
    if lda_mllt:
        result, transform, tree = train_lda_mllt_gmm(utts, dict(alignments.items()), states, dict(marks.items()),
                                                     lang, topo, config, gmm_config, tree_config, progress)
        model = GmmAcousticModel.from_gmms(result.gmms, transform, config.splice_context, store.config.dim)
    elif sat:
        si_model = si_bundle.model
        with torch.no_grad():
            si_utts = [(u, t, si_model.gmm_features(pad_context(x, si_model.left_context, si_model.right_context)[None])[0])
                       for u, t, x in utts]
        speakers = {u.id: u.speaker for u in store.utterances}
        result, si_gmms, tree = train_sat_gmm(si_utts, speakers, dict(alignments.items()), states, dict(marks.items()),
                                              lang, topo, si_model.gmms(), config, gmm_config, tree_config, progress)
        transform, context = si_model.transform.numpy(), si_model.config.splice_context
        model = GmmAcousticModel.from_gmms(result.gmms, transform, context, store.config.dim)
        si = ModelBundle(GmmAcousticModel.from_gmms(si_gmms, transform, context, store.config.dim).eval(), store.config,
                         cmvn, torch.zeros(si_gmms.num_pdfs), topo, tree)
        si.save(out / SI_MODEL)
        save_transforms(out / "fmllr_train.npz", result.fmllr)
    else:
        result = train_gmm(utts, dict(alignments.items()), lang, topo, config, gmm_config, progress, tree, states)
        model = GmmAcousticModel.from_gmms(result.gmms)
    gmms = result.gmms
    log.info("GMM training took %.1f s: %d pdfs, %d Gaussians", time.time() - start, gmms.num_pdfs,
             int(gmms.num_gauss.sum()))
    model.eval()
    bundle = ModelBundle(model, store.config, cmvn, torch.zeros(gmms.num_pdfs), topo, tree)
    bundle.save(out)
    return bundle


SI_MODEL = "si_model"
"""Subdirectory of a SAT model directory holding its speaker-independent bundle."""


def _lda_mllt_bundle(model_dir: Optional[Union[str, Path]], tree: DecisionTree) -> ModelBundle:
    if model_dir is None:
        raise ConfigError("SAT training needs the LDA+MLLT model that made the alignment")
    bundle = ModelBundle.load(model_dir)
    model = bundle.model
    if not isinstance(model, GmmAcousticModel) or model.transform is None:
        raise InputError(model_dir, "not an LDA+MLLT GMM model (train-gmm --lda-mllt)")
    if bundle.tree is None or bundle.tree.to_dict() != tree.to_dict():
        raise InputError(model_dir, "the alignment was not made with this model (another tree)")
    return bundle


def save_transforms(path: Union[str, Path], transforms: Dict[str, np.ndarray]) -> None:
    """Per-speaker affine transforms to one ``.npz`` (speaker ids as keys; atomic, no pickle)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **{k: np.asarray(v, dtype=np.float64) for k, v in transforms.items()})
    tmp.replace(path)


def load_transforms(path: Union[str, Path]) -> Dict[str, np.ndarray]:
    """The per-speaker transforms :func:`save_transforms` wrote (float64 ``[D, D + 1]`` each;
    no pickle).

    Raises:
        InputError: the file is missing or not such an archive.
    """
    from hybrid_asr.errors import InputError

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no fMLLR transforms here (align with a SAT model writes them)")
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: np.asarray(z[k], dtype=np.float64) for k in z.files}
    except (OSError, ValueError) as e:
        raise InputError(path, f"not an archive of fMLLR transforms ({e})") from None
    bad = [k for k, w in out.items() if w.ndim != 2 or w.shape[1] != w.shape[0] + 1 or not np.isfinite(w).all()]
    if bad:
        raise InputError(path, f"speaker {bad[0]!r}: not a finite [D, D + 1] transform")
    return out


def speaker_independent_dir(model_dir: Union[str, Path]) -> Optional[Path]:
    """The speaker-independent bundle of a SAT model directory, None for any other model."""
    si = Path(model_dir) / SI_MODEL
    return si if (si / MANIFEST).is_file() else None


__all__ = ["SI_MODEL", "save_transforms", "speaker_independent_dir", "train_config_class", "train_gmm_stage"]
