"""The audio input matrix of ``hybrid-asr decode``: every kind of file a user may hand it, good,
odd or damaged, in one batch; each gets the clean file's words, its words with a specific
warning, or a specific one-line error, and the batch goes on past the bad ones."""

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
import torchaudio
from conftest import FSDD, corpus_mark

from hybrid_asr.cli.main import main

pytestmark = corpus_mark(FSDD)

SOURCE = FSDD / "recordings" / "3_george_0.wav"  # "THREE", 8 kHz
WORDS = ["THREE"]


def _resampled(wave: np.ndarray, rate: int, new: int) -> np.ndarray:
    return torchaudio.functional.resample(torch.from_numpy(wave).float(), rate, new).numpy()


def _write_cases(d: Path):
    """``{file name: (expected words or None, expected error phrase or None, expected warning or None)}``"""
    wave, rate = soundfile.read(str(SOURCE), dtype="float64")
    rng = np.random.default_rng(0)
    cases = {}

    def audio(name, samples, sr=rate, subtype="PCM_16", fmt=None, words=WORDS, warning=None):
        soundfile.write(str(d / name), samples, sr, subtype=subtype, format=fmt)
        cases[name] = (words, None, warning)

    def raw(name, data: bytes, error):
        (d / name).write_bytes(data)
        cases[name] = (None, error, None)

    audio("clean.wav", wave)
    for sr in (16000, 22050, 44100, 48000):
        audio(f"rate{sr}.wav", np.clip(_resampled(wave, rate, sr), -1, 1), sr)
    audio("stereo.wav", np.stack([wave, wave], axis=1))
    audio("six_channels.wav", np.stack([wave] * 6, axis=1))
    audio("u8.wav", wave, subtype="PCM_U8", warning="8-bit samples: expect lower accuracy")
    audio("s24.wav", wave, subtype="PCM_24")
    audio("f32.wav", wave.astype(np.float32), subtype="FLOAT")
    audio("clean.flac", wave, subtype="PCM_16", fmt="FLAC")
    audio("clean.ogg", wave, subtype="VORBIS", fmt="OGG")
    audio("clean.mp3", wave, subtype="MPEG_LAYER_III", fmt="MP3")
    audio("silence.wav", np.zeros(2 * rate), words=[])
    audio("near_silence.wav", rng.integers(-1, 2, 2 * rate) / 32768.0, words=[])
    audio("dc_offset.wav", np.clip(wave + 2000 / 32768, -1, 1))
    audio("quiet.wav", wave * 0.1)
    audio("clipped.wav", np.clip(wave * 4, -1, 32767 / 32768))  # one sample at full scale: no warning
    audio("clipped_x16.wav", np.clip(wave * 16, -1, 1),
          warning="in runs of 3 or more at full scale; expect lower accuracy")
    zeros = np.zeros(30 * rate)
    audio("silence_around.wav", np.concatenate([zeros, wave, zeros]))
    noise = lambda n: rng.normal(0, 10 ** (-60 / 20), n)  # noqa: E731 - low-level background
    audio("noise_around.wav", np.concatenate([noise(2 * rate), wave, noise(2 * rate)]))
    bad = wave.astype(np.float32)
    bad[len(bad) // 3], bad[2 * len(bad) // 3] = np.nan, np.inf
    audio("nan_inf.wav", bad, subtype="FLOAT", warning="2 samples are NaN or infinite; set to 0")
    loud = wave.astype(np.float32) * 1.0
    loud[100] = 4.0
    audio("beyond_full_scale.wav", loud, subtype="FLOAT", warning="1 samples beyond full scale; clipped")
    # damaged and non-audio files
    good = (d / "clean.wav").read_bytes()
    padded = np.concatenate([np.zeros(rate // 2), wave, np.zeros(rate // 2)])
    soundfile.write(str(d / "tmp.wav"), padded, rate, subtype="PCM_16")
    whole = (d / "tmp.wav").read_bytes()
    (d / "tmp.wav").unlink()
    (d / "truncated_data.wav").write_bytes(whole[: 44 + 2 * (rate // 2 + len(wave))])  # cut after the speech
    cases["truncated_data.wav"] = (WORDS, None, "truncated: its header declares")
    raw("zero_bytes.wav", b"", "audio file is empty (0 bytes)")
    raw("not_audio.wav", b"this is plain text, not a RIFF file\n" * 20, "unsupported format or not audio (.wav): libsndfile cannot read it")
    raw("truncated_header.wav", good[:30], "WAV file with a damaged or truncated header")
    soundfile.write(str(d / "too_short.wav"), wave[:10], rate, subtype="PCM_16")
    cases["too_short.wav"] = (None, "audio too short", None)
    (d / "a_directory.wav").mkdir()
    cases["a_directory.wav"] = (None, None, None)  # a directory input: searched, holds no audio
    cases["missing.wav"] = (None, "does not exist", None)
    return cases


def test_every_audio_case_gives_its_words_warning_or_error(fsdd_exp, tmp_path, capsys, caplog):
    cases = _write_cases(tmp_path)
    inputs = [str(tmp_path / name) for name in cases]
    capsys.readouterr()
    with caplog.at_level(logging.WARNING):
        code = main(["decode", str(fsdd_exp / "dnn2"), *inputs, "--output", "json"])
    captured = capsys.readouterr()
    out = {Path(o["file"]).name: o for o in map(json.loads, captured.out.splitlines())}
    assert code == 2  # some failed, the rest were decoded
    failed = 0
    for name, (words, error, warning) in cases.items():
        o = out[name]
        if name == "a_directory.wav":
            assert "directory holds no audio files" in o["error"]
            failed += 1
        elif error is not None:
            assert error in o["error"] and name in o["error"], (name, o)
            assert "\n" not in o["error"]
            failed += 1
        else:
            assert "error" not in o, (name, o)
            assert o["words"] == words, (name, o)
        if warning is not None:
            assert any(warning in r.getMessage() and name in r.getMessage() for r in caplog.records), (name, warning)
    assert f"{len(cases)} segments, {len(cases) - failed} decoded, {failed} failed" in captured.err
    # a clean file gives no warning at all
    assert not any("clean" in r.getMessage() for r in caplog.records)


def test_untrimmed_decoding_of_silence_around_speech_is_what_trimming_fixes(fsdd_exp, tmp_path, capsys):
    """Without trimming, 30 s of digital silence on both sides makes words up; the default does not."""
    wave, rate = soundfile.read(str(SOURCE), dtype="float64")
    zeros = np.zeros(10 * rate)
    f = tmp_path / "padded.wav"
    soundfile.write(str(f), np.concatenate([zeros, wave, zeros]), rate, subtype="PCM_16")
    model = str(fsdd_exp / "dnn2")
    capsys.readouterr()
    assert main(["decode", model, str(f), "--output", "json"]) == 0
    trimmed = json.loads(capsys.readouterr().out)["words"]
    assert main(["decode", model, str(f), "--output", "json", "--no-trim", "--max-segment-seconds", "60"]) == 0
    whole = json.loads(capsys.readouterr().out)["words"]
    assert trimmed == WORDS and whole != WORDS


def test_decode_pipes_need_allow_pipes(fsdd_exp, tmp_path, capsys):
    """A wav.scp with a pipe entry: refused without --allow-pipes (one line naming the wav.scp
    line and the option, exit 2); with it the command's output is decoded like the file, and a
    failing command is one line naming its wav.scp line while the other entries are decoded."""
    scp = tmp_path / "wav.scp"
    scp.write_text(f"file {SOURCE}\npiped cat {SOURCE} |\nbroken cat {tmp_path / 'missing.wav'} |\n")
    model = str(fsdd_exp / "dnn2")
    capsys.readouterr()
    assert main(["decode", model, str(scp), "--output", "json"]) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"hybrid-asr decode: error: {scp}:2: recording piped: piped commands ('... |') are not run by default; "
        "pass --allow-pipes to run it",
        "hybrid-asr decode: 1 segments, 0 decoded, 1 failed"]
    assert main(["decode", model, str(scp), "--output", "json", "--allow-pipes"]) == 2
    captured = capsys.readouterr()
    out = {o["id"]: o for o in map(json.loads, captured.out.splitlines())}
    assert out["file"]["words"] == WORDS and out["piped"]["words"] == WORDS and out["piped"]["file"] == f"{scp}:2"
    assert captured.err.splitlines() == [
        f"hybrid-asr decode: error: {scp}:3: command 'cat {tmp_path / 'missing.wav'} |' failed with exit status 1: "
        f"cat: {tmp_path / 'missing.wav'}: No such file or directory",
        "hybrid-asr decode: 3 segments, 2 decoded, 1 failed"]


def test_decode_reads_the_channel_a_cut_names(fsdd_exp, tmp_path, capsys):
    """Two digits in one two-channel file, one per channel: each cut decodes its own channel."""
    from lhotse import CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet

    three, rate = soundfile.read(str(SOURCE), dtype="float64")
    seven, _ = soundfile.read(str(FSDD / "recordings" / "7_george_0.wav"), dtype="float64")
    n = max(len(three), len(seven))
    stereo = np.stack([np.pad(three, (0, n - len(three))), np.pad(seven, (0, n - len(seven)))], axis=1)
    f = tmp_path / "two.wav"
    soundfile.write(str(f), stereo, rate, subtype="PCM_16")
    recording = Recording.from_file(f, recording_id="two")
    sups = SupervisionSet.from_segments([SupervisionSegment(f"ch{c}", "two", 0.0, recording.duration, channel=c)
                                         for c in (0, 1)])
    cuts = CutSet.from_manifests(RecordingSet.from_recordings([recording]), sups)
    cuts.trim_to_supervisions(keep_overlapping=False).to_file(tmp_path / "cuts.jsonl.gz")
    capsys.readouterr()
    assert main(["decode", str(fsdd_exp / "dnn2"), str(tmp_path / "cuts.jsonl.gz"), "--output", "json"]) == 0
    out = {o["id"]: o["words"] for o in map(json.loads, capsys.readouterr().out.splitlines())}
    assert out == {"ch0": ["THREE"], "ch1": ["SEVEN"]}


_RSS_CHILD = """
import resource, sys
from hybrid_asr.cli.main import main
code = main(sys.argv[1:])
print("peak_rss_kb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def _decode_in_child(model: Path, audio: Path):
    out = subprocess.run([sys.executable, "-c", _RSS_CHILD, "--num-threads", "1", "decode", str(model), str(audio),
                          "--output", "json"], capture_output=True, text=True, check=True)
    rss = int(out.stderr.split("peak_rss_kb")[-1].split()[0])
    return json.loads(out.stdout)["words"], rss


def test_one_hour_file_decodes_in_bounded_memory(fsdd_exp, tmp_path):
    """An hour of near-silence with a digit every 5 minutes: the 12 digits, in the memory that a
    one-minute file needs (within 1.5x)."""
    wave, rate = soundfile.read(str(SOURCE), dtype="int16")
    rng = np.random.default_rng(1)
    hour = rng.integers(-1, 2, 3600 * rate).astype(np.int16)
    for k in range(12):
        at = (k * 300 + 150) * rate
        hour[at : at + len(wave)] = wave
    long_file, short_file = tmp_path / "hour.wav", tmp_path / "minute.wav"
    soundfile.write(str(long_file), hour, rate, subtype="PCM_16")
    soundfile.write(str(short_file), hour[120 * rate : 180 * rate], rate, subtype="PCM_16")
    long_words, long_rss = _decode_in_child(fsdd_exp / "dnn2", long_file)
    short_words, short_rss = _decode_in_child(fsdd_exp / "dnn2", short_file)
    assert long_words == WORDS * 12 and short_words == WORDS
    assert long_rss < 1.5 * short_rss, (long_rss, short_rss)


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_load_audio_reads_the_same_samples_through_every_path(tmp_path, suffix):
    """soundfile and torchaudio agree on integer PCM (the fallback path gives the same waveform)."""
    from hybrid_asr.features.audio import load_audio

    wave, rate = soundfile.read(str(SOURCE), dtype="float64")
    f = tmp_path / f"x{suffix}"
    soundfile.write(str(f), wave, rate, subtype="PCM_16")
    ours = load_audio(f, rate)
    theirs, _ = torchaudio.load(str(f))
    assert torch.allclose(ours, theirs[0] * 32768, atol=1e-3)


def test_align_audio_checks_the_transcript(fsdd_exp, capsys, caplog):
    model, lang, wav = str(fsdd_exp / "dnn2"), str(fsdd_exp / "lang"), str(SOURCE)
    capsys.readouterr()
    assert main(["align-audio", model, lang, wav, "THREE"]) == 0
    upper = capsys.readouterr().out
    assert main(["align-audio", model, lang, wav, "three"]) == 0  # uppercased, with a warning
    assert capsys.readouterr().out == upper
    assert any("lowercase words uppercased to match the lexicon: three" in r.getMessage() for r in caplog.records)
    for text, problem in (("", "empty transcript"), ("   ", "empty transcript"),
                          ("THREE FOOBAR", "not in the lexicon: FOOBAR")):
        assert main(["align-audio", model, lang, wav, text]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and problem in err[0] and "3_george_0.wav" in err[0], err


def test_file_names_with_whitespace_give_ids_safe_in_every_output_format(fsdd_exp, tmp_path, capsys, caplog):
    """Kaldi ids hold no whitespace: a space or TAB in a file name is percent-encoded in the id
    column of text output, in CTM and in JSON (whose "file" keeps the real path), with a warning."""
    wave, rate = soundfile.read(str(SOURCE), dtype="float64")
    names = ["space name.wav", "tab\tname.wav", "100%.wav"]
    for name in names:
        soundfile.write(str(tmp_path / name), wave, rate, subtype="PCM_16")
    inputs = [str(tmp_path / n) for n in names]
    model = str(fsdd_exp / "dnn2")
    capsys.readouterr()
    with caplog.at_level(logging.WARNING):
        assert main(["decode", model, *inputs]) == 0
    lines = capsys.readouterr().out.splitlines()
    ids = [str(tmp_path / n).replace("%", "%25").replace(" ", "%20").replace("\t", "%09") for n in names]
    assert [line.split("\t") for line in lines] == [[i, "THREE"] for i in ids]
    assert any("3 input ids hold whitespace or '%'" in r.getMessage() for r in caplog.records)
    assert main(["decode", model, *inputs, "--output", "ctm"]) == 0
    ctm = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert [(f[0], f[4]) for f in ctm] == [(i, "THREE") for i in ids] and {len(f) for f in ctm} == {6}
    assert main(["decode", model, *inputs, "--output", "json"]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(o["id"], o["file"]) for o in out] == list(zip(ids, inputs))


def test_final_lines_agree_and_give_no_speed_when_nothing_was_decoded(fsdd_exp, tmp_path, capsys, caplog):
    model = str(fsdd_exp / "dnn2")
    (tmp_path / "wav.scp").write_text("r1 sox x.wav -t wav - |\n")
    with caplog.at_level(logging.INFO):
        assert main(["decode", model, str(tmp_path / "wav.scp"), str(tmp_path / "missing.wav")]) == 2
    err = capsys.readouterr().err
    assert "hybrid-asr decode: 2 segments, 0 decoded, 2 failed" in err
    final = [r.getMessage() for r in caplog.records if "segments, " in r.getMessage()]
    assert final == ["2 segments, 0 decoded, 2 failed: 0.0 s of audio in " + final[0].split(" in ")[1]]
    assert "real-time factor" not in final[0]
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert main(["decode", model, str(SOURCE), str(tmp_path / "missing.wav")]) == 2
    assert "hybrid-asr decode: 2 segments, 1 decoded, 1 failed" in capsys.readouterr().err
    final = [r.getMessage() for r in caplog.records if "segments, " in r.getMessage()]
    assert final[0].startswith("2 segments, 1 decoded, 1 failed: ") and "real-time factor" in final[0]
