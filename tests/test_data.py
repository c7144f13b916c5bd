"""Tests of hybrid_asr.data: AN4/FSDD preparation, manifest I/O, Kaldi data dir import."""

import gzip
import tarfile
from pathlib import Path

import pytest
import torch
import torchaudio
from lhotse import SupervisionSegment, SupervisionSet

from hybrid_asr.data import (
    SPLIT_FILES,
    import_kaldi_data_dir,
    normalize_text,
    prepare_an4,
    prepare_fsdd,
    read_split,
    resolve_corpus_dir,
    validate_split,
    write_split,
)
from hybrid_asr.data import an4 as an4_module
from hybrid_asr.data import fsdd as fsdd_module
from hybrid_asr.data.manifests import download_and_extract
from hybrid_asr.errors import InputError

from conftest import AN4, FSDD

AN4_DIR = AN4
FSDD_DIR = FSDD


def _require(path: Path) -> Path:
    if not path.is_dir():
        pytest.skip(f"shared corpus {path} not available")  # never reached when corpora are required
    return path


@pytest.fixture(scope="module")
def an4():
    return prepare_an4(_require(AN4_DIR))


@pytest.fixture(scope="module")
def fsdd_small():
    return prepare_fsdd(_require(FSDD_DIR), speakers=["george", "theo"], max_per_digit_speaker=2)


# ---------------------------------------------------------------------------------------------
# AN4 from the shared copy


def test_an4_counts(an4):
    assert set(an4) == {"train", "test"}
    for split, expected in (("train", 948), ("test", 130)):
        recordings, supervisions = an4[split]
        assert len(recordings) == expected
        assert len(supervisions) == expected


def test_an4_known_train_utterance(an4):
    recordings, supervisions = an4["train"]
    sup = supervisions["an251-fash-b"]
    assert sup.text == "YES"
    assert sup.speaker == "fash"
    assert sup.recording_id == "an251-fash-b"
    assert sup.start == 0.0 and sup.channel == 0 and sup.language == "English"
    meta = torchaudio.info(str(AN4_DIR / "wav/an4_clstk/fash/an251-fash-b.wav"))
    rec = recordings["an251-fash-b"]
    assert rec.sampling_rate == meta.sample_rate == 16000
    assert rec.num_samples == meta.num_frames
    assert sup.duration == pytest.approx(meta.num_frames / meta.sample_rate)
    assert 0.2 < sup.duration < 20


def test_an4_known_test_utterance(an4):
    _, supervisions = an4["test"]
    sup = supervisions["an406-fcaw-b"]
    assert sup.text == "RUBOUT G M E F THREE NINE"  # test transcription has no <s> </s>
    assert sup.speaker == "fcaw"
    meta = torchaudio.info(str(AN4_DIR / "wav/an4test_clstk/fcaw/an406-fcaw-b.wav"))
    assert sup.duration == pytest.approx(meta.num_frames / meta.sample_rate)


def test_an4_texts_have_no_markers(an4):
    for _, supervisions in an4.values():
        for sup in supervisions:
            assert sup.text == normalize_text(sup.text) and sup.text
            assert not {"<s>", "</s>", "<sil>"} & set(sup.text.split())
            assert "(" not in sup.text


def test_resolve_corpus_dir_finds_shared_copy(tmp_path):
    _require(AN4_DIR)

    def no_download(_):
        raise AssertionError("must not download when the shared copy exists")

    assert resolve_corpus_dir(None, "an4", no_download, tmp_path) == AN4_DIR
    assert resolve_corpus_dir(str(AN4_DIR), "an4", no_download, tmp_path) == AN4_DIR
    with pytest.raises(InputError, match="nonexistent"):
        resolve_corpus_dir(str(tmp_path / "nonexistent"), "an4", no_download, tmp_path)


def test_resolve_corpus_dir_downloads_when_missing(tmp_path):
    calls = []

    def fake_download(target: Path) -> Path:
        calls.append(target)
        return target / "corpus"

    got = resolve_corpus_dir(None, "no-such-corpus-xyz", fake_download, tmp_path)
    assert calls == [tmp_path] and got == tmp_path / "corpus"


# ---------------------------------------------------------------------------------------------
# Manifest I/O and validation


