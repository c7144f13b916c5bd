"""Recording level: frame energies, the level of the speech in a piece of audio, and its
normalization to a fixed level before the features are computed.

Why normalize: per-utterance CMVN removes a constant gain from log filterbank and cepstral
features, but per-speaker or global CMVN (and the GMM and fMLLR transforms estimated on top of
them) do not. A recording 30 dB quieter than the training data then shifts every frame's energy
terms by 30 dB: on AN4 test the fMLLR recipe's model, trained and decoding without this, went from
7.76% WER to 49.94% (-30 dB) and 77.75% (-40 dB) with ``--no-trim``, although the same quiet files
multiplied back to level gave 7.76% and 12.68% (trimmed; docs/robustness.md). Scaling every piece
of audio, in training and in decoding alike, so that its speech sits at one level takes the
recording level out of the features.

The speech level of a piece is the :data:`SPEECH_PERCENTILE` (95th) percentile of its 10 ms frame
energies (:func:`frame_energies_db`): the level of its loud frames, which are speech in any piece
that is more than a few percent speech (a trimmed piece, a training segment), unaffected by how
much silence surrounds the speech, and measured relative to the piece itself only, so a quiet
recording is measured like a loud one. This is the idea of an active speech level (ITU-T P.56,
which averages over the frames above a threshold set relative to the signal itself) in its
simplest form. ITU-R BS.1770 loudness (``torchaudio.functional.loudness``) is not used: its
absolute gate at -70 LKFS discards every block of speech recorded 40 dB below a normal level, and
its 400 ms blocks are longer than some spoken digits.
"""

import math
from typing import Tuple

import numpy as np
import torch

FULL_SCALE_DB = 20 * math.log10(32768.0)
"""dB of a full-scale square wave in int16 units: dBFS = dB(int16 units) - this (90.31)."""

SPEECH_PERCENTILE = 95.0
"""The percentile of a piece's 10 ms frame energies taken as its speech level."""


def frame_energies_db(wave: torch.Tensor, sample_rate: int, frame_seconds: float = 0.01) -> np.ndarray:
    """Energy of consecutive non-overlapping frames in dB relative to a full-scale square wave.

    Args:
        wave: float32 ``[N]`` samples in the int16 range (as :func:`hybrid_asr.features.load_audio`).
        sample_rate: Hz.
        frame_seconds: frame length, seconds; a last partial frame is dropped.

    Returns:
        float64 ``[N // hop]``: ``10 log10((mean square + 1) / 32768^2)``, each frame's DC offset
        removed first; digital silence is -90.3 dB.
    """
    hop = max(1, int(round(frame_seconds * sample_rate)))
    n = wave.numel() // hop
    x = wave[: n * hop].double().reshape(n, hop) if n else wave.new_zeros((0, hop)).double()
    x = x - x.mean(dim=1, keepdim=True)  # a DC offset is not energy
    return (10 * torch.log10((x * x).mean(dim=1) + 1.0) - FULL_SCALE_DB).numpy()


def speech_level_dbfs(wave: torch.Tensor, sample_rate: int, percentile: float = SPEECH_PERCENTILE) -> float:
    """The level of the speech in a piece of audio: the ``percentile`` of its 10 ms frame
    energies (:func:`frame_energies_db`), dBFS.

    Args:
        wave: float32 ``[N]`` samples in the int16 range.
        sample_rate: Hz.
        percentile: in [0, 100].

    Returns:
        dBFS; -90.3 for digital silence or a piece shorter than one frame.
    """
    energy = frame_energies_db(wave, sample_rate)
    return float(np.percentile(energy, percentile)) if energy.size else -FULL_SCALE_DB


def normalize_level(wave: torch.Tensor, sample_rate: int, target_dbfs: float, max_gain_db: float,
                    percentile: float = SPEECH_PERCENTILE) -> Tuple[torch.Tensor, float]:
    """Scale a piece of audio so that its speech level (:func:`speech_level_dbfs`) is
    ``target_dbfs``.

    Args:
        wave: float32 ``[N]`` samples in the int16 range.
        sample_rate: Hz.
        target_dbfs: the level wanted, dBFS.
        max_gain_db: the gain applied is at most this many dB either way (digital silence or a
            piece of faint noise is not raised to speech level).
        percentile: see :func:`speech_level_dbfs`.

    Returns:
        ``(scaled, gain_db)``: float32 ``[N]`` (not clipped: features are computed from floats,
        so a peak beyond the int16 range costs nothing) and the gain applied, dB.
    """
    gain_db = target_dbfs - speech_level_dbfs(wave, sample_rate, percentile)
    gain_db = max(-max_gain_db, min(max_gain_db, gain_db))
    return (wave * (10.0 ** (gain_db / 20.0))).to(torch.float32), gain_db


__all__ = ["FULL_SCALE_DB", "SPEECH_PERCENTILE", "frame_energies_db", "normalize_level", "speech_level_dbfs"]
