"""Acoustic scoring: the one place where model outputs become the scores the HMM graphs read.

``features [T, F] -> model log-posteriors log p(s|x) [T', S] -> minus log priors -> scaled
log-likelihoods -> padded [N, T', S + 1] for k2``. Alignment, dataset decoding, ``decode`` and
``align-audio`` all call these functions; this module sits above the models and the bundle and
below ``align`` and ``decoding``.
"""

import itertools
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple, Union

import torch

from hybrid_asr.errors import InputError
from hybrid_asr.features.audio import load_audio
from hybrid_asr.features.cmvn import CmvnStats
from hybrid_asr.features.extract import compute_features
from hybrid_asr.models.base import AcousticModel, pad_context

if TYPE_CHECKING:
    import k2

    from hybrid_asr.bundle import ModelBundle


def decode_chunk_frames(model: AcousticModel) -> int:
    """Output frames per chunk the model is scored in at decode time: 0 (whole utterance) for
    feed-forward models, whose chunked and whole outputs are identical; a recurrent model's
    ``decode_chunk_frames`` config field otherwise."""
    return int(getattr(model.config, "decode_chunk_frames", 0)) if model.recurrent else 0


@torch.no_grad()
def log_posteriors(model: AcousticModel, feats: torch.Tensor, chunk_frames: Optional[int] = None) -> torch.Tensor:
    """Senone log-posteriors of one utterance, frame-exact for any architecture.

    The utterance gets the model's left/right context by repeating its edge frames
    (:func:`~hybrid_asr.models.base.pad_context`). With ``chunk_frames`` N > 0 it is scored in
    chunks of N output frames, each given its own l/r context frames from the utterance (as in
    chunk training; Kaldi's ``frames-per-chunk`` with ``extra-left-context``); with 0 in one pass.

    Args:
        model: acoustic model (put in eval mode here).
        feats: CMVN-normalized features ``[T, F]`` float32, T >= 1.
        chunk_frames: output frames per chunk; default :func:`decode_chunk_frames`.

    Returns:
        float32 ``[ceil(T / f), S]`` log p(s | x) (log base e), on the CPU.
    """
    model.eval()
    tensor = next(itertools.chain(model.parameters(), model.buffers()), None)  # a GMM has buffers only
    device = tensor.device if tensor is not None else torch.device("cpu")
    l, r, f = model.left_context, model.right_context, model.subsampling_factor
    padded = pad_context(feats, l, r).to(device)
    t_out = model.output_frames(feats.shape[0])
    chunk = decode_chunk_frames(model) if chunk_frames is None else chunk_frames
    if chunk <= 0 or chunk >= t_out:
        out, _ = model(padded.unsqueeze(0), torch.tensor([padded.shape[0]]))
        return out[0, :t_out].float().cpu()
    pieces = []
    for start in range(0, t_out, chunk):
        n = min(chunk, t_out - start)
        window = padded[start * f : start * f + (n - 1) * f + 1 + l + r]
        out, _ = model(window.unsqueeze(0), torch.tensor([window.shape[0]]))
        pieces.append(out[0, :n])
    return torch.cat(pieces).float().cpu()


def log_likelihoods(model: AcousticModel, feats: torch.Tensor, log_priors: torch.Tensor,
                    chunk_frames: Optional[int] = None) -> torch.Tensor:
    """Pseudo log-likelihoods of one utterance: ``log p(s|x_t) - log p(s)`` (Bourlard & Morgan
    1994, the hybrid's scaled likelihood p(x|s) / p(x)), before acoustic scaling.

    Args:
        model: acoustic model.
        feats: CMVN-normalized features ``[T, F]`` float32.
        log_priors: ``[S]`` log p(s).
        chunk_frames: see :func:`log_posteriors`.

    Returns:
        float32 ``[ceil(T / f), S]``.
    """
    return log_posteriors(model, feats, chunk_frames) - log_priors


