"""Inputs of ``hybrid-asr decode`` (wav.scp with segments, directories, manifests), long-audio
cutting and word boundaries from phone alignments."""

from pathlib import Path

import numpy as np
import pytest

from hybrid_asr.data.inputs import collect_inputs, read_wav_scp
from hybrid_asr.errors import AlignmentError, InputError
from hybrid_asr.features.segment import split_points


def test_wav_scp_with_segments_and_relative_paths(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"")
    (tmp_path / "wav.scp").write_text("r1 a.wav\nr2 /abs/b.flac\n")
    assert [(s.id, s.path, s.start, s.duration) for s in read_wav_scp(tmp_path / "wav.scp")] == \
        [("r1", tmp_path / "a.wav", 0.0, None), ("r2", Path("/abs/b.flac"), 0.0, None)]
    (tmp_path / "segments").write_text("u1 r1 0.5 2.0\nu2 r2 1 -1\n")
    segs = read_wav_scp(tmp_path / "wav.scp")
    assert [(s.id, s.recording, s.start, s.duration) for s in segs] == [("u1", "r1", 0.5, 1.5), ("u2", "r2", 1.0, None)]
    (tmp_path / "segments").write_text("u1 r9 0 1\n")
    with pytest.raises(InputError) as info:
        read_wav_scp(tmp_path / "wav.scp")
    assert str(info.value) == f"{tmp_path / 'segments'}:1: recording r9 is not in wav.scp"


def test_piped_wav_scp_is_refused_with_the_line_and_the_option_named(tmp_path):
    (tmp_path / "wav.scp").write_text("r0 a.wav\nr1 sox x.wav -t wav - |\n")
    with pytest.raises(InputError) as info:
        read_wav_scp(tmp_path / "wav.scp")
    assert str(info.value) == (f"{tmp_path / 'wav.scp'}:2: recording r1: piped commands ('... |') are not run by "
                               "default; pass --allow-pipes to run it")


def test_wav_scp_is_read_as_import_kaldi_dir_reads_it(tmp_path):
    """One reader for both commands: BOM and CR LF dropped, duplicate ids refused naming both
    lines, segments' times checked as import-kaldi-dir checks them."""
    scp = tmp_path / "wav.scp"
    scp.write_bytes("\ufeffr1 /abs/a.wav\r\nr2\t/abs/b.wav\r\n".encode("utf-8"))
    assert [(s.id, s.path) for s in read_wav_scp(scp)] == [("r1", Path("/abs/a.wav")), ("r2", Path("/abs/b.wav"))]
    scp.write_text("r1 /abs/a.wav\nr2 /abs/b.wav\nr1 /abs/c.wav\n")
    with pytest.raises(InputError) as info:
        read_wav_scp(scp)
    assert str(info.value) == f"{scp}:3: duplicate id r1 (first on line 1)"
    scp.write_text("r1 /abs/a.wav\n")
    for line, problem in (("u1 r1 2.0 1.0", "segment u1 has bad times 2.0 1.0"),
                          ("u1 r1 0 x", "times 0 x are not numbers")):
        (tmp_path / "segments").write_text(line + "\n")
        with pytest.raises(InputError) as info:
            read_wav_scp(scp)
        assert str(info.value) == f"{tmp_path / 'segments'}:1: {problem}"


def test_relative_wav_scp_paths_the_working_directory_first_then_beside_the_scp(tmp_path, monkeypatch):
    """Kaldi's rule (the working directory) first, then the wav.scp's directory, for decode and
    import-kaldi-dir alike."""
    from hybrid_asr.data.kaldi_dir import resolve_audio_path

    work, data = tmp_path / "work", tmp_path / "data"
    (work / "wav").mkdir(parents=True)
    (data / "wav").mkdir(parents=True)
    for f in (work / "wav/both.wav", data / "wav/both.wav", data / "wav/beside.wav"):
        f.write_bytes(b"")
    scp = data / "wav.scp"
    scp.write_text("both wav/both.wav\nbeside wav/beside.wav\nnowhere wav/nowhere.wav\n")
    monkeypatch.chdir(work)
    expected = [Path("wav/both.wav"), data / "wav/beside.wav", Path("wav/nowhere.wav")]
    assert [s.path for s in read_wav_scp(scp)] == expected
    assert [resolve_audio_path(e, scp) for e in ("wav/both.wav", "wav/beside.wav", "wav/nowhere.wav")] == expected


def test_collect_inputs_searches_directories_and_reports_bad_inputs(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for name in ("d/sub/b.WAV", "d/a.flac", "d/notes.txt"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "empty").mkdir()
    segs, problems = collect_inputs([tmp_path / "d", tmp_path / "missing.wav", tmp_path / "empty"])
    assert [s.path.name for s in segs] == ["a.flac", "b.WAV"]
    assert [p for p, _ in problems] == [str(tmp_path / "missing.wav"), str(tmp_path / "empty")]
    assert "does not exist" in problems[0][1] and "no audio files" in problems[1][1]


def test_collect_inputs_reads_a_lhotse_cut_manifest(tmp_path):
    import torch
    import torchaudio
    from lhotse import CutSet, Recording, RecordingSet

    torchaudio.save(str(tmp_path / "x.wav"), torch.zeros(1, 16000), 8000)
    recordings = RecordingSet.from_recordings([Recording.from_file(tmp_path / "x.wav")])
    CutSet.from_manifests(recordings=recordings).to_file(tmp_path / "cuts.jsonl.gz")
    segs, problems = collect_inputs([tmp_path / "cuts.jsonl.gz"])
    assert not problems and len(segs) == 1
    assert segs[0].recording == "x" and segs[0].duration == pytest.approx(2.0)


def test_split_points_cut_long_audio_in_its_quietest_places():
    energy = np.full(1000, 10.0)
    energy[280:300] = 0.0  # a pause
    energy[560:580] = 0.0  # another
    cuts = split_points(energy, max_frames=400, min_frames=200, smooth=5)
    assert len(cuts) == 3 and 278 <= cuts[0] <= 302 and 558 <= cuts[1] <= 582
    assert all(b - a <= 400 for a, b in zip([0] + cuts, cuts + [1000]))
    assert split_points(energy[:400], 400, 200) == []


def test_word_spans_follow_pronunciations_and_skip_silence():
    from hybrid_asr.align.words import word_spans
    from hybrid_asr.lang import Lexicon

    lex = Lexicon([("A", ("AH",)), ("AB", ("AH", "B")), ("B", ("B",)), ("B", ("B", "IY"))])
    phones = [("SIL", 0, 5), ("AH", 5, 9), ("B", 9, 12), ("SIL", 12, 15), ("B", 15, 18), ("IY", 18, 22)]
    assert word_spans(phones, ["AB", "B"], lex) == [("AB", 5, 12), ("B", 15, 22)]
    # "A B B" needs backtracking: B's longest pronunciation (B IY) must not be taken first
    phones2 = [("AH", 0, 3), ("B", 3, 6), ("B", 6, 8), ("IY", 8, 10)]
    assert word_spans(phones2, ["A", "B", "B"], lex) == [("A", 0, 3), ("B", 3, 6), ("B", 6, 10)]
    with pytest.raises(AlignmentError):
        word_spans(phones2, ["AB"], lex)