def test_write_read_split_round_trip(tmp_path, fsdd_small):
    recordings, supervisions = fsdd_small["test"]
    write_split(tmp_path, "test", recordings, supervisions)
    for name in SPLIT_FILES:
        path = tmp_path / name.format(split="test")
        with gzip.open(path, "rt") as f:  # really gzipped JSONL
            assert f.readline().startswith("{")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        n.format(split="test") for n in SPLIT_FILES
    )  # no temporary files left behind
    recordings2, supervisions2 = read_split(tmp_path, "test")
    assert list(recordings2) == list(recordings)
    assert list(supervisions2) == list(supervisions)


def test_read_split_missing_file_named(tmp_path, fsdd_small):
    with pytest.raises(InputError, match="recordings_dev.jsonl.gz"):
        read_split(tmp_path, "dev")
    recordings, supervisions = fsdd_small["test"]
    write_split(tmp_path, "dev", recordings, supervisions)
    (tmp_path / "supervisions_dev.jsonl.gz").unlink()
    with pytest.raises(InputError, match="supervisions_dev.jsonl.gz"):
        read_split(tmp_path, "dev")


def test_read_split_rejects_dangling_supervision(tmp_path, fsdd_small):
    recordings, supervisions = fsdd_small["test"]
    ghost = SupervisionSegment("x", recording_id="ghost", start=0, duration=1, text="A",
                               speaker="s")
    bad = SupervisionSet.from_segments(list(supervisions) + [ghost])
    write_split(tmp_path, "test", recordings, bad)
    with pytest.raises(InputError, match="supervision x refers to unknown recording ghost"):
        read_split(tmp_path, "test")


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(text="  "), "empty text"),
        (dict(text=None), "empty text"),
        (dict(speaker=None), "no speaker"),
        (dict(duration=0.0), "duration"),
        (dict(start=0.5, duration=100.0), "outside recording"),
    ],
)
def test_validate_split_rejects(change, message, fsdd_small):
    recordings, supervisions = fsdd_small["test"]
    sup = supervisions[0]
    fields = dict(id=sup.id, recording_id=sup.recording_id, start=sup.start,
                  duration=sup.duration, text=sup.text, speaker=sup.speaker)
    fields.update(change)
    bad = SupervisionSet.from_segments([SupervisionSegment(**fields)])
    with pytest.raises(InputError, match=message) as info:
        validate_split(recordings, bad, Path("somewhere.jsonl.gz"))
    assert str(info.value).startswith("somewhere.jsonl.gz: ")
    validate_split(recordings, supervisions, Path("x"))  # the unmodified split is fine


def test_normalize_text():
    assert normalize_text("  hello \t World\n") == "HELLO WORLD"


# ---------------------------------------------------------------------------------------------
# AN4 parsing errors, on a tiny fake tree with generated audio


def _fake_an4(root: Path, transcription: str, fileids: str, split: str = "train") -> Path:
    wav_dir = root / "wav" / "an4_clstk" / "spk1"
    wav_dir.mkdir(parents=True)
    for i, utt in enumerate(("u1-spk1-b", "u2-spk1-b")):
        torchaudio.save(str(wav_dir / f"{utt}.wav"), torch.zeros(1, 1600 * (i + 1)), 16000)
    (root / "etc").mkdir()
    for s in ("train", "test"):
        (root / "etc" / f"an4_{s}.transcription").write_text(transcription)
        (root / "etc" / f"an4_{s}.fileids").write_text(fileids)
    return root


GOOD_IDS = "an4_clstk/spk1/u1-spk1-b\nan4_clstk/spk1/u2-spk1-b\n"


def test_fake_an4_ok(tmp_path):
    root = _fake_an4(tmp_path, "<s> hello  world </s> (u1-spk1-b)\nSTOP <sil> (u2-spk1-b)\n",
                     GOOD_IDS)
    recordings, supervisions = prepare_an4(root)["train"]
    assert [s.text for s in supervisions] == ["HELLO WORLD", "STOP"]
    assert [s.speaker for s in supervisions] == ["spk1", "spk1"]
    assert [r.duration for r in recordings] == [0.1, 0.2]


def test_an4_malformed_transcription_line(tmp_path):
    root = _fake_an4(tmp_path, "<s> HELLO </s> (u1-spk1-b)\n<s> NO ID HERE </s>\n", GOOD_IDS)
    with pytest.raises(InputError) as info:
        prepare_an4(root)
    assert "an4_train.transcription:2:" in str(info.value)


