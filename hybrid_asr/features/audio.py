"""Audio input: read any file torchaudio or libsndfile can, downmix to mono, resample; say
clearly what is wrong with a file that cannot be read, and what was done to one that is damaged."""

import logging
import math
import os
import struct
from pathlib import Path
from typing import NamedTuple, Optional, Tuple, Union

import torch
import torchaudio

from hybrid_asr.errors import InputError

log = logging.getLogger(__name__)


class AudioInfo(NamedTuple):
    """What an audio file's header says: ``sample_rate`` (Hz), ``num_frames`` (samples per
    channel) and ``num_channels``."""

    sample_rate: int
    num_frames: int
    num_channels: int


def _first_line(e: Exception) -> str:
    return str(e).splitlines()[0][:200] if str(e) else type(e).__name__


def _unreadable(path: Path, errors) -> InputError:
    if path.stat().st_size == 0:
        return InputError(path, "audio file is empty (0 bytes)")
    with open(path, "rb") as f:
        head = f.read(12)
    if head[:4] in (b"RIFF", b"RIFX", b"RF64") and head[8:12] == b"WAVE":
        return InputError(path, "WAV file with a damaged or truncated header: " + "; ".join(errors))
    return InputError(path, f"unsupported format or not audio ({path.suffix or 'no suffix'}): libsndfile cannot "
                      "read it" + (" and neither can torchaudio" if path.suffix.lower() in SOX_SUFFIXES else ""))


def _check_path(path: Path) -> None:
    if path.is_dir():
        raise InputError(path, "is a directory, not an audio file")
    if not path.is_file():
        raise InputError(path, "audio file does not exist")


SOX_SUFFIXES = (".sph", ".nist")
"""Files that torchaudio's sox backend reads when libsndfile cannot (SPHERE with shorten
compression). Only these go to sox: libsox kills the whole process (SIGFPE) on some damaged WAV
headers that libsndfile refuses cleanly (found by tests/test_fuzz_audio.py)."""


def audio_info(path: Union[str, Path]) -> AudioInfo:
    """Header of an audio file, from libsndfile (``soundfile``: WAV of every sample format, FLAC,
    OGG, MP3, ...) or, for :data:`SOX_SUFFIXES`, torchaudio's sox backend.

    Raises:
        InputError: missing, a directory, empty, a damaged WAV header, or a format neither reads.
    """
    path = Path(path)
    _check_path(path)
    errors = []
    try:
        import soundfile

        i = soundfile.info(str(path))
        if i.samplerate > 0:
            return AudioInfo(int(i.samplerate), int(i.frames), int(i.channels))
    except Exception as e:  # noqa: BLE001 - the backends raise RuntimeError/OSError/... for bad files
        errors.append(_first_line(e))
    if path.suffix.lower() not in SOX_SUFFIXES:
        raise _unreadable(path, errors)
    try:
        i = torchaudio.info(str(path))
        if i.sample_rate > 0:
            return AudioInfo(int(i.sample_rate), int(i.num_frames), int(i.num_channels))
    except Exception as e:  # noqa: BLE001 - as above
        errors.append(_first_line(e))
    raise _unreadable(path, errors)


def wav_data_shortfall(path: Union[str, Path]) -> Optional[Tuple[int, int]]:
    """``(declared, present)`` bytes of a RIFF/WAVE file's data chunk when the file ends before
    the chunk does (a cut-off download or an interrupted write), else None (also for non-WAV
    files and streamed WAVs whose header gives no size)."""
    with open(path, "rb") as f:
        head = f.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            size = struct.unpack("<I", chunk[4:])[0]
            if chunk[:4] == b"data":
                present = os.fstat(f.fileno()).st_size - f.tell()
                return (size, present) if 0 < size < 0xFFFFFFFF and present < size else None
            f.seek(size + (size & 1), os.SEEK_CUR)


def _read(path: Path, start: int, num: int):
    """``([C, N] float32, rate)`` through soundfile (float files as stored: NaN, beyond full
    scale), else for :data:`SOX_SUFFIXES` torchaudio; integer formats scaled to [-1, 1)."""
    try:
        import soundfile

        data, rate = soundfile.read(str(path), start=start, frames=num, dtype="float32", always_2d=True)
        return torch.from_numpy(data.T.copy()), rate
    except Exception as first:  # noqa: BLE001 - fall back to torchaudio below
        if path.suffix.lower() not in SOX_SUFFIXES:
            raise InputError(path, f"cannot read audio: {_first_line(first)}") from None
        try:
            return torchaudio.load(str(path), frame_offset=start, num_frames=num)
        except Exception as e:  # noqa: BLE001
            raise InputError(path, f"cannot read audio: {_first_line(first)}; {_first_line(e)}") from None


