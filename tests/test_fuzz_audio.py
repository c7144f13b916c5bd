"""Property-based fuzzing of the audio reading paths: decode's (``load_audio``, ``audio_info``,
the decode trimmer) and training's (``load_recording``, lhotse reading the same file, with a
channel), which share ``prepare_waveform``: for any bytes, and for valid WAVs with corrupted
headers, cut data or odd samples, the result is a finite waveform in the int16 range or an
InputError naming the file; nothing else escapes and nothing hangs; on a valid file both paths
give the same samples. ``HYBRID_ASR_FUZZ_EXAMPLES`` scales the number of examples
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
from hybrid_asr.features.audio import FULL_SCALE, LOW_BIT_SUBTYPES, load_audio, load_recording, prepare_waveform
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


def _recording(path: Path, rate: int, frames: int, channels: int = 1):
    """A lhotse recording of ``path`` as the manifest said it was before the file was damaged."""
    from lhotse import Recording
    from lhotse.audio import AudioSource

    return Recording("x", [AudioSource("file", list(range(channels)), str(path))], rate, frames, frames / rate)


def _well_formed(out: torch.Tensor) -> None:
    assert out.dtype == torch.float32 and out.dim() == 1 and out.numel() > 0
    assert torch.isfinite(out).all() and out.abs().max() <= 32768


def _check(path: Path, rate: int = 16000, recording=None, channel=None) -> None:
    """Both paths: a well-formed waveform or a one-line InputError naming the file."""
    if recording is not None:
        try:
            _well_formed(load_recording(recording, rate, channel=channel))
        except InputError as e:
            assert str(path) in str(e) and "\n" not in str(e)
    try:
        out = load_audio(path, rate)
    except InputError as e:
        assert str(path) in str(e) and "\n" not in str(e)
        return
    _well_formed(out)
    bounds = speech_bounds(out, rate)
    assert bounds is None or 0 <= bounds[0] < bounds[1] <= out.numel()


@SETTINGS
@given(data=st.binary(max_size=4096))
def test_arbitrary_bytes(tmp_path, data):
    f = tmp_path / "x.wav"
    f.write_bytes(data)
    _check(f, recording=_recording(f, 16000, max(1, len(data) // 2)))


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
    _check(f, recording=_recording(f, rate, max(1, len(samples))))


@SETTINGS
@given(values=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=2000),
       channels=st.integers(1, 3))
def test_float_wav_with_any_values(tmp_path, values, channels):
    import soundfile

    x = np.asarray(values, dtype=np.float32)
    x = np.repeat(x[:, None], channels, axis=1)
    f = tmp_path / "x.wav"
    soundfile.write(str(f), x, 8000, subtype="FLOAT")
    _check(f, 8000, _recording(f, 8000, len(values), channels), channel=channels - 1)


@SETTINGS
@given(frames=st.integers(1, 800), channels=st.integers(1, 3), rate=st.sampled_from([8000, 11025, 16000, 48000]),
       subtype=st.sampled_from(["PCM_16", "PCM_U8", "PCM_24", "ULAW", "FLOAT"]), data=st.data())
def test_training_and_decode_paths_give_the_same_samples(tmp_path, frames, channels, rate, subtype, data):
    """A valid file of any format, rate and channel count, read through lhotse (training) and
    libsndfile (decode), whole or a stretch, all channels or one: the same waveform."""
    import soundfile

    x = np.asarray(data.draw(st.lists(st.floats(-1.5, 1.5, width=32), min_size=frames * channels,
                                      max_size=frames * channels)), dtype=np.float32).reshape(frames, channels)
    f = tmp_path / "x.wav"
    soundfile.write(str(f), x, rate, subtype=subtype)
    channel = data.draw(st.one_of(st.none(), st.integers(0, channels - 1)))
    start = data.draw(st.integers(0, frames - 1))
    num = data.draw(st.integers(1, frames - start))
    offset, duration = start / rate, num / rate
    try:
        decode = load_audio(f, 16000, offset, duration, channel)
    except InputError as e:  # too few samples to resample
        assert str(f) in str(e) and "\n" not in str(e)
        return
    train = load_recording(_recording(f, rate, frames, channels), 16000, offset, duration, channel)
    assert torch.equal(train, decode)


@SETTINGS
@given(values=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=600),
       channels=st.integers(1, 4), rate=st.integers(500, 400000), target=st.sampled_from([8000, 16000]),
       subtype=st.sampled_from(sorted(set(FULL_SCALE) | set(LOW_BIT_SUBTYPES) | {"", "FLOAT", "VORBIS"})),
       data=st.data())
def test_prepare_waveform_on_any_samples(values, channels, rate, target, subtype, data):
    """The shared end of both paths, on any ``[C, N]`` floats, rate, format and channel choice:
    a finite int16-range waveform of the resampled length, or a one-line InputError."""
    n = len(values) // channels
    samples = torch.tensor(values[: n * channels], dtype=torch.float32).reshape(channels, n)
    channel = data.draw(st.one_of(st.none(), st.integers(-1, channels), st.lists(st.integers(0, channels), max_size=3)))
    try:
        out = prepare_waveform(samples, rate, target, "x.wav", channel, subtype)
    except InputError as e:
        assert str(e).startswith("x.wav: ") and "\n" not in str(e)
        return
    assert out.dtype == torch.float32 and out.dim() == 1
    assert torch.isfinite(out).all() and out.abs().max() <= 32768
    assert abs(out.numel() - n * target / rate) <= 1 + 50 / rate * n * target / rate  # at worst as the nearest 100 Hz


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