def test_an4_transcription_without_words(tmp_path):
    root = _fake_an4(tmp_path, "<s> HELLO </s> (u1-spk1-b)\n<s> </s> (u2-spk1-b)\n", GOOD_IDS)
    with pytest.raises(InputError, match=r"an4_train.transcription:2: .*no words"):
        prepare_an4(root)


def test_an4_mismatched_ids(tmp_path):
    root = _fake_an4(tmp_path, "<s> A </s> (u2-spk1-b)\n<s> B </s> (u1-spk1-b)\n", GOOD_IDS)
    with pytest.raises(InputError, match=r"an4_train.transcription:1: .*u2-spk1-b.*fileids line 1"):
        prepare_an4(root)


def test_an4_mismatched_lengths(tmp_path):
    root = _fake_an4(tmp_path, "<s> A </s> (u1-spk1-b)\n", GOOD_IDS)
    with pytest.raises(InputError, match="an4_train.transcription: has 1 utterances"):
        prepare_an4(root)


def test_an4_missing_audio(tmp_path):
    ids = GOOD_IDS.replace("u2-spk1-b", "u3-spk1-b")
    root = _fake_an4(tmp_path, "<s> A </s> (u1-spk1-b)\n<s> B </s> (u3-spk1-b)\n", ids)
    with pytest.raises(InputError, match=r"u3-spk1-b\.wav: audio file"):
        prepare_an4(root)


# ---------------------------------------------------------------------------------------------
# FSDD


def test_fsdd_split_by_index(fsdd_small):
    train_r, train_s = fsdd_small["train"]
    test_r, test_s = fsdd_small["test"]
    # 10 digits x 2 speakers x 2 files per split
    assert len(train_s) == len(test_s) == len(train_r) == len(test_r) == 40
    assert {int(s.id.split("_")[2]) for s in test_s} == {0, 1}
    assert {int(s.id.split("_")[2]) for s in train_s} == {5, 6}
    assert {s.speaker for s in train_s} == {"george", "theo"}
    sup = test_s["7_theo_1"]
    assert sup.text == "SEVEN" and sup.speaker == "theo"
    assert test_r["7_theo_1"].sampling_rate == 8000


def test_fsdd_full_split_counts():
    full = prepare_fsdd(_require(FSDD_DIR), speakers=["jackson"])
    assert len(full["test"][1]) == 10 * 5
    assert len(full["train"][1]) == 10 * 45
    assert all(int(s.id.split("_")[2]) < 5 for s in full["test"][1])
    assert all(int(s.id.split("_")[2]) >= 5 for s in full["train"][1])


def test_fsdd_malformed_name(tmp_path):
    (tmp_path / "recordings").mkdir()
    torchaudio.save(str(tmp_path / "recordings" / "1_bob_0.wav"), torch.zeros(1, 800), 8000)
    torchaudio.save(str(tmp_path / "recordings" / "one_bob_0.wav"), torch.zeros(1, 800), 8000)
    with pytest.raises(InputError, match="one_bob_0.wav"):
        prepare_fsdd(tmp_path)


def test_fsdd_unknown_speaker():
    with pytest.raises(InputError, match="nobody"):
        prepare_fsdd(_require(FSDD_DIR), speakers=["nobody"])


# ---------------------------------------------------------------------------------------------
# Kaldi data directories

KALDI_FILES = ["0_george_0", "3_jackson_12", "9_theo_4"]
KALDI_WORDS = {"0_george_0": "zero", "3_jackson_12": "Three", "9_theo_4": "NINE"}


def _wav(stem: str) -> Path:
    return FSDD_DIR / "recordings" / f"{stem}.wav"


def _write_lines(path: Path, lines):
    path.write_text("".join(f"{line}\n" for line in lines))


def _kaldi_dir(root: Path) -> Path:
    _require(FSDD_DIR)
    root.mkdir(parents=True, exist_ok=True)
    _write_lines(root / "wav.scp", [f"{s} {_wav(s)}" for s in KALDI_FILES])
    _write_lines(root / "text", [f"{s} {KALDI_WORDS[s]}" for s in KALDI_FILES])
    _write_lines(root / "utt2spk", [f"{s} {s.split('_')[1]}" for s in KALDI_FILES])
    return root


