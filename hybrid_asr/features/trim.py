"""Energy-based trimming of the silence (or steady low-level noise) around speech before decoding.

Per-utterance CMVN over a file that is mostly silence normalizes the speech with the statistics of
the silence, and frames far quieter than any training silence (digital zeros, +-1 LSB) are scored
as words: on AN4 test, 2 s of digital silence around each file took WER from 7.8% to 97%
(``benchmarks/conditions.py``). Trimming the ends of a piece of audio to its speech plus a margin
gives the model what it was trained on: speech with some of the recording's own background.

The trimmer must never remove speech, at any recording level. Every threshold is relative to
levels measured in the piece itself (dB of 10 ms frames), in three steps, in the spirit of the
double-threshold endpoint detectors (Lamel, Rabiner, Rosenberg & Wilpon 1981, "An improved
endpoint detector for isolated word recognition", IEEE Trans. ASSP 29(4)) and of Kaldi's
``compute-vad`` (energy relative to the utterance's own):

1. *Core.* The floor is the ``floor_percentile`` of all frame energies, the peak the
   ``peak_percentile`` of the frames above ``floor + above_floor_db``. A frame is loud when it
   is above both ``peak - edge_below_peak_db`` and ``floor + above_floor_db``; the core runs from
   the first window of ``window_frames`` frames with ``min_loud_frames`` loud ones to the last.
   The strict 15 dB keeps steady noise louder than the recording's own background (e.g. -50 dBFS
   around AN4 speech) out of the core. A piece where no window passes is measured again against
   ``peak - below_peak_db``; a piece where none passes that either has no speech.
2. *Extension.* Weak sounds at the edges of the speech (fricatives, breathy onsets, released
   stops) are far below the peak. From each end of the core the speech is extended outwards over
   every frame above ``max(peak - below_peak_db, background + extend_above_background_db)``,
   across dips of fewer than ``extend_gap_frames`` frames, where ``background`` is the
   ``floor_percentile`` of the frames beyond that end of the core: the level the speech must
   stand out from on that side (the recording's background, padding noise, or digital silence).
3. *Margin.* ``margin_seconds`` are kept beyond the extended speech, except, at the margin's
   outer ends, digital silence (below ``digital_silence_dbfs``: every sample equal, or nearly),
   whose filterbank energies sit at the log floor, far from anything a model trained on real
   recordings has seen (on AN4 dev 0.2 s of it on each side took the TDNN from 6.7% to 32.7%
   WER), and near-silence (below ``dead_dbfs``, e.g. +-1 LSB noise) that is also
   ``below_speech_floor_db`` quieter than the quietest stretches of the speech itself: padding
   foreign to the recording. A quiet recording's own dither, as loud as its pauses, is kept.

The defaults were chosen on AN4 dev (``benchmarks/conditions.py``; docs/robustness.md has the
table). They still cut speech: against the forced alignment of AN4's training files
(``benchmarks/trim_speech_cut.py``) 1,709 of 173,045 speech frames, in 100 of 858 files, fall
outside the trimmed piece, mostly weak words after a pause of 100 ms or more; crossing dips of
20 frames halves that, but lets -50 dBFS padding noise in (dev ``noise2`` 5.16 -> 6.88% WER).

A quiet recording (AN4 at -30 dB: speech at -75 to -45 dBFS, its background rounded to dither)
is then trimmed like a loud one: the floor is the dither, and the extension keeps every frame
clearly above it.
"""

import logging
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import torch

