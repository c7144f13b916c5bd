"""Property-based fuzzing of the parsers of user text (hypothesis): for any input, a parser either
returns a well-formed result or raises :class:`~hybrid_asr.errors.InputError`; any other exception,
or a run longer than :data:`TIME_LIMIT_S` seconds, is a failure.

Covered: the transcript cleaner and line reader, the lexicon parser, the ARPA validator and the
readers behind it (kaldingram's model in ArpaScorer/add_vocabulary, kaldilm's arpa2fst), and the
Kaldi data-directory parsers. Inputs are arbitrary bytes and text, and valid files with random
edits (deleted, repeated, swapped lines; reserved symbols, odd whitespace and bad bytes put in).

The number of examples is ``HYBRID_ASR_FUZZ_EXAMPLES`` (default 25) times a per-test factor of 2
to 4 (about 10 s in all on one core); a longer run, 20 times as many (about 3 minutes), with
counts of accepted and refused inputs::

    HYBRID_ASR_FUZZ_EXAMPLES=500 .venv/bin/python -m pytest -q tests/test_fuzz_parsers.py \\
        --hypothesis-show-statistics
"""

import contextlib
import math
import os
import signal
import tempfile
import wave
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from hybrid_asr.data.kaldi_dir import import_kaldi_data_dir, read_kaldi_table, validate_kaldi_data_dir
from hybrid_asr.errors import InputError
from hybrid_asr.lang.lexicon import is_reserved_phone, is_reserved_word, read_lexicon
from hybrid_asr.lang.lm import ArpaScorer, add_vocabulary, arpa_to_g, validate_arpa
from hybrid_asr.lang.text import check_transcript_words
from hybrid_asr.text_files import clean_transcript, read_text_lines
from hybrid_asr.scoring import read_transcripts

EXAMPLES = int(os.environ.get("HYBRID_ASR_FUZZ_EXAMPLES", "25"))
#: Seconds one example may take before it counts as a hang.
TIME_LIMIT_S = 20

_SCRATCH = tempfile.TemporaryDirectory(prefix="hybrid-asr-fuzz-")  # removed when the session ends
if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    set_hypothesis_home_dir(Path(_SCRATCH.name) / "hypothesis")  # its caches stay out of the work tree