def test_kaldi_import_whole_recordings(tmp_path):
    recordings, supervisions = import_kaldi_data_dir(_kaldi_dir(tmp_path / "train"))
    assert sorted(r.id for r in recordings) == sorted(KALDI_FILES)
    for stem in KALDI_FILES:
        meta = torchaudio.info(str(_wav(stem)))
        sup = supervisions[stem]
        assert sup.recording_id == stem
        assert sup.text == KALDI_WORDS[stem].upper()
        assert sup.speaker == stem.split("_")[1]
        assert recordings[stem].sampling_rate == meta.sample_rate == 8000
        assert sup.start == 0.0
        # lhotse floors durations to milliseconds
        assert sup.duration == pytest.approx(meta.num_frames / meta.sample_rate, abs=1e-3)


def test_kaldi_import_with_segments(tmp_path):
    root = _kaldi_dir(tmp_path)
    # two segments of 0_george_0 and one of 9_theo_4 (end -1: to the end of the recording)
    _write_lines(root / "wav.scp", [f"rec{i} {_wav(s)}" for i, s in enumerate(KALDI_FILES)])
    _write_lines(root / "segments", ["a rec0 0.0 0.2", "b rec0 0.2 0.3", "c rec2 0.1 -1"])
    _write_lines(root / "text", ["a zero one", "b two", "c three"])
    _write_lines(root / "utt2spk", ["a george", "b george", "c theo"])
    recordings, supervisions = import_kaldi_data_dir(root)
    assert len(recordings) == 3 and len(supervisions) == 3
    a, b, c = supervisions["a"], supervisions["b"], supervisions["c"]
    assert (a.recording_id, a.start, a.text, a.speaker) == ("rec0", 0.0, "ZERO ONE", "george")
    assert a.duration == pytest.approx(0.2) and b.duration == pytest.approx(0.1)
    assert (b.start, b.text) == (0.2, "TWO")
    theo = torchaudio.info(str(_wav("9_theo_4")))
    assert c.recording_id == "rec2" and c.speaker == "theo"
    assert c.end == pytest.approx(theo.num_frames / theo.sample_rate, abs=1e-3)


def test_kaldi_text_utt_missing_from_utt2spk(tmp_path):
    root = _kaldi_dir(tmp_path)
    _write_lines(root / "text", [f"{s} {KALDI_WORDS[s]}" for s in KALDI_FILES] + ["extra hello"])
    with pytest.raises(InputError, match=r"text:4: utterance extra is not in utt2spk"):
        import_kaldi_data_dir(root)


def test_kaldi_utt2spk_utt_missing_from_text(tmp_path):
    root = _kaldi_dir(tmp_path)
    _write_lines(root / "text", [f"{s} {KALDI_WORDS[s]}" for s in KALDI_FILES[:2]])
    with pytest.raises(InputError, match=r"utt2spk:3: utterance 9_theo_4 is not in text"):
        import_kaldi_data_dir(root)


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("utt2spk", ["0_george_0 george extra"], r"utt2spk:1: expected 2 fields"),
        ("text", ["0_george_0"], r"text:1: expected at least 2 fields"),
        ("wav.scp", ["0_george_0 /no/such/file.wav"], r"wav.scp:1: audio file /no/such"),
        ("wav.scp", ["0_george_0 sox x.sph -t wav - |"],
         r"wav.scp:1: recording 0_george_0: piped commands \('... \|'\) are not run by default; pass --allow-pipes "
         r"to run it$"),
        ("wav.scp", [f"3_jackson_12 {_wav('3_jackson_12')}"], r"wav.scp:2: duplicate id"),
    ],
)
def test_kaldi_malformed_files(tmp_path, name, content, expected):
    root = _kaldi_dir(tmp_path)
    original = (root / name).read_text().splitlines()
    _write_lines(root / name, content + original[1:])
    with pytest.raises(InputError, match=expected):
        import_kaldi_data_dir(root)


@pytest.mark.parametrize(
    "bad_line, expected",
    [
        ("9_theo_4 9_theo_4 0.5 0.1", "segment 9_theo_4 has bad times"),
        ("9_theo_4 9_theo_4 0.5", "expected 4 fields, got 3"),
        ("9_theo_4 9_theo_4 0 x", "times 0 x are not numbers"),
        ("9_theo_4 nowhere 0 1", "recording nowhere is not in wav.scp"),
    ],
)
def test_kaldi_bad_segments(tmp_path, bad_line, expected):
    root = _kaldi_dir(tmp_path)
    _write_lines(root / "segments", [f"{s} {s} 0 0.1" for s in KALDI_FILES[:2]] + [bad_line])
    with pytest.raises(InputError, match=rf"segments:3: {expected}"):
        import_kaldi_data_dir(root)