MIN_RATE, MAX_RATE = 1000, 384000
"""Sample rates (Hz) accepted from a file's header; others mean a damaged header."""
MAX_RESAMPLE_TERMS = 2000
"""Largest reduced rate ratio resampled exactly: torchaudio's sinc kernel has ``orig/g x new/g``
taps (``g``: their greatest common divisor), hundreds of MB for a rate such as 11027 Hz."""


def _resample(wave: torch.Tensor, rate: int, target: int, path: Path) -> torch.Tensor:
    g = math.gcd(rate, target)
    if max(rate, target) // g > MAX_RESAMPLE_TERMS:  # resample as the nearest rate in 100 Hz steps
        near = max(100, int(round(rate / 100.0)) * 100)
        log.warning("%s: sample rate %d Hz resampled as %d Hz (%.3f%% faster)", path, rate, near,
                    100.0 * (near - rate) / rate)
        rate = near
        if rate == target:
            return wave
    return torchaudio.functional.resample(wave, orig_freq=rate, new_freq=target)


def load_audio(
    path: Union[str, Path],
    sample_rate: int,
    offset: float = 0.0,
    duration: Optional[float] = None,
) -> torch.Tensor:
    """Read an audio file as a mono waveform at ``sample_rate``.

    Channels are averaged; other rates are resampled with ``torchaudio.functional.resample``
    (windowed sinc). Samples are scaled to the int16 range, as Kaldi's feature extractors expect.
    Damaged audio is read as far as it goes, with a warning: a data chunk shorter than its header
    says (the samples present are used), NaN or infinite samples (set to 0), samples beyond full
    scale in a float file (clipped).

    Args:
        path: audio file (WAV of any sample format, FLAC, OGG, MP3, SPHERE, ... whatever
            torchaudio's backend or libsndfile reads).
        sample_rate: target rate in Hz.
        offset: start of the segment to read, seconds.
        duration: length of the segment, seconds; ``None`` reads to the end.

    Returns:
        float32 tensor ``[num_samples]`` in [-32768, 32767].

    Raises:
        InputError: the file is missing, a directory, empty, unreadable, or holds no samples in
            the segment.
    """
    path = Path(path)
    info = audio_info(path)
    if not MIN_RATE <= info.sample_rate <= MAX_RATE:
        raise InputError(path, f"sample rate {info.sample_rate} Hz in its header is outside {MIN_RATE}-{MAX_RATE} Hz "
                         "(a damaged header?)")
    start = int(round(offset * info.sample_rate))
    num = -1 if duration is None else int(round(duration * info.sample_rate))
    wave, rate = _read(path, start, num)
    short = wav_data_shortfall(path)
    if short is not None and start + wave.shape[-1] >= info.num_frames - 1:  # the read reached the cut
        log.warning("%s: truncated: its header declares %.2f s of audio, the file holds %.2f s; using the audio "
                    "present", path, info.num_frames / rate * short[0] / max(short[1], 1), info.num_frames / rate)
    if wave.numel() == 0:
        raise InputError(path, "audio holds no samples" + (f" from {offset:.2f} s" if offset else ""))
    bad = ~torch.isfinite(wave)
    if bad.any():
        log.warning("%s: %d samples are NaN or infinite; set to 0", path, int(bad.sum()))
        wave = torch.where(bad, torch.zeros_like(wave), wave)
    over = wave.abs() > 1.0
    if over.any():
        log.warning("%s: %d samples beyond full scale; clipped", path, int(over.sum()))
        wave = wave.clamp(-1.0, 1.0)
    mono = wave.mean(dim=0)
    if rate != sample_rate:
        mono = _resample(mono, rate, sample_rate, path)
    return (mono * 32768.0).clamp(-32768.0, 32767.0).to(torch.float32)


__all__ = ["SOX_SUFFIXES", "AudioInfo", "audio_info", "load_audio", "wav_data_shortfall"]
