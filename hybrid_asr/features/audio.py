"""Audio input: read any file torchaudio can, downmix to mono, resample."""

from pathlib import Path
from typing import Optional, Union

import torch
import torchaudio

from hybrid_asr.errors import InputError


def load_audio(
    path: Union[str, Path],
    sample_rate: int,
    offset: float = 0.0,
    duration: Optional[float] = None,
) -> torch.Tensor:
    """Read an audio file as a mono waveform at ``sample_rate``.

    Channels are averaged; other rates are resampled with ``torchaudio.functional.resample``
    (windowed sinc). Samples are scaled to the int16 range, as Kaldi's feature extractors expect.

    Args:
        path: audio file (WAV, FLAC, SPHERE, ... whatever the torchaudio backend reads).
        sample_rate: target rate in Hz.
        offset: start of the segment to read, seconds.
        duration: length of the segment, seconds; ``None`` reads to the end.

    Returns:
        float32 tensor ``[num_samples]`` in [-32768, 32767].

    Raises:
        InputError: the file is missing, unreadable, or holds no samples in the segment.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "audio file does not exist")
    try:
        info = torchaudio.info(str(path))
        start = int(round(offset * info.sample_rate))
        num = -1 if duration is None else int(round(duration * info.sample_rate))
        wave, rate = torchaudio.load(str(path), frame_offset=start, num_frames=num)
    except Exception as e:  # torchaudio raises RuntimeError/OSError/... depending on backend
        raise InputError(path, f"cannot read audio: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    if wave.numel() == 0:
        raise InputError(path, "audio holds no samples")
    mono = wave.mean(dim=0)
    if rate != sample_rate:
        mono = torchaudio.functional.resample(mono, orig_freq=rate, new_freq=sample_rate)
    return (mono * 32768.0).to(torch.float32)
