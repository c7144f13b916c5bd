"""Cutting long recordings into decodable pieces at their quietest moments, reading the audio
block by block so that memory does not grow with the recording's length."""

from pathlib import Path
from typing import List, Optional, Tuple, Union

import numpy as np

from hybrid_asr.features.audio import Channels, audio_info, load_audio

ENERGY_RATE = 8000
"""Sample rate (Hz) at which frame energies are computed for segmentation."""


def audio_duration(path: Union[str, Path]) -> float:
    """Duration of an audio file in seconds (from its header).

    Raises:
        InputError: the file is missing or unreadable (see :func:`hybrid_asr.features.audio.audio_info`).
    """
    info = audio_info(path)
    return info.num_frames / info.sample_rate


def frame_log_energies(path: Union[str, Path], start: float, duration: float, frame_shift: float = 0.01,
                       block_seconds: float = 60.0, channel: Channels = None) -> np.ndarray:
    """Log energy of every ``frame_shift`` frame of a stretch of audio, read in blocks, of the
    channel(s) ``channel`` selects (None: all averaged; see :func:`~hybrid_asr.features.audio.load_audio`).

    Returns:
        float64 ``[num_frames]``, natural log of the mean squared sample (int16 scale) per frame.
    """
    hop = int(round(frame_shift * ENERGY_RATE))
    out = []
    t = 0.0
    while t < duration - 1e-9:
        n = min(block_seconds, duration - t)
        wave = load_audio(path, ENERGY_RATE, start + t, n, channel).numpy().astype(np.float64)
        frames = len(wave) // hop
        if frames:
            out.append(np.log(np.mean(wave[: frames * hop].reshape(frames, hop) ** 2, axis=1) + 1.0))
        t += n
    return np.concatenate(out) if out else np.zeros(0)


def split_points(log_energy: np.ndarray, max_frames: int, min_frames: int, smooth: int = 30) -> List[int]:
    """Frame indices where to cut so that no piece is longer than ``max_frames``: each cut is the
    quietest point (energy averaged over ``smooth`` frames) between ``min_frames`` and
    ``max_frames`` after the previous one.

    Returns:
        increasing cut positions (frame indices), without 0 and the end; every piece has at
        least one frame.

    Raises:
        ValueError: ``max_frames < 2``.
    """
    if max_frames < 2:
        raise ValueError(f"pieces must be allowed at least 2 frames, got max_frames={max_frames}")
    if len(log_energy) <= max_frames:
        return []
    smoothed = np.convolve(log_energy, np.ones(smooth) / smooth, mode="same")
    cuts, start = [], 0
    while len(log_energy) - start > max_frames:
        hi = start + max_frames
        lo = min(start + max(min_frames, 1), hi - 1)  # each cut advances
        cut = lo + int(np.argmin(smoothed[lo:hi]))
        cuts.append(cut)
        start = cut
    return cuts


def segment_long_audio(path: Union[str, Path], start: float = 0.0, duration: Optional[float] = None,
                       max_seconds: float = 30.0, min_seconds: Optional[float] = None,
                       channel: Channels = None) -> List[Tuple[float, float]]:
    """Pieces of at most ``max_seconds`` covering ``[start, start + duration)`` of a file, cut at
    the quietest moment between ``min_seconds`` (default a third of ``max_seconds``) and
    ``max_seconds`` after the previous cut (energy segmentation, as a voice-activity detector
    would do cheaply), judged on the channel(s) that will be decoded (``channel``, as
    :func:`frame_log_energies`).

    Returns:
        ``(start, duration)`` per piece, seconds, in order; one piece when the audio is short.

    Raises:
        InputError: the file is missing or unreadable.
    """
    total = audio_duration(path) - start if duration is None else duration
    if total <= max_seconds:
        return [(start, total)]
    energy = frame_log_energies(path, start, total, channel=channel)  # of the channel(s) decoded
    low = max_seconds / 3 if min_seconds is None else min(min_seconds, max_seconds)
    cuts = [c * 0.01 for c in split_points(energy, int(max_seconds * 100), int(low * 100))]
    bounds = [0.0] + cuts + [total]
    return [(start + a, b - a) for a, b in zip(bounds, bounds[1:]) if b - a > 0]
