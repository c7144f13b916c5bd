"""Kaldi-compatible fbank and MFCC via ``torchaudio.compliance.kaldi``."""

import torch
import torchaudio

from hybrid_asr.errors import ConfigError
from hybrid_asr.features.config import FeatureConfig
from hybrid_asr.features.level import normalize_level

DITHER_SEED = 0
"""Seed of the dither noise: features are a deterministic function of the audio."""


def num_frames(num_samples: int, config: FeatureConfig) -> int:
    """Frames Kaldi's framing (``snip_edges=True``) gives for ``num_samples`` samples."""
    length = int(config.sample_rate * config.frame_length_ms / 1000)
    shift = int(config.sample_rate * config.frame_shift_ms / 1000)
    return 0 if num_samples < length else 1 + (num_samples - length) // shift


def compute_features(waveform: torch.Tensor, config: FeatureConfig) -> torch.Tensor:
    """Compute features of one mono waveform.

    Args:
        waveform: float32 ``[num_samples]`` at ``config.sample_rate`` Hz, int16 range
            (as returned by :func:`hybrid_asr.features.load_audio`).
        config: front-end settings. With ``config.normalize_level``, the waveform is first
            scaled to the speech level ``config.level_dbfs``
            (:func:`hybrid_asr.features.level.normalize_level`). With ``config.dither`` > 0,
            Gaussian noise of that standard deviation (int16 units) is then added to every
            sample (Kaldi's dither), drawn from a generator seeded with :data:`DITHER_SEED`.

    Returns:
        float32 ``[T, F]``, one row per 10 ms frame (``frame_shift_ms``), ``F = config.dim``;
        log mel energies (natural log) for fbank, cepstra for MFCC.

    Raises:
        ValueError: the waveform is shorter than one analysis window.
        ConfigError: ``config`` describes speaker-adapted (``fmllr``) features, which audio alone
            does not give.
    """
    if config.kind == "fmllr":
        raise ConfigError("fmllr features are made by adapt-features from a feature store and a SAT GMM model, "
                          "not from audio: decode them with decode-dataset")
    if num_frames(waveform.numel(), config) == 0:
        raise ValueError(
            f"audio too short: {waveform.numel()} samples < one {config.frame_length_ms} ms window"
        )
    if config.normalize_level:
        waveform, _ = normalize_level(waveform, config.sample_rate, config.level_dbfs, config.level_max_gain_db)
    kwargs = dict(
        sample_frequency=config.sample_rate,
        frame_length=config.frame_length_ms,
        frame_shift=config.frame_shift_ms,
        dither=config.dither,
        num_mel_bins=config.num_mel_bins,
        energy_floor=0.0,
    )
    wave = waveform.unsqueeze(0)
    # dither draws from torch's global generator: seeded here (and the caller's state restored)
    # so that the same audio always gives the same features
    with torch.random.fork_rng(devices=[], enabled=config.dither != 0):
        if config.dither:
            torch.manual_seed(DITHER_SEED)
        if config.kind == "fbank":
            feats = torchaudio.compliance.kaldi.fbank(wave, **kwargs)
        else:
            feats = torchaudio.compliance.kaldi.mfcc(wave, num_ceps=config.num_ceps, **kwargs)
    if config.deltas:
        d1 = torchaudio.functional.compute_deltas(feats.t())
        d2 = torchaudio.functional.compute_deltas(d1)
        feats = torch.cat([feats, d1.t(), d2.t()], dim=1)
    return feats.to(torch.float32).contiguous()
