"""The GMM-HMM training stage: flat-start alignment + features -> a GMM model bundle.

The bundle is an ordinary model directory (``model_config.json`` of type ``gmm``, zero priors),
so ``align``, ``make-graph``, ``decode-dataset`` and ``decode`` use it as they use a neural model.
Beside it: ``gmm_train_config.json`` and ``gmm_config.json`` (the settings), ``metrics.jsonl`` and
``metrics.png`` (log-likelihood and Gaussians per iteration).
"""

import logging
import time
from pathlib import Path
from typing import Union

import torch

from hybrid_asr.bundle import MANIFEST, ModelBundle
from hybrid_asr.errors import InputError
from hybrid_asr.features.storage import FeatureStore
from hybrid_asr.gmm.diag_gmm import GmmConfig
from hybrid_asr.hmm.alignment import load_alignment_dir
from hybrid_asr.lang.lang_dir import Lang
from hybrid_asr.models.gmm import GmmAcousticModel
from hybrid_asr.training.gmm import GmmTrainConfig, train_mono_gmm, write_history

log = logging.getLogger(__name__)


def train_gmm_stage(store: FeatureStore, lang: Lang, ali_dir: Union[str, Path], out_dir: Union[str, Path],
                    config: GmmTrainConfig = GmmTrainConfig(), gmm_config: GmmConfig = GmmConfig()) -> ModelBundle:
    """Train monophone GMMs (:func:`~hybrid_asr.training.gmm.train_mono_gmm`) and save the bundle.

    Args:
        store: training features, normalized with the store's CMVN mode (Kaldi's GMMs use MFCC
            with deltas and per-speaker CMVN: ``compute-features --kind mfcc --deltas
            --cmvn speaker``).
        lang: lang directory of the training graphs.
        ali_dir: a monophone flat-start alignment directory (``align --flat-start``) made on
            ``store``'s frames.
        out_dir: model directory to write (``bundle.json`` last).
        config: iterations, realignment, Gaussians.
        gmm_config: floors of the update and the mix-up.

    Returns:
        The bundle (also saved).

    Raises:
        InputError: the alignment directory is incomplete, holds senone alignments, or was made on
            other frames than ``store``'s.
    """
    ali_dir, out = Path(ali_dir), Path(out_dir)
    alignments, _, topo = load_alignment_dir(ali_dir)
    if (ali_dir / "tree.json").is_file():
        raise InputError(ali_dir, "holds senone alignments: train-gmm starts from monophone (flat-start) alignments")
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
    history = []

    def progress(record):
        history.append(record)
        write_history(history, out)

    start = time.time()
    gmms, _, _ = train_mono_gmm(utts, dict(alignments.items()), lang, topo, config, gmm_config,
                                on_iteration=progress)
    log.info("GMM training took %.1f s: %d pdfs, %d Gaussians", time.time() - start, gmms.num_pdfs,
             int(gmms.num_gauss.sum()))
    model = GmmAcousticModel.from_gmms(gmms).eval()
    bundle = ModelBundle(model, store.config, cmvn, torch.zeros(gmms.num_pdfs), topo, None)
    bundle.save(out)
    return bundle


__all__ = ["train_gmm_stage"]