def test_kaldi_missing_required_file(tmp_path):
    root = _kaldi_dir(tmp_path)
    (root / "utt2spk").unlink()
    with pytest.raises(InputError, match=r"utt2spk: required file does not exist"):
        import_kaldi_data_dir(root)


def test_kaldi_pipes_need_allow_pipes_and_train_through_the_shared_loader(tmp_path, capsys):
    """``import-kaldi-dir``: a pipe entry is refused without ``--allow-pipes`` (exit 1, one line);
    with it the command is run for the header (no kaldi_native_io), the recording keeps it as a
    lhotse command source, and the training loader reads the same samples as the file."""
    from hybrid_asr.cli.main import main
    from hybrid_asr.features.audio import load_audio, load_recording

    root = _kaldi_dir(tmp_path / "kaldi")
    wav = _wav("3_jackson_12")
    _write_lines(root / "wav.scp", [f"0_george_0 {_wav('0_george_0')}", f"3_jackson_12 cat {wav} |",
                                    f"9_theo_4 {_wav('9_theo_4')}"])
    out = tmp_path / "manifests"
    capsys.readouterr()
    assert main(["import-kaldi-dir", str(root), str(out), "--split", "train"]) == 1
    assert capsys.readouterr().err == (f"hybrid-asr import-kaldi-dir: error: {root / 'wav.scp'}:2: recording "
                                       "3_jackson_12: piped commands ('... |') are not run by default; pass "
                                       "--allow-pipes to run it\n")
    assert main(["import-kaldi-dir", str(root), str(out), "--split", "train", "--allow-pipes"]) == 0
    recordings, supervisions = read_split(out, "train")
    rec = recordings["3_jackson_12"]
    assert (rec.sources[0].type, rec.sources[0].source.strip()) == ("command", f"cat {wav}")
    assert rec.duration == pytest.approx(torchaudio.info(str(wav)).num_frames / 8000, abs=1e-3)
    sup = supervisions["3_jackson_12"]
    assert torch.equal(load_recording(rec, 8000, sup.start, sup.duration, sup.channel),
                       load_audio(wav, 8000, sup.start, sup.duration))
    for command, problem in (("exit 3", "command 'exit 3 |' failed with exit status 3"),
                             ("echo hello", "output of command 'echo hello |' is not audio: libsndfile cannot read it")):
        _write_lines(root / "wav.scp", [f"0_george_0 {_wav('0_george_0')}", f"3_jackson_12 {command} |",
                                        f"9_theo_4 {_wav('9_theo_4')}"])
        assert main(["import-kaldi-dir", str(root), str(out), "--split", "train", "--allow-pipes"]) == 1
        assert capsys.readouterr().err == f"hybrid-asr import-kaldi-dir: error: {root / 'wav.scp'}:2: {problem}\n"


def test_kaldi_relative_paths_the_working_directory_first_then_beside_wav_scp(tmp_path, monkeypatch):
    """The rule decode uses too: a relative path is Kaldi's (working directory) if the file is
    there, else the wav.scp's directory; the manifest stores the path found."""
    import shutil

    root = _kaldi_dir(tmp_path / "data")
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(_wav("0_george_0"), work / "0_george_0.wav")
    shutil.copy(_wav("3_jackson_12"), root / "3_jackson_12.wav")
    _write_lines(root / "wav.scp", ["0_george_0 0_george_0.wav", "3_jackson_12 3_jackson_12.wav",
                                    f"9_theo_4 {_wav('9_theo_4')}"])
    monkeypatch.chdir(work)
    recordings, _ = import_kaldi_data_dir(root)
    assert [recordings[r].sources[0].source for r in ("0_george_0", "3_jackson_12", "9_theo_4")] == \
        ["0_george_0.wav", str(root / "3_jackson_12.wav"), str(_wav("9_theo_4"))]
    _write_lines(root / "wav.scp", ["0_george_0 nowhere.wav", "3_jackson_12 3_jackson_12.wav",
                                    f"9_theo_4 {_wav('9_theo_4')}"])
    with pytest.raises(InputError) as info:
        import_kaldi_data_dir(root)
    assert str(info.value) == f"{root / 'wav.scp'}:1: audio file nowhere.wav does not exist"