def fuzz(scale: float = 1.0):
    """Settings of a fuzz test: ``scale`` x :data:`EXAMPLES` examples, no deadline (the first
    example pays for imports), no example database written to the work tree."""
    return settings(max_examples=max(1, int(EXAMPLES * scale)), deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class Hang(BaseException):
    """An example ran past :data:`TIME_LIMIT_S` (a BaseException, so that no ``except Exception``
    in the code under test can turn it into an InputError)."""


@contextlib.contextmanager
def time_limit(seconds: float = TIME_LIMIT_S):
    def on_alarm(signum, frame):
        raise Hang(f"no result after {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def result_or_input_error(fn, *args, **kwargs):
    """``fn(*args)``, or None if it raised InputError (whose message must be one line naming a file)."""
    name = getattr(fn, "__name__", "call")
    with time_limit():
        try:
            result = fn(*args, **kwargs)
        except InputError as e:
            assert "\n" not in str(e) and str(e).startswith(str(e.path)), str(e)
            assert e.line is None or e.line >= 1
            event(f"{name}: InputError")
            return None
    event(f"{name}: accepted")
    return result


# ------------------------------------------------------------------ strategies
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\ufeff", "\u2060", "\u00ad", "\u200e"]
ODD_SPACE = ["\t", "  ", "\u00a0", "\r", "\u2003", "\u3000", "\x0b", "\x0c", "\x1c", "\u2028", "\x85"]
SPECIAL_CHARS = ZERO_WIDTH + ODD_SPACE + ["\x00", "\x07", "\x7f", "\x1b", "e\u0301", "\u00e9", "#", "<", ">", "\\",
                                         "(", ")", ".", "-", "+", "=", ";", "\n", "\ud800", "\U0001f600"]
RESERVED = ["<eps>", "<s>", "</s>", "#0", "#1", "#", "<sil>", "SIL", "!SIL", "<UNK>"]
NUMBERS = ["0", "1", "1.0", "0.5", "-0.5", "-99", "1e-5", "-1e50", "nan", "inf", "-inf", "+1", ".5", "5.", "1_0",
           "\u0663", "-0"]

pieces = st.one_of(st.sampled_from(SPECIAL_CHARS), st.characters(blacklist_categories=()),
                   st.sampled_from("abcAB0129 "))  # special ones may be two code points (e + accent)
texts = st.lists(pieces, max_size=40).map("".join)
tokens = st.one_of(st.sampled_from(RESERVED + NUMBERS + ["A", "B", "AH0", "A(2)", "HH", ";;;", "\\data\\",
                                                         "\\1-grams:", "\\end\\", "ngram", "1=2"]),
                   st.lists(pieces, min_size=1, max_size=4).map("".join))
lines = st.lists(tokens, max_size=6).map(" ".join)


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


file_bytes = st.one_of(st.binary(max_size=200), st.lists(lines, max_size=8).map(lambda ls: _encode("\n".join(ls))),
                       texts.map(_encode))


@st.composite
def edited(draw, base_lines, max_edits: int = 3) -> bytes:
    """A file made of ``base_lines`` with up to ``max_edits`` random edits, as bytes."""
    out = list(base_lines)
    for _ in range(draw(st.sampled_from([0, 0] + list(range(1, max_edits + 1))))):  # a third unedited
        op = draw(st.sampled_from(["delete", "repeat", "swap", "token", "insert", "replace", "space"]))
        i = draw(st.integers(0, max(len(out) - 1, 0)))
        if not out:
            op = "insert"
        if op == "delete":
            del out[i]
        elif op == "repeat":
            out.insert(draw(st.integers(0, len(out))), out[i])
        elif op == "swap":
            j = draw(st.integers(0, len(out) - 1))
            out[i], out[j] = out[j], out[i]
        elif op == "token":  # put a token in, or in place of one
            fields = out[i].split()
            k = draw(st.integers(0, len(fields)))
            fields[k:k + draw(st.integers(0, 1))] = [draw(tokens)]
            out[i] = " ".join(fields)
        elif op == "insert":
            out.insert(i, draw(lines))
        elif op == "replace":
            out[i] = draw(texts)
        elif op == "space":
            out[i] = out[i].replace(" ", draw(st.sampled_from(ODD_SPACE + ZERO_WIDTH)), 1)
    data = _encode("\n".join(out) + ("\n" if draw(st.booleans()) else ""))
    if draw(st.booleans()):
        data = data.replace(b"\n", b"\r\n")
    if draw(st.integers(0, 4)) == 0:
        data = b"\xef\xbb\xbf" + data
    if draw(st.integers(0, 4)) == 0:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=3)) + data[at:]
    return data


def _scratch() -> Path:
    """A new empty directory under this session's scratch directory."""
    return Path(tempfile.mkdtemp(dir=_SCRATCH.name))


def _write(data: bytes, name: str) -> Path:
    path = _scratch() / name
    path.write_bytes(data)
    return path


# ------------------------------------------------------------------ text
@fuzz(4)
@given(texts, st.one_of(st.none(), st.integers(1, 10**6)))
def test_clean_transcript_is_idempotent_and_visible(text, line):
    result = result_or_input_error(clean_transcript, text, "text", line)
    if result is None:
        return
    cleaned, notes = result
    assert cleaned == " ".join(cleaned.split()) and cleaned == cleaned.strip()
    assert not any(c in cleaned for c in ZERO_WIDTH) and "\x00" not in cleaned
    assert clean_transcript(cleaned, "text", line) == (cleaned, [])
    assert all(n.startswith("text") for n in notes)


