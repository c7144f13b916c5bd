"""Property-based fuzzing of the audio reading path (``load_audio``, ``audio_info``, the decode
trimmer): for any bytes, and for valid WAVs with corrupted headers, cut data or odd samples,
the result is a finite waveform in the int16 range or an InputError naming the file; nothing
else escapes and nothing hangs. ``HYBRID_ASR_FUZZ_EXAMPLES`` scales the number of examples
(docs/robustness.md records a long run)."""

import io
import os
import struct
import wave as wavelib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hybrid_asr.errors import InputError
from hybrid_asr.features.audio import load_audio
from hybrid_asr.features.trim import speech_bounds

EXAMPLES = int(os.environ.get("HYBRID_ASR_FUZZ_EXAMPLES", "60"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def _wav_bytes(samples: np.ndarray, rate: int, channels: int = 1, width: int = 2) -> bytes:
    buf = io.BytesIO()
    with wavelib.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return buf.getvalue()


def _check(path: Path, rate: int = 16000) -> None:
    try:
        out = load_audio(path, rate)
    except InputError as e:
        assert str(path) in str(e) and "\n" not in str(e)
        return
    assert out.dtype == torch.float32 and out.dim() == 1 and out.numel() > 0
    assert torch.isfinite(out).all() and out.abs().max() <= 32768
    bounds = speech_bounds(out, rate)
    assert bounds is None or 0 <= bounds[0] < bounds[1] <= out.numel()


@SETTINGS
@given(data=st.binary(max_size=4096))
def test_arbitrary_bytes(tmp_path, data):
    f = tmp_path / "x.wav"
    f.write_bytes(data)
    _check(f)


@SETTINGS
@given(samples=st.lists(st.integers(-32768, 32767), min_size=0, max_size=3000),
       rate=st.sampled_from([8000, 11025, 16000, 44100]), cut=st.integers(0, 6100),
       flips=st.lists(st.tuples(st.integers(0, 60), st.integers(0, 255)), max_size=4))
def test_corrupted_wav(tmp_path, samples, rate, cut, flips):
    data = bytearray(_wav_bytes(np.asarray(samples, dtype=np.int16), rate))
    for pos, value in flips:  # damage the header
        if pos < len(data):
            data[pos] = value
    f = tmp_path / "x.wav"
    f.write_bytes(bytes(data[: max(cut, 0)]) if cut < len(data) else bytes(data))
    _check(f)


@SETTINGS
@given(values=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=2000),
       channels=st.integers(1, 3))
def test_float_wav_with_any_values(tmp_path, values, channels):
    import soundfile

    x = np.asarray(values, dtype=np.float32)
    x = np.repeat(x[:, None], channels, axis=1)
    f = tmp_path / "x.wav"
    soundfile.write(str(f), x, 8000, subtype="FLOAT")
    _check(f, 8000)


def test_declared_data_size_beyond_the_file_is_reported(tmp_path, caplog):
    """The header's data size is larger than the file (a cut download): the samples present."""
    samples = (np.sin(np.arange(8000) / 5) * 8000).astype(np.int16)
    data = bytearray(_wav_bytes(samples, 8000))
    data[40:44] = struct.pack("<I", 2 * 16000)  # the data chunk claims 2 s
    f = tmp_path / "long_header.wav"
    f.write_bytes(bytes(data))
    out = load_audio(f, 8000)
    assert out.numel() == 8000
    assert any("truncated: its header declares 2.00 s of audio, the file holds 1.00 s" in r.getMessage()
               for r in caplog.records)


@pytest.mark.parametrize("n", [0, 1, 199])
def test_trimmer_on_tiny_waves(n):
    w = torch.zeros(n)
    assert speech_bounds(w, 16000) == (0, n)