# ---------------------------------------------------------------------------------------------
# Download helpers, offline: a local tarball served through a file:// URL


def _tarball(tmp_path: Path, files) -> str:
    src = tmp_path / "src"
    for rel in files:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text("x\n")
    archive = tmp_path / "corpus.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / Path(files[0]).parts[0], arcname=Path(files[0]).parts[0])
    return archive.as_uri()


def test_download_an4_offline(tmp_path, monkeypatch):
    url = _tarball(tmp_path, ["an4/etc/an4_train.fileids", "an4/wav/x.txt"])
    monkeypatch.setattr(an4_module, "AN4_URL", url)
    target = tmp_path / "downloads"
    assert an4_module.download_an4(target) == target / "an4"
    assert (target / "an4" / "etc" / "an4_train.fileids").is_file()
    (tmp_path / "corpus.tar.gz").unlink()  # a second call must not download again
    assert an4_module.download_an4(target) == target / "an4"


def test_download_fsdd_offline(tmp_path, monkeypatch):
    url = _tarball(tmp_path, ["fsdd-master/recordings/0_a_0.wav"])
    monkeypatch.setattr(fsdd_module, "FSDD_URL", url)
    assert fsdd_module.download_fsdd(tmp_path / "dl") == tmp_path / "dl" / "fsdd-master"


def test_download_rejects_escaping_archive(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    (tmp_path / "payload").write_text("x")
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "payload", arcname="../escaped")
    with pytest.raises(InputError, match="escapes"):
        download_and_extract(archive.as_uri(), tmp_path / "dl")
    assert not (tmp_path / "escaped").exists()


def test_failed_download_is_one_line_naming_the_url_and_corpus_dir(tmp_path):
    """No network (here: a file URL that does not exist): an InputError naming the URL and the
    way out, and no partial archive left behind."""
    url = (tmp_path / "missing.tar.gz").as_uri()
    with pytest.raises(InputError) as e:
        download_and_extract(url, tmp_path / "dl")
    message = str(e.value)
    assert message.startswith(f"{url}: download failed (") and "--corpus-dir" in message and "\n" not in message
    assert not list((tmp_path / "dl").iterdir())


def test_dev_speakers_are_held_out_within_each_group():
    from hybrid_asr.data.split import choose_dev_speakers

    speakers = [f"f{i}" for i in range(10)] + [f"m{i}" for i in range(30)]
    groups = {s: s[0] for s in speakers}
    dev = choose_dev_speakers(speakers * 3, 0.1, seed=1, groups=groups)
    assert len([s for s in dev if s[0] == "f"]) == 1 and len([s for s in dev if s[0] == "m"]) == 3
    assert dev == choose_dev_speakers(list(reversed(speakers)), 0.1, seed=1, groups=groups)
    assert dev != choose_dev_speakers(speakers, 0.1, seed=2, groups=groups)
    few = choose_dev_speakers(["a", "b"], 0.1)
    assert len(few) == 1  # at least one held out, at least one kept


def test_split_by_speakers_keeps_recordings_with_their_speakers(tmp_path):
    from lhotse import AudioSource, Recording, RecordingSet

    from hybrid_asr.data.split import split_by_speakers
    from hybrid_asr.errors import HybridAsrError

    recs = RecordingSet.from_recordings([Recording(f"r{i}", [AudioSource("file", [0], "x.wav")], 16000, 16000, 1.0)
                                         for i in range(4)])
    sups = SupervisionSet.from_segments([SupervisionSegment(f"r{i}", f"r{i}", 0, 1.0, speaker=f"s{i % 2}")
                                         for i in range(4)])
    (rest_r, rest_s), (dev_r, dev_s) = split_by_speakers(recs, sups, {"s1"})
    assert sorted(r.id for r in dev_r) == ["r1", "r3"] and {s.speaker for s in dev_s} == {"s1"}
    assert sorted(r.id for r in rest_r) == ["r0", "r2"]
    shared = SupervisionSet.from_segments(list(sups) + [SupervisionSegment("x", "r0", 0, 0.5, speaker="s1")])
    with pytest.raises(HybridAsrError, match="recording r0 has speakers on both sides"):
        split_by_speakers(recs, shared, {"s1"})
