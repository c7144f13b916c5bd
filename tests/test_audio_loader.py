"""The one audio loader of training and decoding (``features/audio.py``): channel selection, the
checks and warnings of ``prepare_waveform`` on both paths (``load_audio`` for decode,
``load_recording`` / ``lhotse_loader`` for training), and Kaldi pipe entries."""

import logging
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from lhotse import Recording, RecordingSet, SupervisionSegment, SupervisionSet

from hybrid_asr.data.inputs import collect_inputs, read_wav_scp
from hybrid_asr.data.pipes import PipeCommand
from hybrid_asr.errors import InputError
from hybrid_asr.features.audio import load_audio, load_recording, prepare_waveform
from hybrid_asr.stages.features import lhotse_loader, split_segments

RATE = 8000


def _messages(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def _two_speakers(path: Path) -> np.ndarray:
    """A 1 s two-channel PCM_16 file: a 440 Hz tone on channel 0, a 1000 Hz tone at another level
    on channel 1 (int16 samples returned, ``[N, 2]``)."""
    t = np.arange(RATE) / RATE
    x = np.stack([8000 * np.sin(2 * np.pi * 440 * t), 3000 * np.sin(2 * np.pi * 1000 * t)], axis=1).astype(np.int16)
    soundfile.write(str(path), x, RATE, subtype="PCM_16")
    return x


def test_each_channel_through_decode_and_training(tmp_path):
    """A two-channel recording, one speaker per channel: decode's loader with a channel, a
    lhotse cut naming its channel, and each supervision in training give that channel only."""
    from lhotse import CutSet

    f = tmp_path / "two.wav"
    x = _two_speakers(f)
    both = torch.from_numpy(x.astype(np.float32).mean(axis=1))
    for channel in (0, 1):
        assert torch.equal(load_audio(f, RATE, channel=channel), torch.from_numpy(x[:, channel].astype(np.float32)))
    assert torch.equal(load_audio(f, RATE), both)  # no channel: all, averaged
    assert torch.equal(load_audio(f, RATE, channel=[0, 1]), both)

    recording = Recording.from_file(f, recording_id="two")
    sups = [SupervisionSegment(f"u{c}", "two", 0.25, 0.5, channel=c, speaker=f"s{c}", text="X") for c in (0, 1)]
    recordings, supervisions = RecordingSet.from_recordings([recording]), SupervisionSet.from_segments(sups)
    segments = split_segments(recordings, supervisions)
    assert [s.utt_id for s in segments] == ["u0", "u1"]
    for c, seg in enumerate(segments):
        assert torch.equal(seg.load(RATE), torch.from_numpy(x[2000:6000, c].astype(np.float32)))

    cuts = CutSet.from_manifests(recordings=recordings, supervisions=supervisions).trim_to_supervisions(keep_overlapping=False)
    cuts.to_file(tmp_path / "cuts.jsonl.gz")
    decoded, problems = collect_inputs([tmp_path / "cuts.jsonl.gz"])
    assert not problems and [(s.id, s.channel, s.start, s.duration) for s in decoded] == \
        [("u0", 0, 0.25, 0.5), ("u1", 1, 0.25, 0.5)]
    for c, seg in enumerate(decoded):
        assert torch.equal(load_audio(seg.path, RATE, seg.start, seg.duration, seg.channel),
                           torch.from_numpy(x[2000:6000, c].astype(np.float32)))


def test_a_channel_the_audio_lacks_is_a_one_line_error(tmp_path):
    f = tmp_path / "two.wav"
    _two_speakers(f)
    with pytest.raises(InputError) as info:
        load_audio(f, RATE, channel=2)
    assert str(info.value) == f"{f}: channel 2 requested, but the audio has 2 channels (0-1)"
    recording = Recording.from_file(f, recording_id="two")
    with pytest.raises(InputError) as info:
        load_recording(recording, RATE, channel=[0, 3])
    assert str(info.value) == f"{f}: channel 3 is not in recording two (channels [0, 1])"


def test_training_path_sets_nan_to_zero_and_clips_like_decode(tmp_path, caplog):
    """A float WAV with a NaN, an infinity and a sample beyond full scale: the training loader
    (lhotse) warns and repairs exactly as decode's does, and gives the same samples."""
    x = (0.5 * np.sin(np.arange(RATE) / 7)).astype(np.float32)
    x[100], x[200], x[300] = np.nan, np.inf, 3.0
    f = tmp_path / "bad.wav"
    soundfile.write(str(f), x, RATE, subtype="FLOAT")
    recording = Recording.from_file(f, recording_id="bad")
    sup = SupervisionSegment("u", "bad", 0.0, recording.duration, channel=0)
    with caplog.at_level(logging.WARNING):
        train = lhotse_loader(recording, sup)(RATE)
    assert _messages(caplog) == [f"{f}: 2 samples are NaN or infinite; set to 0",
                                 f"{f}: 1 samples beyond full scale; clipped"]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        decode = load_audio(f, RATE)
    assert _messages(caplog) == [f"{f}: 2 samples are NaN or infinite; set to 0",
                                 f"{f}: 1 samples beyond full scale; clipped"]
    assert torch.equal(train, decode) and train[100] == 0 and train[200] == 0 and train[300] == 32767


def test_training_path_reports_unreadable_and_truncated_files_like_decode(tmp_path, caplog):
    f = tmp_path / "x.wav"
    soundfile.write(str(f), np.zeros(RATE, dtype=np.int16), RATE, subtype="PCM_16")
    recording = Recording.from_file(f, recording_id="x")
    f.write_bytes(b"")
    with pytest.raises(InputError) as info:
        load_recording(recording, RATE)
    assert str(info.value) == f"{f}: audio file is empty (0 bytes)"
    f.unlink()
    with pytest.raises(InputError) as info:
        load_recording(recording, RATE)
    assert str(info.value) == f"{f}: audio file does not exist"
    # a data chunk cut to half: the audio present, with decode's warning
    soundfile.write(str(f), (np.sin(np.arange(RATE) / 5) * 8000).astype(np.int16), RATE, subtype="PCM_16")
    f.write_bytes(f.read_bytes()[: 44 + RATE])
    recording = Recording.from_file(f, recording_id="x")
    with caplog.at_level(logging.WARNING):
        wave = load_recording(recording, RATE)
    assert wave.numel() == RATE // 2
    assert _messages(caplog) == [f"{f}: truncated: its header declares 1.00 s of audio, the file holds 0.50 s; "
                                 "using the audio present"]


def test_odd_rates_are_resampled_on_the_training_path(tmp_path, caplog):
    """11027 Hz (no small common divisor with 16 kHz): resampled as 11000 Hz with a warning, and
    upsampled with the upper-band warning, on both paths, the same samples."""
    f = tmp_path / "odd.wav"
    soundfile.write(str(f), (np.sin(np.arange(11027) / 9) * 8000).astype(np.int16), 11027, subtype="PCM_16")
    with caplog.at_level(logging.WARNING):
        train = load_recording(Recording.from_file(f, recording_id="odd"), 16000)
    assert _messages(caplog) == [f"{f}: 11027 Hz audio upsampled to 16000 Hz: the model's upper band is empty",
                                 f"{f}: sample rate 11027 Hz resampled as 11000 Hz (-0.245% faster)"]
    assert torch.equal(train, load_audio(f, 16000)) and train.numel() == 16040  # 11027 samples as 11000 Hz


def test_low_bit_depth_and_low_rate_are_warned_once_per_file(tmp_path, caplog):
    t = np.arange(RATE) / RATE
    x = 0.3 * np.sin(2 * np.pi * 300 * t)
    u8, mulaw, s16 = tmp_path / "u8.wav", tmp_path / "mulaw.wav", tmp_path / "s16.wav"
    soundfile.write(str(u8), x, RATE, subtype="PCM_U8")
    soundfile.write(str(mulaw), x, RATE, subtype="ULAW")
    soundfile.write(str(s16), x, RATE, subtype="PCM_16")
    with caplog.at_level(logging.WARNING):
        for _ in range(2):  # a file read in several pieces is warned about once
            load_audio(u8, RATE, 0.0, 0.5)
            load_audio(u8, RATE, 0.5, 0.5)
        load_audio(mulaw, RATE)
        load_audio(s16, RATE)
        load_audio(s16, 4000)  # downsampling loses nothing the model needs
        load_audio(s16, 16000)
        load_audio(s16, 16000, 0.5)
    assert _messages(caplog) == [f"{u8}: 8-bit samples: expect lower accuracy",
                                 f"{mulaw}: 8-bit mu-law samples: expect lower accuracy",
                                 f"{s16}: 8000 Hz audio upsampled to 16000 Hz: the model's upper band is empty"]


def test_clipping_in_integer_audio_is_warned_about(tmp_path, caplog):
    """Runs of 3 or more samples at full scale count as clipped; isolated extremes and pairs do
    not; at least 0.1% of the samples must be clipped; float files are not checked."""
    x = (np.sin(np.arange(4000) / 9) * 8000).astype(np.int16)
    x[100:110] = 32767  # a run of 10 at the top
    x[500:505] = -32768  # a run of 5 at the bottom
    x[700:705] = -32767  # and 5 at -32767, where code that scales floats by 32767 clips
    x[900] = x[1200] = 32767  # isolated
    x[1500:1502] = -32768  # a pair
    clipped = tmp_path / "clipped.wav"
    soundfile.write(str(clipped), x, RATE, subtype="PCM_16")
    y = (np.sin(np.arange(20000) / 9) * 8000).astype(np.int16)
    y[100:103] = 32767  # 3 of 20000: 0.015%, under the 0.1% that is warned about
    once = tmp_path / "one_click.wav"
    soundfile.write(str(once), y, RATE, subtype="PCM_16")
    z = np.clip(np.sin(np.arange(4000) / 9) * 2, -1, 1).astype(np.float32)  # at +-1.0, but a float file
    flt = tmp_path / "float.wav"
    soundfile.write(str(flt), z, RATE, subtype="FLOAT")
    with caplog.at_level(logging.WARNING):
        out = load_audio(clipped, RATE)
        load_audio(once, RATE)
        load_audio(flt, RATE)
    assert _messages(caplog) == [f"{clipped}: clipped: 20 samples (0.5%) in runs of 3 or more at full scale; "
                                 "expect lower accuracy"]
    assert out[105] == 32767 and out[502] == -32768 and out[702] == -32767  # warned about, not changed
    caplog.clear()
    recording = Recording.from_file(clipped, recording_id="c")
    with caplog.at_level(logging.WARNING):
        load_recording(recording, RATE)
    assert _messages(caplog) == [f"{clipped}: clipped: 20 samples (0.5%) in runs of 3 or more at full scale; "
                                 "expect lower accuracy"]


def test_speed_perturbed_copies_go_through_the_same_checks(tmp_path, caplog):
    """lhotse applies the transform; the NaN is found in the perturbed copy too (resampling
    spreads it over its neighbours: all of them set to 0), and the result is finite."""
    x = (0.5 * np.sin(np.arange(RATE) / 7)).astype(np.float32)
    x[4000] = np.nan
    f = tmp_path / "nan.wav"
    soundfile.write(str(f), x, RATE, subtype="FLOAT")
    recording = Recording.from_file(f, recording_id="nan")
    sup = SupervisionSegment("u", "nan", 0.0, recording.duration, channel=0, speaker="s", text="X")
    segments = split_segments(RecordingSet.from_recordings([recording]), SupervisionSet.from_segments([sup]), (1.1,))
    assert [s.utt_id for s in segments] == ["u", "u_sp1.1"]
    with caplog.at_level(logging.WARNING):
        fast = segments[1].load(RATE)
    assert torch.isfinite(fast).all() and abs(fast.numel() - RATE / 1.1) <= 2
    [message] = _messages(caplog)
    assert message.startswith(f"{f}: ") and message.endswith(" samples are NaN or infinite; set to 0")


def test_prepare_waveform_is_the_shared_end_of_both_paths():
    samples = torch.tensor([[0.5, -0.25, 0.0, 1.0], [0.0, 0.25, 0.5, -1.0]])
    assert torch.equal(prepare_waveform(samples, RATE, RATE, "x.wav", channel=1),
                       torch.tensor([0.0, 8192.0, 16384.0, -32768.0]))
    assert torch.equal(prepare_waveform(samples, RATE, RATE, "x.wav"), torch.tensor([8192.0, 0.0, 8192.0, 0.0]))
    with pytest.raises(InputError) as info:
        prepare_waveform(samples[:, :0], RATE, RATE, "x.wav", offset=1.5)
    assert str(info.value) == "x.wav: audio holds no samples from 1.50 s"
    with pytest.raises(InputError) as info:
        prepare_waveform(samples, 400, RATE, "x.wav")
    assert str(info.value) == "x.wav: sample rate 400 Hz in its header is outside 1000-384000 Hz (a damaged header?)"


# ------------------------------------------------------------------ Kaldi pipe entries
def _cat(path: Path) -> str:
    """A pipe command that works on every machine: the file's bytes through ``cat``."""
    return f"cat {path} |"


def test_pipe_entries_are_read_like_files_with_allow_pipes(tmp_path):
    f = tmp_path / "two.wav"
    x = _two_speakers(f)
    scp = tmp_path / "wav.scp"
    scp.write_text(f"r1 {_cat(f)}\nr2 {f}\n")
    segments = read_wav_scp(scp, allow_pipes=True)
    assert segments[0].path == PipeCommand(f"cat {f}", scp, 1) and str(segments[0].path) == f"{scp}:1"
    assert segments[1].path == f
    for channel in (None, 1):
        assert torch.equal(load_audio(segments[0].path, RATE, 0.25, 0.5, channel),
                           load_audio(f, RATE, 0.25, 0.5, channel))
    assert torch.equal(load_audio(segments[0].path, RATE, channel=0), torch.from_numpy(x[:, 0].astype(np.float32)))


@pytest.mark.parametrize("tool", ["cat", "sox"])
def test_streamed_pipe_output_is_read_whole(tmp_path, tool, caplog):
    """What Kaldi recipes pipe: ``sox x -t wav - |`` (skipped without sox), and a WAV streamed with
    unknown sizes (0xFFFFFFFF in its header, as a writer that cannot seek leaves them)."""
    import shutil
    import struct

    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")
    f = tmp_path / "two.wav"
    x = _two_speakers(f)
    source = f
    if tool == "cat":
        data = bytearray(f.read_bytes())
        data[4:8] = data[40:44] = struct.pack("<I", 0xFFFFFFFF)
        source = tmp_path / "streamed.wav"
        source.write_bytes(bytes(data))
    command = f"cat {source}" if tool == "cat" else f"sox {source} -t wav -"
    with caplog.at_level(logging.WARNING):
        wave = load_audio(PipeCommand(command, "wav.scp", 1), RATE, channel=1)
    assert torch.equal(wave, torch.from_numpy(x[:, 1].astype(np.float32))) and not _messages(caplog)


@pytest.mark.parametrize("command, problem", [
    ("exit 3", "command 'exit 3 |' failed with exit status 3"),
    ("cat /no/such/file.wav", "command 'cat /no/such/file.wav |' failed with exit status 1: cat: /no/such/file.wav: "
     "No such file or directory"),
    ("true", "command 'true |' wrote no audio to its standard output"),
    ("echo hello", "output of command 'echo hello |' is not audio: libsndfile cannot read it"),
])
def test_a_failing_pipe_is_a_one_line_error_naming_the_wav_scp_line(tmp_path, command, problem):
    scp = tmp_path / "wav.scp"
    scp.write_text(f"r0 /abs/a.wav\nr1 {command} |\n")
    [_, segment] = read_wav_scp(scp, allow_pipes=True)
    with pytest.raises(InputError) as info:
        load_audio(segment.path, RATE)
    assert str(info.value) == f"{scp}:2: {problem}"


def test_a_piped_recording_trains_through_the_shared_loader(tmp_path, caplog):
    """A lhotse ``command`` source (what import-kaldi-dir --allow-pipes stores): the training
    loader runs it once and reads it as decode does; a failing one names the recording."""
    from lhotse.audio import AudioSource

    f = tmp_path / "u8.wav"
    x = (np.sin(np.arange(RATE) / 7) * 0.5)
    soundfile.write(str(f), x, RATE, subtype="PCM_U8")
    recording = Recording("r1", [AudioSource("command", [0], f"cat {f}")], RATE, RATE, 1.0)
    with caplog.at_level(logging.WARNING):
        wave = load_recording(recording, RATE, 0.25, 0.5)
    assert _messages(caplog) == ["recording r1: 8-bit samples: expect lower accuracy"]
    assert torch.equal(wave, load_audio(f, RATE, 0.25, 0.5))
    broken = Recording("r2", [AudioSource("command", [0], "exit 4")], RATE, RATE, 1.0)
    with pytest.raises(InputError) as info:
        load_recording(broken, RATE)
    assert str(info.value) == "recording r2: command 'exit 4 |' failed with exit status 4"


def test_decode_refuses_pipes_in_manifests_without_the_option(tmp_path):
    from lhotse.audio import AudioSource

    recording = Recording("r1", [AudioSource("command", [0], "cat x.wav")], RATE, RATE, 1.0)
    RecordingSet.from_recordings([recording]).to_file(tmp_path / "recs.jsonl.gz")
    segments, problems = collect_inputs([tmp_path / "recs.jsonl.gz"])
    assert not segments and problems == [(str(tmp_path / "recs.jsonl.gz"), f"{tmp_path / 'recs.jsonl.gz'}: recording "
                                          "r1: its source is a command; pass --allow-pipes to run it")]
    segments, problems = collect_inputs([tmp_path / "recs.jsonl.gz"], allow_pipes=True)
    assert not problems and segments[0].path == PipeCommand("cat x.wav", f"{tmp_path / 'recs.jsonl.gz'}: recording r1")


@pytest.mark.skipif(sys.platform == "win32", reason="a POSIX shell")
def test_pipe_output_is_cached_so_a_recording_runs_its_command_once(tmp_path):
    f = tmp_path / "two.wav"
    _two_speakers(f)
    counter = tmp_path / "runs"
    pipe = PipeCommand(f"echo run >> {counter}; cat {f}", "wav.scp", 1)
    for start in (0.0, 0.25, 0.5):
        load_audio(pipe, RATE, start, 0.25)
    assert counter.read_text() == "run\n"