from hybrid_asr.bounds import bounded, check_bounds
from hybrid_asr.errors import ConfigError
from hybrid_asr.features.level import frame_energies_db

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrimConfig:
    """Settings of :func:`speech_bounds` (see the module docstring for how they are used).

    Attributes:
        margin_seconds: audio kept before the first and after the last speech frame, seconds.
        edge_below_peak_db: core frames are at most this many dB below the peak level.
        below_peak_db: the same for pieces where no window passes the core threshold, and the
            lowest level (dB below the peak) the extension reaches.
        above_floor_db: loud frames are at least this many dB above the floor level.
        extend_above_background_db: the extension takes frames at least this many dB above the
            background beyond that end of the core.
        extend_gap_frames: the extension crosses dips shorter than this many frames.
        peak_percentile: percentile of frame energies taken as the peak level.
        floor_percentile: percentile of frame energies taken as the floor (background) level.
        digital_silence_dbfs: frames below this level (dB relative to full scale) are digital
            silence (zeros: -90.3; +-1 LSB noise is about -88) and never kept as margin.
        dead_dbfs: frames below this level are not kept as margin either when they are also
            ``below_speech_floor_db`` under the speech's own floor (the ``floor_percentile`` of
            the frames of the extended speech): +-1 LSB padding around a recording whose pauses
            are far louder, but not the dither that is a quiet recording's own background.
        below_speech_floor_db: see ``dead_dbfs``.
        window_frames: length of the window that decides where the core starts and ends, frames.
        min_loud_frames: loud frames a window needs to count as speech (isolated clicks do not).
        frame_seconds: frame length and shift of the energy analysis, seconds.
    """

    margin_seconds: float = bounded(0.15, ge=0, le=10)
    edge_below_peak_db: float = bounded(15.0, gt=0)
    below_peak_db: float = bounded(35.0, gt=0)
    above_floor_db: float = bounded(10.0, ge=0)
    extend_above_background_db: float = bounded(6.0, ge=0)
    extend_gap_frames: int = bounded(10, ge=1)
    peak_percentile: float = bounded(98.0, ge=0, le=100)
    floor_percentile: float = bounded(10.0, ge=0, le=100)
    digital_silence_dbfs: float = bounded(-90.0, le=0)
    dead_dbfs: float = bounded(-80.0, le=0)
    below_speech_floor_db: float = bounded(15.0, ge=0)
    window_frames: int = bounded(10, ge=1)
    min_loud_frames: int = bounded(8, ge=1)
    frame_seconds: float = bounded(0.01, ge=0.001, le=0.1)

    def __post_init__(self):
        check_bounds(self)
        if self.min_loud_frames > self.window_frames:
            raise ConfigError(f"min_loud_frames ({self.min_loud_frames}) must not exceed window_frames "
                              f"({self.window_frames})")


def _extend(energy: np.ndarray, edge: int, step: int, level: float, gap: int) -> int:
    """Index of the outermost frame above ``level`` reached from ``edge`` moving by ``step``
    (-1 or +1) without ``gap`` frames in a row at or below it; ``edge`` itself if none."""
    last, quiet, i = edge, 0, edge + step
    while 0 <= i < len(energy) and quiet < gap:
        if energy[i] > level:
            last, quiet = i, 0
        else:
            quiet += 1
        i += step
    return last


def speech_bounds(wave: torch.Tensor, sample_rate: int, config: TrimConfig = TrimConfig()) -> Optional[Tuple[int, int]]:
    """The stretch of ``wave`` to decode: its speech plus ``config.margin_seconds`` on each side
    (the module docstring gives the method and its source).

    Args:
        wave: float32 ``[N]`` mono samples, int16 range.
        sample_rate: Hz.
        config: thresholds and margin.

    Returns:
        ``(first, end)`` sample indices (``wave[first:end]``); the whole wave when it is shorter
        than one window; None when no frame window is loud enough (silence or steady noise only)
        or the audio is digital silence (fewer than ``min_loud_frames`` frames at or above
        ``digital_silence_dbfs``).
    """
    energy = frame_energies_db(wave, sample_rate, config.frame_seconds)
    if len(energy) < config.window_frames:
        return 0, wave.numel()
    if np.count_nonzero(energy >= config.digital_silence_dbfs) < config.min_loud_frames:
        return None
    floor = np.percentile(energy, config.floor_percentile)
    active = energy[energy > floor + config.above_floor_db]
    peak = np.percentile(active if len(active) else energy, config.peak_percentile)
    for below in (config.edge_below_peak_db, config.below_peak_db):
        loud = (energy > max(peak - below, floor + config.above_floor_db)).astype(np.float64)
        counts = np.convolve(loud, np.ones(config.window_frames), mode="valid")
        windows = np.nonzero(counts >= config.min_loud_frames)[0]
        if len(windows):
            break
    else:
        return None
    core_first, core_last = int(windows[0]), int(windows[-1]) + config.window_frames - 1
    ends = []
    for edge, step, beyond in ((core_first, -1, energy[:core_first]), (core_last, 1, energy[core_last + 1:])):
        background = np.percentile(beyond, config.floor_percentile) if len(beyond) else floor
        level = max(peak - config.below_peak_db, background + config.extend_above_background_db)
        ends.append(_extend(energy, edge, step, level, config.extend_gap_frames))
    speech_first, speech_end = ends[0], ends[1] + 1
    hop = int(round(config.frame_seconds * sample_rate))
    margin = int(round(config.margin_seconds / config.frame_seconds))
    first, end = max(0, speech_first - margin), min(len(energy), speech_end + margin)
    speech_floor = np.percentile(energy[speech_first:speech_end], config.floor_percentile)
    dead = max(config.digital_silence_dbfs, min(config.dead_dbfs, speech_floor - config.below_speech_floor_db))
    while first < speech_first and energy[first] < dead:
        first += 1
    while end > speech_end and energy[end - 1] < dead:
        end -= 1
    return first * hop, wave.numel() if end == len(energy) else end * hop


__all__ = ["TrimConfig", "speech_bounds"]
