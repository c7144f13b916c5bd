"""Training-data augmentation for recording conditions: silence and low-level noise around the
speech, additive noise at several SNRs, band-limiting to telephone bandwidth, level changes.

Applied to the waveform of a training copy before feature extraction, with a generator seeded by
the configuration's seed and the utterance id, so a copy is the same in every run and shard. The
copies are aligned like any training utterance (padding becomes silence frames of the alignment).
Sources: Ko et al. 2015 (speed perturbation, used beside this), Kim et al. 2017 ("Generation of
large-scale simulated utterances in virtual rooms", additive noise at random SNRs), and Kaldi's
practice of dither and mixed-bandwidth training; the noise here is synthetic (white), as no noise
corpus ships with the project.
"""

import re
import zlib
from dataclasses import dataclass

import numpy as np
import torch
import torchaudio

from hybrid_asr.bounds import bounded, check_bounds
from hybrid_asr.errors import ConfigError
from hybrid_asr.utils import JsonDataclass

COPY_SUFFIX = "_aug"
"""What the id of an utterance's augmented copy adds to its own, and the copy's speaker to its
speaker's (``compute-features --augment`` without speed perturbation)."""


def original_utterance_id(utt_id: str) -> str:
    """The utterance a training copy was made from: ``utt_id`` without a speed-perturbation
    suffix (lhotse's ``_sp<factor>``) or :data:`COPY_SUFFIX`; ``utt_id`` itself for an original."""
    return re.sub(rf"(_sp[0-9.]+|{COPY_SUFFIX})$", "", utt_id)


FULL_SCALE = 32768.0


@dataclass(frozen=True)
class AugmentConfig(JsonDataclass):
    """What :func:`augment_waveform` does to a training copy; each step is drawn independently.

    Attributes:
        seed: with the utterance id, seeds every random choice.
        pad_prob: probability of padding both ends with non-speech.
        pad_min_seconds, pad_max_seconds: length of each end's padding, uniform, seconds.
        pad_zero_prob: probability that the padding is digital silence rather than noise.
        pad_min_dbfs, pad_max_dbfs: RMS level of noise padding, uniform, dB relative to full scale.
        noise_prob: probability of white noise mixed over the whole copy.
        snr_min_db, snr_max_db: its signal-to-noise ratio (to the copy's RMS), uniform, dB.
        bandlimit_prob: probability of resampling to ``bandlimit_rate`` Hz and back (telephone band).
        bandlimit_rate: Hz.
        gain_prob: probability of a level change.
        gain_min_db, gain_max_db: the change, uniform, dB (clipped at full scale).
        gain_requantize: after a level change down, round the copy to 16 bits with TPDF dither
            of +-1 LSB, as a quiet 16-bit recording is (``sox in.wav out.wav vol 0.01``): at
            -40 dB its pauses become dither and its speech keeps 6-9 bits. Off by default.

    The defaults are the milder setting measured on AN4 (docs/robustness.md): no padding (decode-time
    trimming handles the silence around speech), noise at 15-30 dB SNR, 10% band-limited, level
    changes of -10 to +6 dB. On AN4 dev they nearly halve the 8 kHz errors and cut those at 20 and
    10 dB SNR by a fifth; the clean dev WER moves less than two seeds of the clean-trained model
    differ.
    """

    json_what = "augmentation config"

    seed: int = bounded(0, ge=0)
    pad_prob: float = bounded(0.0, ge=0, le=1)
    pad_min_seconds: float = bounded(0.2, ge=0)
    pad_max_seconds: float = bounded(1.5, ge=0)
    pad_zero_prob: float = bounded(0.3, ge=0, le=1)
    pad_min_dbfs: float = bounded(-80.0, le=0)
    pad_max_dbfs: float = bounded(-45.0, le=0)
    noise_prob: float = bounded(0.2, ge=0, le=1)
    snr_min_db: float = bounded(15.0)
    snr_max_db: float = bounded(30.0)
    bandlimit_prob: float = bounded(0.1, ge=0, le=1)
    bandlimit_rate: int = bounded(8000, ge=1000)
    gain_prob: float = bounded(0.2, ge=0, le=1)
    gain_min_db: float = bounded(-10.0)
    gain_max_db: float = bounded(6.0)
    gain_requantize: bool = False

    def __post_init__(self):
        check_bounds(self)
        for lo, hi in (("pad_min_seconds", "pad_max_seconds"), ("pad_min_dbfs", "pad_max_dbfs"),
                       ("snr_min_db", "snr_max_db"), ("gain_min_db", "gain_max_db")):
            if getattr(self, lo) > getattr(self, hi):
                raise ConfigError(f"{lo} must not exceed {hi}")


def augment_waveform(wave: torch.Tensor, sample_rate: int, config: AugmentConfig, key: str) -> torch.Tensor:
    """One augmented copy of a waveform.

    Order: band-limiting, additive noise, gain (with clipping), then padding (so the padding's
    level is absolute, as in a real recording's background).

    Args:
        wave: float32 ``[N]`` mono samples, int16 range.
        sample_rate: Hz.
        config: probabilities and ranges.
        key: the utterance id; with ``config.seed`` it determines every random choice.

    Returns:
        float32 ``[N']`` (``N' >= N``: padding adds samples), int16 range.
    """
    rng = np.random.default_rng([config.seed, zlib.crc32(key.encode("utf-8"))])
    x = wave.double()
    if rng.random() < config.bandlimit_prob and config.bandlimit_rate < sample_rate:
        low = torchaudio.functional.resample(x, sample_rate, config.bandlimit_rate)
        x = torchaudio.functional.resample(low, config.bandlimit_rate, sample_rate)[: wave.numel()]
    if rng.random() < config.noise_prob:
        rms = float(x.pow(2).mean().sqrt()) if x.numel() else 0.0
        snr = rng.uniform(config.snr_min_db, config.snr_max_db)
        x = x + torch.from_numpy(rng.normal(0.0, rms * 10 ** (-snr / 20), x.numel()))
    if rng.random() < config.gain_prob:
        gain_db = rng.uniform(config.gain_min_db, config.gain_max_db)
        x = x * 10 ** (gain_db / 20)
        if config.gain_requantize and gain_db < 0:
            tpdf = rng.uniform(-0.5, 0.5, x.numel()) + rng.uniform(-0.5, 0.5, x.numel())
            x = torch.round(x + torch.from_numpy(tpdf))
    x = x.clamp(-FULL_SCALE, FULL_SCALE - 1)
    if rng.random() < config.pad_prob:
        zero = rng.random() < config.pad_zero_prob
        level = FULL_SCALE * 10 ** (rng.uniform(config.pad_min_dbfs, config.pad_max_dbfs) / 20)
        ends = []
        for _ in range(2):
            n = int(rng.uniform(config.pad_min_seconds, config.pad_max_seconds) * sample_rate)
            ends.append(torch.zeros(n, dtype=x.dtype) if zero else torch.from_numpy(rng.normal(0.0, level, n)))
        x = torch.cat([ends[0], x, ends[1]])
    return x.to(torch.float32)


__all__ = ["AugmentConfig", "COPY_SUFFIX", "augment_waveform", "original_utterance_id"]