@fuzz(2)
@given(file_bytes)
def test_read_text_lines_numbers_every_line(data):
    path = _write(data, "f.txt")
    result = result_or_input_error(lambda: list(read_text_lines(path)))
    if result is not None:
        assert [n for n, _ in result] == list(range(1, len(result) + 1))
        assert not any("\n" in line or "\r" in line for _, line in result)


@fuzz(2)
@given(file_bytes)
def test_read_transcripts(data):
    result = result_or_input_error(read_transcripts, _write(data, "text"))
    if result is not None:
        for utt, words in result.items():
            assert utt and all(w and w.split() == [w] for w in words)


@fuzz(2)
@given(st.one_of(texts, st.lists(st.one_of(tokens, st.sampled_from(["A", "a", "hello", "HELLO", "Hello"])), max_size=5)),
       st.sets(st.sampled_from(["B", "<UNK>"])).map(lambda vocab: vocab | {"A", "HELLO"}))
def test_check_transcript_words(words, vocab):
    result = result_or_input_error(check_transcript_words, words, vocab, "transcript")
    if result is not None:
        assert result and all(w in vocab for w in result)


# ------------------------------------------------------------------ lexicon
LEXICON = ["A AH0", "A(2) EY1", "AND AE1 N D", ";;; comment", "<s> SIL", "THE DH AH0", "B2 B 2"]


@fuzz(3)
@given(st.one_of(file_bytes, edited(LEXICON), edited(["A 1.0 AH", "B 0.5 B IY"], 2)), st.booleans())
def test_read_lexicon(data, keep_stress):
    lex = result_or_input_error(read_lexicon, _write(data, "lexicon.txt"), keep_stress=keep_stress)
    if lex is None:
        return
    assert lex.entries and len(set(lex.entries)) == len(lex.entries)
    for word, phones in lex.entries:
        assert word.split() == [word] and not is_reserved_word(word)
        assert phones and all(p.split() == [p] and not is_reserved_phone(p) for p in phones)
    assert not any(p.startswith("#") for p in lex.phones)


# ------------------------------------------------------------------ ARPA
WORDS = ["A", "B", "C"]


@st.composite
def arpa_lines(draw):
    """The lines of a well-formed ARPA file over WORDS, orders 1 to 3, random probabilities."""
    order = draw(st.integers(1, 3))
    vocab = ["<s>", "</s>"] + draw(st.lists(st.sampled_from(WORDS), unique=True, max_size=3))
    prob = st.floats(-5, 0).map(lambda x: f"{x:.4f}")
    sections = [[(w,) for w in vocab]]
    for n in range(2, order + 1):
        grams = st.tuples(*[st.sampled_from(vocab)] * n)
        sections.append(sorted(draw(st.sets(grams, max_size=6))))
    out = ["\\data\\"] + [f"ngram {n}={len(s)}" for n, s in enumerate(sections, 1)] + [""]
    for n, section in enumerate(sections, 1):
        out.append(f"\\{n}-grams:")
        for gram in section:
            entry = f"{draw(prob)}\t{' '.join(gram)}"
            if n < order and draw(st.booleans()):
                entry += f"\t{draw(prob)}"
            out.append(entry)
        out.append("")
    return out + ["\\end\\"]


def _words_txt(directory: Path) -> Path:
    path = directory / "words.txt"
    path.write_text("".join(f"{w} {i}\n" for i, w in enumerate(["<eps>", "A", "B", "#0", "<s>", "</s>"])))
    return path


