"""Energy-based trimming of the silence (or steady low-level noise) around speech before decoding.

Per-utterance CMVN over a file that is mostly silence normalizes the speech with the statistics of
the silence, and frames far quieter than any training silence (digital zeros, +-1 LSB) are scored
as words: on AN4 test, 2 s of digital silence around each file took WER from 7.8% to 97%
(``benchmarks/conditions.py``). Trimming the ends of a piece of audio to its speech plus a margin
gives the model what it was trained on: speech with some of the recording's own background.

Speech is found with a two-sided energy threshold, in the spirit of Kaldi's ``compute-vad``
(energy above a level relative to the utterance): a 10 ms frame is loud when its energy is above
both ``peak - edge_below_peak_db`` and ``floor + above_floor_db``. Both levels are measured on
the frames at or above ``dead_dbfs``, so that digital silence around a recording does not move
them: the floor is their ``floor_percentile``, the peak the ``peak_percentile`` of those above
``floor + above_floor_db``; speech starts at the first window of
``window_frames`` frames with at least ``min_loud_frames`` loud ones, and ends at the last. The
edge threshold is strict (15 dB below the peak, chosen on AN4 dev: steady noise louder than the
recording's own background, e.g. -50 dBFS around AN4 speech, is then not taken for speech); a
piece where no window passes it (a short word of wide dynamics) is measured again against
``peak - below_peak_db``, and only a piece where none passes that either has no speech. The
margin never keeps frames quieter than ``dead_dbfs`` at its outer ends: such frames (digital
silence, dither, +-1 LSB) are quieter than any microphone's background, and a model trained on
real recordings reads them as words.
"""

import logging
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrimConfig:
    """Settings of :func:`speech_bounds`.

    Attributes:
        margin_seconds: audio kept before the first and after the last speech frame, seconds.
        edge_below_peak_db: frames that can start or end the speech are at most this many dB
            below the peak level.
        below_peak_db: the same for pieces where no window passes the edge threshold.
        above_floor_db: loud frames are at least this many dB above the floor level.
        peak_percentile: percentile of frame energies taken as the peak level.
        floor_percentile: percentile of frame energies taken as the floor (background) level.
        dead_dbfs: frames below this level (dB relative to full scale) are not kept as margin.
        window_frames: length of the window that decides where speech starts and ends, frames.
        min_loud_frames: loud frames a window needs to count as speech (isolated clicks do not).
        frame_seconds: frame length and shift of the energy analysis, seconds.
    """

    margin_seconds: float = 0.2
    edge_below_peak_db: float = 15.0
    below_peak_db: float = 35.0
    above_floor_db: float = 10.0
    peak_percentile: float = 98.0
    floor_percentile: float = 10.0
    dead_dbfs: float = -80.0
    window_frames: int = 10
    min_loud_frames: int = 8
    frame_seconds: float = 0.01

    def __post_init__(self):
        if self.margin_seconds < 0 or self.frame_seconds <= 0:
            raise ValueError("margin_seconds must be >= 0 and frame_seconds > 0")
        if not 0 < self.min_loud_frames <= self.window_frames:
            raise ValueError("min_loud_frames must be in [1, window_frames]")


def frame_energies_db(wave: torch.Tensor, sample_rate: int, frame_seconds: float = 0.01) -> np.ndarray:
    """Energy of consecutive non-overlapping frames in dB relative to a full-scale square wave.

    Args:
        wave: float32 ``[N]`` samples in the int16 range (as :func:`hybrid_asr.features.load_audio`).
        sample_rate: Hz.
        frame_seconds: frame length, seconds; a last partial frame is dropped.

    Returns:
        float64 ``[N // hop]``: ``10 log10((mean square + 1) / 32768^2)``; digital silence is -90.3 dB.
    """
    hop = max(1, int(round(frame_seconds * sample_rate)))
    n = wave.numel() // hop
    x = wave[: n * hop].double().reshape(n, hop) if n else wave.new_zeros((0, hop)).double()
    x = x - x.mean(dim=1, keepdim=True)  # a DC offset is not energy
    return (10 * torch.log10((x * x).mean(dim=1) + 1.0) - 20 * np.log10(32768.0)).numpy()


def speech_bounds(wave: torch.Tensor, sample_rate: int, config: TrimConfig = TrimConfig()) -> Optional[Tuple[int, int]]:
    """The stretch of ``wave`` to decode: its speech plus ``config.margin_seconds`` on each side.

    Args:
        wave: float32 ``[N]`` mono samples, int16 range.
        sample_rate: Hz.
        config: thresholds and margin.

    Returns:
        ``(first, end)`` sample indices (``wave[first:end]``); the whole wave when it is shorter
        than one window; None when no frame window is loud enough (silence or steady noise only)
        or the audio is digital silence (fewer than ``min_loud_frames`` frames at or above
        ``dead_dbfs``).
    """
    energy = frame_energies_db(wave, sample_rate, config.frame_seconds)
    if len(energy) < config.window_frames:
        return 0, wave.numel()
    live = energy[energy >= config.dead_dbfs]  # levels of the recording, not of digital silence around it
    if len(live) < config.min_loud_frames:
        return None
    floor = np.percentile(live, config.floor_percentile)
    active = live[live > floor + config.above_floor_db]
    peak = np.percentile(active if len(active) else live, config.peak_percentile)
    for below in (config.edge_below_peak_db, config.below_peak_db):
        loud = (energy > max(peak - below, floor + config.above_floor_db)).astype(np.float64)
        counts = np.convolve(loud, np.ones(config.window_frames), mode="valid")
        windows = np.nonzero(counts >= config.min_loud_frames)[0]
        if len(windows):
            break
    else:
        return None
    hop = int(round(config.frame_seconds * sample_rate))
    margin = int(round(config.margin_seconds / config.frame_seconds))
    speech_first, speech_end = int(windows[0]), int(windows[-1]) + config.window_frames
    first, end = max(0, speech_first - margin), min(len(energy), speech_end + margin)
    while first < speech_first and energy[first] < config.dead_dbfs:
        first += 1
    while end > speech_end and energy[end - 1] < config.dead_dbfs:
        end -= 1
    return first * hop, wave.numel() if end == len(energy) else end * hop


__all__ = ["TrimConfig", "frame_energies_db", "speech_bounds"]
