"""Scaled log-likelihoods from the acoustic model: log p(s|x) - log p(s)."""

from pathlib import Path
from typing import TYPE_CHECKING, List, Optional, Union

import torch

from hybrid_asr.errors import InputError
from hybrid_asr.features.audio import load_audio
from hybrid_asr.features.cmvn import CmvnStats
from hybrid_asr.features.extract import compute_features
from hybrid_asr.features.splice import splice
from hybrid_asr.models.dnn import DnnAcousticModel

if TYPE_CHECKING:
    from hybrid_asr.bundle import ModelBundle


@torch.no_grad()
def log_likelihoods(model: DnnAcousticModel, feats: torch.Tensor, log_priors: torch.Tensor) -> torch.Tensor:
    """Pseudo log-likelihoods of one utterance.

    Args:
        model: acoustic model (put in eval mode here).
        feats: CMVN-normalized features ``[T, F]`` float32.
        log_priors: ``[S]`` log p(s).

    Returns:
        float32 ``[T, S]``: ``log p(s|x_t) - log p(s)`` (log base e), before acoustic scaling.
    """
    model.eval()
    cfg = model.config
    x = splice(feats, cfg.left_context, cfg.right_context)
    return model(x) - log_priors


def audio_log_likelihoods(bundle: "ModelBundle", path: Union[str, Path], cmvn: Optional[str] = None) -> torch.Tensor:
    """Pseudo log-likelihoods of an audio file of any rate and channel count.

    The file is downmixed, resampled to the model's rate, turned into the model's features and
    normalized: with its own statistics (``cmvn="utterance"``) or the model's training statistics
    (``"global"``). The default is the model's mode, where ``"speaker"`` becomes ``"global"``
    since a file on its own has no speaker statistics.

    Returns:
        float32 ``[T, S]`` as :func:`log_likelihoods`.

    Raises:
        InputError: the file cannot be read or is too short for one frame (names the file).
    """
    try:
        feats = compute_features(load_audio(path, bundle.feature_config.sample_rate), bundle.feature_config)
    except ValueError as e:
        raise InputError(path, str(e)) from None
    mode = cmvn or bundle.feature_config.cmvn
    stats = CmvnStats.from_features(feats) if mode == "utterance" else bundle.cmvn
    return log_likelihoods(bundle.model, stats.apply(feats), bundle.log_priors)


def pad_scores(scores: List[torch.Tensor], scale: float) -> torch.Tensor:
    """Stack per-utterance scores for ``k2.DenseFsaVec``.

    Graph label ``l`` = pdf-id + 1 reads column ``l``; column 0 is never read by our
    epsilon-free graphs and is filled with -1e4.

    Args:
        scores: ``[T_i, S]`` per utterance.
        scale: acoustic scale multiplying every score.

    Returns:
        float32 ``[N, max T_i, S + 1]``, padding rows -1e4.
    """
    num_pdfs = scores[0].shape[1]
    out = torch.full((len(scores), max(s.shape[0] for s in scores), num_pdfs + 1), -1e4)
    for i, s in enumerate(scores):
        out[i, : s.shape[0], 1:] = s * scale
    return out