@fuzz(4)
@given(st.one_of(file_bytes, *[arpa_lines().flatmap(edited)] * 3))  # half of them edited ARPA files
def test_validate_arpa_accepts_only_what_the_readers_read(data):
    """Whatever validate_arpa accepts, kaldingram (ArpaScorer, add_vocabulary) and kaldilm (arpa_to_g,
    which aborts the process on a line it cannot parse) read without failing, with the same counts."""
    path = _write(data, "lm.arpa")
    counts = result_or_input_error(validate_arpa, path)
    if counts is None:
        return
    assert sorted(counts) == list(range(1, len(counts) + 1)) and counts[1] >= 2
    with time_limit():
        scorer = ArpaScorer(path)
        assert dict(scorer.lm.counts()) == counts
        assert math.isfinite(scorer.log_prob(["A", "C", "B"]))
        arpa_to_g(path, _words_txt(path.parent))
    added = result_or_input_error(add_vocabulary, path, WORDS + ["NEW"], 0.1)
    if added is not None:
        with time_limit():
            assert validate_arpa(path)[1] == counts[1] + added
            arpa_to_g(path, _words_txt(path.parent))


# ------------------------------------------------------------------ Kaldi data directories
_AUDIO = {}


def _audio(name: str) -> Path:
    """A 0.3 s 8 kHz WAV file, made once per session."""
    if name not in _AUDIO:
        path = _scratch() / f"{name}.wav"
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(b"\x00\x00" * 2400)
        _AUDIO[name] = path
    return _AUDIO[name]


def _kaldi_tables(segments: bool):
    recs = ["r1", "r2"] if segments else ["u1", "u2"]
    utts = ["u1", "u2"]
    tables = {"wav.scp": [f"{r} {_audio(r)}" for r in recs],
              "text": ["u1 hello world", "u2 good bye"],
              "utt2spk": ["u1 s1", "u2 s2"]}
    if segments:
        tables["segments"] = ["u1 r1 0 0.1", "u2 r2 0.05 -1"]
    return tables, utts


@st.composite
def kaldi_dirs(draw):
    """A Kaldi data directory (files as bytes) of two utterances, each file randomly edited."""
    tables, _ = _kaldi_tables(draw(st.booleans()))
    if draw(st.booleans()):
        tables["spk2gender"] = ["s1 f", "s2 m"]
    edit = draw(st.sets(st.sampled_from(sorted(tables)), max_size=2))
    out = {}
    for name, base in tables.items():
        out[name] = (draw(st.one_of(edited(base), edited(base), file_bytes)) if name in edit
                     else _encode("\n".join(base) + "\n"))
    return out


@fuzz(2)
@given(kaldi_dirs())
def test_kaldi_data_dir(files):
    root = _scratch()
    for name, data in files.items():
        (root / name).write_bytes(data)
    rate = result_or_input_error(validate_kaldi_data_dir, root)
    if rate is None:
        return
    assert rate == 8000
    result = result_or_input_error(import_kaldi_data_dir, root)
    if result is not None:
        recordings, supervisions = result
        for sup in supervisions:
            assert sup.text and sup.text == " ".join(sup.text.split()) and sup.recording_id in recordings.ids
            assert not any(c in sup.text for c in ZERO_WIDTH)


@fuzz(2)
@given(file_bytes, st.integers(1, 4), st.one_of(st.none(), st.integers(1, 4)))
def test_read_kaldi_table(data, min_fields, max_fields):
    table = result_or_input_error(read_kaldi_table, _write(data, "utt2spk"), min_fields, max_fields)
    if table is not None:
        numbers = [n for n, _ in table.values()]
        assert numbers == sorted(set(numbers))
        for key, (_, fields) in table.items():
            assert min_fields <= 1 + len(fields) <= (max_fields or 99) and key.split() == [key]


@pytest.mark.parametrize("name", ["lexicon.txt", "lm.arpa", "text"])
def test_a_directory_or_missing_file_is_an_input_error(tmp_path, name):
    (tmp_path / "dir").mkdir()
    for path in (tmp_path / "dir", tmp_path / "missing"):
        reader = {"lexicon.txt": read_lexicon, "lm.arpa": validate_arpa, "text": read_transcripts}[name]
        with pytest.raises(InputError):
            reader(path)
