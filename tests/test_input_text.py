"""Bad text and resource inputs: each gives the right answer, a warning that says what was done, or
an InputError naming the file and line (issue "Robustness and trust").

Corpus-free: audio is a few generated WAV files, lexicons and LMs are written here.
"""

import logging
import wave
from pathlib import Path

import pytest

from hybrid_asr.data.an4 import prepare_an4_split
from hybrid_asr.data.kaldi_dir import import_kaldi_data_dir, read_kaldi_table, validate_kaldi_data_dir
from hybrid_asr.errors import HybridAsrError, InputError
from hybrid_asr.lang import Lang, LangConfig, Lexicon, prepare_lang, read_lexicon
from hybrid_asr.errors import ConfigError
from hybrid_asr.lang.lm import ArpaScorer, add_vocabulary, arpa_sizes, arpa_to_g, train_arpa, validate_arpa
from hybrid_asr.lang.text import check_transcript_words
from hybrid_asr.text_files import clean_transcript, read_clean_lines, read_text_lines
from hybrid_asr.scoring import read_transcripts

ZWSP, ZWNJ, ZWJ, BOM, WJ, NBSP = "\u200b", "\u200c", "\u200d", "\ufeff", "\u2060", "\u00a0"


def _wav(path: Path, seconds: float = 0.5, rate: int = 8000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x00" * int(seconds * rate))
    return path


def _kaldi_dir(root: Path, text: bytes, utts=("u1", "u2", "u3")) -> Path:
    """A Kaldi data dir of whole recordings u1.. (speaker s1), with ``text`` written as given."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "wav.scp").write_text("".join(f"{u} {_wav(root / 'audio' / f'{u}.wav')}\n" for u in utts))
    (root / "utt2spk").write_text("".join(f"{u} s1\n" for u in utts))
    (root / "text").write_bytes(text)
    return root


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


# ------------------------------------------------------------------ clean_transcript, read_text_lines
def test_clean_transcript_removes_zero_width_characters_with_a_note():
    text, notes = clean_transcript(f"HEL{ZWSP}LO W{ZWNJ}OR{ZWJ}LD{WJ} A{BOM}B", "text", 7)
    assert text == "HELLO WORLD AB"
    assert len(notes) == 1 and notes[0].startswith("text:7: removed 5 invisible characters (U+200B ZERO WIDTH SPACE")
    assert "U+FEFF" in notes[0] and "U+2060" in notes[0]


@pytest.mark.parametrize("raw", ["HELLO\tWORLD", "  HELLO   WORLD  ", f"HELLO{NBSP}WORLD", "HELLO WORLD\r",
                                 "HELLO\u2003\u3000WORLD", "HELLO\x0bWORLD"])
def test_clean_transcript_normalizes_odd_whitespace_silently(raw):
    assert clean_transcript(raw, "text", 1) == ("HELLO WORLD", [])


def test_clean_transcript_composes_to_nfc():
    assert clean_transcript("CAFE\u0301", "text")[0] == "CAF\u00c9"


@pytest.mark.parametrize("raw, phrase", [("A\x00B", r"control character U\+0000 \(is the file UTF-16"),
                                         ("A\x07B", "control character U\\+0007"),
                                         ("A\x7fB", "control character U\\+007F")])
def test_clean_transcript_refuses_control_characters(raw, phrase):
    with pytest.raises(InputError, match=rf"^text:4: contains the {phrase}") as info:
        clean_transcript(raw, "text", 4)
    assert info.value.line == 4


def test_read_text_lines_drops_bom_and_crlf(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"\xef\xbb\xbfu1 A\r\nu2 B\r\n")
    assert list(read_text_lines(path)) == [(1, "u1 A"), (2, "u2 B")]


def test_read_text_lines_names_the_line_of_a_bad_byte(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"u1 A\nu2 caf\xe9\n")
    with pytest.raises(InputError, match=r"f:2: is not valid UTF-8 \(byte 0xe9 at byte 7 of the line\)") as info:
        list(read_text_lines(path))
    assert info.value.line == 2 and info.value.path == path


def test_read_text_lines_refuses_old_mac_line_endings(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"u1 A\ru2 B\r")
    with pytest.raises(InputError, match=r"f:1: carriage return inside the line"):
        list(read_text_lines(path))


def test_read_clean_lines_caps_its_warnings(tmp_path, caplog):
    path = tmp_path / "f"
    path.write_text("".join(f"u{i} A{ZWSP}B\n" for i in range(8)), encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        assert [line for _, line in read_clean_lines(path)] == [f"u{i} AB" for i in range(8)]
    messages = _warnings(caplog)
    assert len(messages) == 6 and messages[0].startswith(f"{path}:1: removed 1 invisible character")
    assert messages[-1] == f"{path}: 3 more lines had invisible characters removed"


# ------------------------------------------------------------------ Kaldi data directories
def test_kaldi_text_not_utf8_names_file_and_line(tmp_path):
    root = _kaldi_dir(tmp_path, b"u1 HELLO\nu2 CAF\xc9\nu3 A\n")
    with pytest.raises(InputError, match=r"text:2: is not valid UTF-8") as info:
        import_kaldi_data_dir(root)
    assert info.value.path == root / "text" and info.value.line == 2


def test_kaldi_utt2spk_not_utf8(tmp_path):
    root = _kaldi_dir(tmp_path, b"u1 A\nu2 B\nu3 C\n")
    (root / "utt2spk").write_bytes(b"u1 s1\nu2 s1\nu3 \xff\n")
    with pytest.raises(InputError, match=r"utt2spk:3: is not valid UTF-8"):
        validate_kaldi_data_dir(root)


def test_kaldi_bom_crlf_tabs_nbsp_and_zero_width_are_cleaned(tmp_path, caplog):
    text = (BOM + "u1\thello  world\r\n" + f"u2 good{NBSP}bye\r\n" + f"u3 zero{ZWSP}width\r\n").encode("utf-8")
    root = _kaldi_dir(tmp_path, text)
    (root / "wav.scp").write_bytes(BOM.encode() + (root / "wav.scp").read_bytes().replace(b"\n", b"\r\n"))
    with caplog.at_level(logging.WARNING):
        recordings, supervisions = import_kaldi_data_dir(root)
    assert sorted(r.id for r in recordings) == ["u1", "u2", "u3"]
    assert {s.id: s.text for s in supervisions} == {"u1": "HELLO WORLD", "u2": "GOOD BYE", "u3": "ZEROWIDTH"}
    assert _warnings(caplog) == [f"{root / 'text'}:3: removed 1 invisible character (U+200B ZERO WIDTH SPACE)"]


@pytest.mark.parametrize("name", ["wav.scp", "utt2spk", "text", "segments"])
def test_kaldi_duplicate_ids_name_both_lines(tmp_path, name):
    root = _kaldi_dir(tmp_path, b"u1 A\nu2 B\nu3 C\n")
    (root / "segments").write_text("u1 u1 0 0.1\nu2 u2 0 0.1\nu3 u3 0 0.1\n")
    path = root / name
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines + [lines[1]]) + "\n")
    with pytest.raises(InputError, match=rf"{name}:4: duplicate id u2 \(first on line 2\)") as info:
        validate_kaldi_data_dir(root)
    assert info.value.line == 4


@pytest.mark.parametrize("line", ["u2", f"u2 {ZWSP}", "u2 \t "])
def test_kaldi_empty_transcript_is_an_error_naming_the_utterance(tmp_path, line):
    root = _kaldi_dir(tmp_path, f"u1 A\n{line}\nu3 C\n".encode("utf-8"))
    with pytest.raises(InputError, match=r"text:2: expected at least 2 fields, got 1: utterance u2 has an empty "
                                         "transcript"):
        import_kaldi_data_dir(root)


def test_kaldi_spk2gender_must_cover_every_speaker(tmp_path):
    root = _kaldi_dir(tmp_path, b"u1 A\nu2 B\nu3 C\n")
    (root / "spk2gender").write_text("s2 f\n")
    with pytest.raises(InputError, match=r"utt2spk:3: speaker s1 is not in spk2gender"):
        import_kaldi_data_dir(root)
    (root / "spk2gender").write_text("s1 f\n")
    _, supervisions = import_kaldi_data_dir(root)
    assert {s.gender for s in supervisions} == {"f"}


@pytest.mark.parametrize("times", ["nan 0.2", "0 inf"])
def test_kaldi_segment_times_must_be_finite(tmp_path, times):
    root = _kaldi_dir(tmp_path, b"u1 A\nu2 B\nu3 C\n")
    (root / "segments").write_text(f"u1 u1 0 0.1\nu2 u2 {times}\nu3 u3 0 0.1\n")
    with pytest.raises(InputError, match=rf"segments:2: times {times} are not finite numbers"):
        validate_kaldi_data_dir(root)


def test_read_kaldi_table_keeps_line_numbers_over_blank_free_files(tmp_path):
    path = tmp_path / "utt2spk"
    path.write_bytes(b"\xef\xbb\xbfa s1\r\nb\ts2\r\n")
    assert read_kaldi_table(path, 2, 2) == {"a": (1, ("s1",)), "b": (2, ("s2",))}


@pytest.mark.parametrize("damage, phrase", [("truncated", "cannot read manifest"), ("corrupt", "cannot read manifest"),
                                           ("empty", "manifest is empty")])
def test_damaged_manifest_is_an_input_error(tmp_path, damage, phrase):
    from lhotse import RecordingSet, SupervisionSegment, SupervisionSet

    from hybrid_asr.data.manifests import read_split, recording_from_file

    recording = recording_from_file(_wav(tmp_path / "r.wav"), "r")
    RecordingSet.from_recordings([recording]).to_file(tmp_path / "recordings_train.jsonl.gz")
    sups = [SupervisionSegment(id=f"s{i}", recording_id="r", start=0, duration=0.1, text="A" * 50) for i in range(50)]
    path = tmp_path / "supervisions_train.jsonl.gz"
    SupervisionSet.from_segments(sups).to_file(path)
    data = path.read_bytes()
    damaged = {"truncated": data[: len(data) // 2], "corrupt": data[:10] + b"\0" * 20 + data[30:], "empty": b""}
    path.write_bytes(damaged[damage])
    with pytest.raises(InputError, match=rf"supervisions_train.jsonl.gz: {phrase}"):
        read_split(tmp_path, "train")


# ------------------------------------------------------------------ scoring transcripts, AN4
def test_read_transcripts_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "ref.txt"
    path.write_bytes(b"u1 A\nu2 \xff\n")
    with pytest.raises(InputError, match=r"ref.txt:2: is not valid UTF-8"):
        read_transcripts(path)


def test_read_transcripts_cleans_bom_and_zero_width(tmp_path, caplog):
    path = tmp_path / "hyp.txt"
    path.write_text(f"{BOM}u1 HEL{ZWSP}LO\r\nu2\r\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        assert read_transcripts(path) == {"u1": ["HELLO"], "u2": []}
    assert _warnings(caplog) == [f"{path}:1: removed 1 invisible character (U+200B ZERO WIDTH SPACE)"]


def _an4(root: Path, transcription: bytes, utts=("an1-spk1-b", "an2-spk1-b")) -> Path:
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "an4_train.fileids").write_text("".join(f"spk1/{u}\n" for u in utts))
    (root / "etc" / "an4_train.transcription").write_bytes(transcription)
    for u in utts:
        _wav(root / "wav" / "spk1" / f"{u}.wav", rate=16000)
    return root


def test_an4_transcription_cleaned(tmp_path, caplog):
    root = _an4(tmp_path, f"{BOM}<s> YES{ZWSP} </s> (an1-spk1-b)\r\n<s>\tNO\u00a0 </s> (an2-spk1-b)\r\n".encode())
    with caplog.at_level(logging.WARNING):
        _, supervisions = prepare_an4_split(root, "train")
    assert [s.text for s in supervisions] == ["YES", "NO"]
    assert len(_warnings(caplog)) == 1 and "an4_train.transcription:1: removed 1 invisible" in _warnings(caplog)[0]


def test_an4_transcription_not_utf8(tmp_path):
    root = _an4(tmp_path, b"<s> YES </s> (an1-spk1-b)\n<s> N\xd6 </s> (an2-spk1-b)\n")
    with pytest.raises(InputError, match=r"an4_train.transcription:2: is not valid UTF-8"):
        prepare_an4_split(root, "train")


def test_an4_duplicate_utterance(tmp_path):
    root = _an4(tmp_path, b"<s> YES </s> (an1-spk1-b)\n<s> NO </s> (an1-spk1-b)\n", utts=("an1-spk1-b", "an1-spk1-b"))
    with pytest.raises(InputError, match=r"an4_train.transcription:2: duplicate utterance id an1-spk1-b "
                                         r"\(first on line 1\)"):
        prepare_an4_split(root, "train")


# ------------------------------------------------------------------ forced-alignment transcripts
LEXICON_WORDS = {"HELLO", "WORLD", "<UNK>"}


def test_check_transcript_words_accepts_lexicon_words():
    assert check_transcript_words(["HELLO", "WORLD"], LEXICON_WORDS, "t") == ["HELLO", "WORLD"]


@pytest.mark.parametrize("words", [[], "", f"  {ZWSP} \t"])
def test_check_transcript_words_empty(words):
    with pytest.raises(InputError, match=r"^align-audio transcript: empty transcript$"):
        check_transcript_words(words, LEXICON_WORDS, "align-audio transcript")


def test_check_transcript_words_uppercases_with_one_warning(caplog):
    with caplog.at_level(logging.WARNING):
        assert check_transcript_words("hello  World\thello", LEXICON_WORDS, "t") == ["HELLO", "WORLD", "HELLO"]
    assert _warnings(caplog) == ["t: lowercase words uppercased to match the lexicon: hello, World"]


def test_check_transcript_words_lists_unknown_words():
    with pytest.raises(InputError, match=r"^t: not in the lexicon: FOO, bar$"):
        check_transcript_words(["FOO", "hello", "bar", "FOO"], LEXICON_WORDS, "t")


# ------------------------------------------------------------------ lexicons
def _lexicon(tmp_path, content, name="lexicon.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def test_lexicon_word_without_phones(tmp_path):
    with pytest.raises(InputError, match=r"lexicon.txt:2: word 'B' has no phones") as info:
        read_lexicon(_lexicon(tmp_path, "A AH\nB \t\nC K\n"))
    assert info.value.line == 2


@pytest.mark.parametrize("phone", ["<eps>", "#1", "#0", "#", "<s>", "</s>"])
def test_lexicon_reserved_phone(tmp_path, phone):
    with pytest.raises(InputError, match=rf"lexicon.txt:2: phone {phone} of word B is a reserved symbol"):
        read_lexicon(_lexicon(tmp_path, f"A AH\nB {phone} AH\n"))


@pytest.mark.parametrize("word", ["<eps>", "#0", "#12"])
def test_lexicon_reserved_word(tmp_path, word):
    with pytest.raises(InputError, match=rf"lexicon.txt:2: word {word} is a reserved symbol"):
        read_lexicon(_lexicon(tmp_path, f"A AH\n{word} AH\n"))


def test_lexicon_comments_and_fillers_are_skipped(tmp_path):
    lex = read_lexicon(_lexicon(tmp_path, "# a comment\n;;; another\n<s> SIL\n</s> SIL\n<sil> SIL\nA AH0\n"))
    assert lex.entries == [("A", ("AH",))]


def test_lexicon_not_utf8(tmp_path):
    with pytest.raises(InputError, match=r"an4.dic:3: is not valid UTF-8"):
        read_lexicon(_lexicon(tmp_path, b"A AH\nB B IY\nCAF\xc9 K AE F EY\n", "an4.dic"))


def test_lexicon_bom_crlf_and_zero_width(tmp_path, caplog):
    path = _lexicon(tmp_path, f"{BOM}A\tAH0\r\nHEL{ZWSP}LO  HH AH L OW\r\n")
    with caplog.at_level(logging.WARNING):
        lex = read_lexicon(path)
    assert lex.entries == [("A", ("AH",)), ("HELLO", ("HH", "AH", "L", "OW"))]
    assert _warnings(caplog) == [f"{path}:2: removed 1 invisible character (U+200B ZERO WIDTH SPACE)"]


def test_lexicon_with_pronunciation_probabilities(tmp_path, caplog):
    path = _lexicon(tmp_path, "A 1.0 AH\nA 0.5 EY\nTHE 1 DH AH\n", "lexiconp.txt")
    with caplog.at_level(logging.WARNING):
        lex = read_lexicon(path)
    assert lex.entries == [("A", ("AH",)), ("A", ("EY",)), ("THE", ("DH", "AH"))]
    assert _warnings(caplog) == [f"{path}: pronunciation probabilities (Kaldi lexiconp.txt format) are ignored: "
                                 "every pronunciation of a word is equally likely"]


def test_lexicon_with_silence_probabilities(tmp_path):
    path = _lexicon(tmp_path, "A 1.0 0.2 1.1 0.9 AH\nB 0.8 0.1 0.95 1.05 B IY\n", "lexiconp_silprob.txt")
    assert read_lexicon(path).entries == [("A", ("AH",)), ("B", ("B", "IY"))]


def test_lexicon_probability_without_phones(tmp_path):
    with pytest.raises(InputError, match=r"lexiconp.txt:2: word 'B' has no phones"):
        read_lexicon(_lexicon(tmp_path, "A 1.0 AH\nB 1.0\n", "lexiconp.txt"))


def test_lexicon_digit_phones_are_not_stress_marks(tmp_path):
    lex = read_lexicon(_lexicon(tmp_path, "R2D2 R 2 D 2\nA AH0\n"))
    assert lex.entries == [("R2D2", ("R", "2", "D", "2")), ("A", ("AH",))]
    digits = read_lexicon(_lexicon(tmp_path, "1 1\n10 1 0\n"))  # not pronunciation probabilities
    assert digits.entries == [("1", ("1",)), ("10", ("1", "0"))]


def test_lang_reads_its_lexicon_verbatim(tmp_path):
    """A lang built with stress (or with digit units) keeps its phones when read back."""
    lexicon = Lexicon([("A", ("AH0",)), ("B2", ("B", "2"))])
    prepare_lang(lexicon, ["A B2", "B2 A"], tmp_path, LangConfig(lm_order=2))
    lang = Lang(tmp_path)
    assert dict(lang.lexicon.entries)["A"] == ("AH0",) and dict(lang.lexicon.entries)["B2"] == ("B", "2")
    assert set(lang.lexicon.phones) <= set(lang.phones)


def test_prepare_lang_drops_reserved_words_and_boundary_tokens(tmp_path, caplog):
    lexicon = Lexicon([("A", ("AH",)), ("<s>", ("S",)), ("#0", ("Z",)), ("B", ("B",))])
    with caplog.at_level(logging.WARNING):
        prepare_lang(lexicon, ["<s> A B </s>", "B A"], tmp_path, LangConfig(lm_order=2))
    assert "lexicon words <s>, #0 are reserved symbols of the lang directory; they are left out" in _warnings(caplog)
    assert ("dropped 2 <s>/</s> tokens from the LM text: the LM adds the sentence boundaries itself"
            in _warnings(caplog))
    words = (tmp_path / "words.txt").read_text().split()[::2]
    assert words == ["<eps>", "<UNK>", "A", "B", "#0", "<s>", "</s>"]
    assert not any("out of vocabulary" in m for m in _warnings(caplog))


def test_prepare_lang_refuses_reserved_phones(tmp_path):
    with pytest.raises(HybridAsrError, match=r"lexicon phones #1 are reserved symbols"):
        prepare_lang(Lexicon([("A", ("#1",))]), ["A"], tmp_path / "lang")
    assert not (tmp_path / "lang").exists()


# ------------------------------------------------------------------ LM order and settings
def test_lang_config_checks_the_lm_order():
    with pytest.raises(ConfigError, match=r"^lm_order must be in \[1, 5\], got 6$") as info:
        LangConfig(lm_order=6)
    assert isinstance(info.value, HybridAsrError) and isinstance(info.value, ValueError)
    with pytest.raises(ConfigError, match=r"^sil_prob must be in \(0, 1\), got 1$"):
        LangConfig(sil_prob=1.0)
    with pytest.raises(ConfigError, match="^lm_prune must be >= 0, got -1$"):
        LangConfig(lm_prune=-1)


def test_cli_prepare_lang_lm_order_6_is_one_line_and_writes_nothing(tmp_path, capsys):
    from hybrid_asr.cli.main import main

    (tmp_path / "lm.txt").write_text("A B\nB A\n")
    out = tmp_path / "lang"
    assert main(["prepare-lang", str(tmp_path / "none"), str(out), "--graphemes", "--lm-text",
                 str(tmp_path / "lm.txt"), "--lm-order", "6"]) == 2
    assert capsys.readouterr().err == ("hybrid-asr prepare-lang: error: argument --lm-order: must be in [1, 5], got 6 "
                                       "(see hybrid-asr prepare-lang --help)\n")
    assert not out.exists()


def test_train_arpa_turns_a_kaldingram_exit_into_an_error(tmp_path, monkeypatch):
    import kaldingram.train

    class Exiting:
        def __init__(self, order):
            raise SystemExit(2)

    monkeypatch.setattr(kaldingram.train, "NgramCounts", Exiting)
    with pytest.raises(HybridAsrError, match=r"lm.arpa: kaldingram stopped \(exit status 2\)"):
        train_arpa(["A B"], tmp_path / "lm.arpa", order=2)


def test_train_arpa_no_text_after_dropping_boundaries(tmp_path):
    with pytest.raises(HybridAsrError, match="no training text"):
        train_arpa(["<s> </s>", "  "], tmp_path / "lm.arpa", order=2)


# ------------------------------------------------------------------ ARPA files
ARPA = """\\data\\
ngram 1=4
ngram 2=2

\\1-grams:
-0.5\t<s>\t-0.3
-0.5\t</s>
-0.5\tA\t-0.2
-0.6\tB

\\2-grams:
-0.1\t<s> A
-0.2\tA B

\\end\\
"""


def _words_txt(tmp_path) -> Path:
    path = tmp_path / "words.txt"
    path.write_text("<eps> 0\nA 1\nB 2\n#0 3\n<s> 4\n</s> 5\n")
    return path


def _arpa(tmp_path, text, name="lm.arpa") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def _g_arcs(fsa):
    return sorted(zip(fsa.arcs.values()[:, 0].tolist(), fsa.arcs.values()[:, 2].tolist(), fsa.aux_labels.tolist(),
                      [round(s, 5) for s in fsa.scores.tolist()]))


@pytest.mark.parametrize("variant", ["crlf", "spaces", "bom", "comments"])
def test_arpa_layout_variants_read_the_same(tmp_path, variant):
    text = {"crlf": ARPA.replace("\n", "\r\n"), "spaces": ARPA.replace("\t", "   "), "bom": BOM + ARPA,
            "comments": "made by hand\n\n" + ARPA + "trailing junk\n"}[variant]
    ref, path = _arpa(tmp_path, ARPA, "ref.arpa"), _arpa(tmp_path, text)
    words = _words_txt(tmp_path)
    assert validate_arpa(path) == arpa_sizes(path) == {1: 4, 2: 2}
    assert ArpaScorer(path).log_prob(["A", "B"]) == pytest.approx(ArpaScorer(ref).log_prob(["A", "B"]))
    assert _g_arcs(arpa_to_g(path, words)) == _g_arcs(arpa_to_g(ref, words))


MALFORMED = [
    # (what is changed, replacement text, line, phrase)
    ("\\data\\\n", "\\dada\\\n", None, r"no \\data\\ line: not an ARPA language model"),
    ("ngram 2=2", "ngram 3=2", 3, r"expected 'ngram 2=<count>', got 'ngram 3=2'"),
    ("ngram 2=2", "ngram 2=3", 15, r"the \\data\\ section declares 3 2-grams \(line 3\) but the section has 2"),
    ("ngram 2=2", "ngram 2=1", 13, r"more 2-grams than the 1 that the \\data\\ section declares \(line 3\)"),
    ("-0.6\tB", "x0.6\tB", 9, r"log10 probability 'x0.6' is not a number"),
    ("-0.6\tB", "nan\tB", 9, r"log10 probability 'nan' is not a number"),
    ("-0.6\tB", "-1e50\tB", 9, r"log10 probability '-1e50' is not a number between -1000 and 1000"),
    ("-0.5\tA\t-0.2", "-0.5\tA\tinf", 8, r"log10 back-off weight 'inf' is not a number"),
    ("\\end\\\n", "", 14, r"missing \\end\\ \(the file ends in the 2-grams section\)"),
    ("\\end\\\n", "\\3-grams:\n", 15, r"expected '\\end\\' after the 2-grams, got '\\3-grams:'"),
    ("\\2-grams:", "\\3-grams:", 11, r"expected '\\2-grams:', got '\\3-grams:'"),
    ("-0.2\tA B", "-0.2\tA B\t-0.1", 13, r"a 2-gram of the highest order cannot have a back-off weight"),
    ("-0.2\tA B", "-0.2\tA", 13, r"expected a log10 probability, 2 words and an optional back-off weight, got 2"),
    ("-0.2\tA B", "-0.2\tA C", 13, r"word C of this 2-gram is not among the 1-grams"),
    ("-0.2\tA B", "-0.2\t<s> A", 13, r"duplicate 2-gram '<s> A' \(first on line 12\)"),
    ("-0.6\tB", "-0.6\t<eps>", 9, r"<eps> is a reserved symbol and cannot be an LM word"),
    ("-0.5\t</s>", "-0.5\tC", 11, r"the 1-grams lack </s>"),
    ("-0.6\tB", "-0.6\tB\xe9", 9, r"is not valid UTF-8"),
]


@pytest.mark.parametrize("reader", ["validate_arpa", "ArpaScorer", "arpa_to_g", "add_vocabulary"])
@pytest.mark.parametrize("old, new, line, phrase", MALFORMED, ids=[m[3][:40] for m in MALFORMED])
def test_malformed_arpa_is_an_input_error_with_its_line(tmp_path, reader, old, new, line, phrase):
    assert old in ARPA
    text = ARPA.replace(old, new, 1).encode("utf-8")
    if "\xe9" in new:
        text = ARPA.replace(old, "-0.6\tB", 1).encode("utf-8").replace(b"-0.6\tB", b"-0.6\tB\xe9")
    path = _arpa(tmp_path, text)
    call = {"validate_arpa": validate_arpa, "ArpaScorer": ArpaScorer,
            "arpa_to_g": lambda p: arpa_to_g(p, _words_txt(tmp_path)),
            "add_vocabulary": lambda p: add_vocabulary(p, ["A", "B", "NEW"], 0.1)}[reader]
    where = f"{path}:{line}" if line is not None else f"{path}"
    with pytest.raises(InputError, match=rf"^{where}: .*{phrase}") as info:
        call(path)
    assert info.value.line == line and info.value.path == path


def test_arpa_to_g_checks_the_word_table(tmp_path):
    path = _arpa(tmp_path, ARPA)
    with pytest.raises(InputError, match=r"words.txt: file does not exist"):
        arpa_to_g(path, tmp_path / "words.txt")
    (tmp_path / "words.txt").write_text("<eps> 0\nA 1\nB 2\n<s> 3\n</s> 4\n")
    with pytest.raises(InputError, match=r"words.txt: word table lacks #0"):
        arpa_to_g(path, tmp_path / "words.txt")
    (tmp_path / "words.txt").write_text("<eps> 0\nA one\n")
    with pytest.raises(InputError, match=r"words.txt:2: expected '<symbol> <integer id>'"):
        arpa_to_g(path, tmp_path / "words.txt")
    with pytest.raises(HybridAsrError, match="must be -1 \\(all\\) or >= 1, got 0"):
        arpa_to_g(path, _words_txt(tmp_path), order=0)


def test_arpa_missing_prefix_is_a_warning(tmp_path, caplog):
    text = ARPA.replace("ngram 2=2", "ngram 2=2\nngram 3=1").replace("\\end\\", "\\3-grams:\n-0.3\tB A B\n\n\\end\\")
    path = _arpa(tmp_path, text)
    with caplog.at_level(logging.WARNING):
        assert validate_arpa(path) == {1: 4, 2: 2, 3: 1}
    assert _warnings(caplog) == [f"{path}: 1 n-grams have no (n-1)-gram prefix; the grammar G built from it "
                                 "leaves them out"]


def test_arpa_from_train_arpa_round_trips(tmp_path):
    sizes = train_arpa(["A B C", "B C A", "C A B", "A A B"], tmp_path / "lm.arpa", order=3)
    assert validate_arpa(tmp_path / "lm.arpa") == sizes