def audio_log_likelihoods(bundle: "ModelBundle", path: Union[str, Path], cmvn: Optional[str] = None,
                          offset: float = 0.0, duration: Optional[float] = None) -> torch.Tensor:
    """Pseudo log-likelihoods of an audio file (or of ``duration`` seconds of it from ``offset``
    seconds) of any rate and channel count: :func:`load_audio` then
    :func:`waveform_log_likelihoods`.

    Returns:
        float32 ``[T', S]`` as :func:`log_likelihoods`.

    Raises:
        InputError: the file cannot be read or is too short for one frame (names the file).
    """
    wave = load_audio(path, bundle.feature_config.sample_rate, offset, duration)
    return waveform_log_likelihoods(bundle, wave, cmvn, path)


def waveform_log_likelihoods(bundle: "ModelBundle", wave: torch.Tensor, cmvn: Optional[str] = None,
                             path: Union[str, Path] = "<waveform>") -> torch.Tensor:
    """Pseudo log-likelihoods of a mono waveform at the model's rate.

    It is turned into the model's features and normalized: with its own statistics
    (``cmvn="utterance"``) or the model's training statistics (``"global"``). The default is the
    model's mode, where ``"speaker"`` becomes ``"global"`` since a file on its own has no speaker
    statistics.

    Args:
        bundle: the model.
        wave: float32 ``[N]`` samples in the int16 range at ``bundle.feature_config.sample_rate`` Hz.
        cmvn: ``"utterance"`` or ``"global"``; None: the model's mode.
        path: named in errors.

    Returns:
        float32 ``[T', S]`` as :func:`log_likelihoods`.

    Raises:
        InputError: shorter than one analysis window (names ``path``).
    """
    return log_likelihoods(bundle.model, waveform_features(bundle, wave, cmvn, path), bundle.log_priors)


def waveform_features(bundle: "ModelBundle", wave: torch.Tensor, cmvn: Optional[str] = None,
                      path: Union[str, Path] = "<waveform>") -> torch.Tensor:
    """The model's normalized features of a mono waveform (arguments and errors as
    :func:`waveform_log_likelihoods`): float32 ``[T, F]``, 10 ms frames."""
    try:
        feats = compute_features(wave, bundle.feature_config)
    except ValueError as e:
        raise InputError(path, str(e)) from None
    mode = cmvn or bundle.feature_config.cmvn
    stats = CmvnStats.from_features(feats) if mode == "utterance" else bundle.cmvn
    return stats.apply(feats)


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


def dense_fsa_vec(scores: Sequence[torch.Tensor], scale: float,
                  device: Optional[torch.device] = None) -> Tuple["k2.DenseFsaVec", List[int]]:
    """k2's view of a batch of utterances' scores, longest first (``k2.intersect_dense`` needs
    that order; the pruned search accepts it).

    Args:
        scores: ``[T_i, S]`` float32 per utterance, in any order.
        scale: acoustic scale multiplying every score.
        device: where the scores go (the decoding graph's device); default the CPU. The
            segments stay on the CPU, as k2 requires.

    Returns:
        ``(dense, order)``: the DenseFsaVec (:func:`pad_scores`, int32 segments
        ``[k, 0, T]``) and ``order``, the utterance index of each of its sequences.
    """
    import k2

    order = sorted(range(len(scores)), key=lambda i: -scores[i].shape[0])
    padded = pad_scores([scores[i].cpu() for i in order], scale)
    if device is not None:
        padded = padded.to(device)
    segs = torch.tensor([[k, 0, scores[i].shape[0]] for k, i in enumerate(order)], dtype=torch.int32)
    return k2.DenseFsaVec(padded, segs), order


__all__ = ["audio_log_likelihoods", "decode_chunk_frames", "dense_fsa_vec", "log_likelihoods", "log_posteriors",
           "pad_scores", "waveform_features", "waveform_log_likelihoods"]
