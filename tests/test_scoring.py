"""Tests of hybrid_asr.scoring: WER counts, transcripts I/O and reports."""

import logging
import random
import shutil
import subprocess

import kaldialign
import pytest

from hybrid_asr.errors import HybridAsrError, InputError
from hybrid_asr.scoring import (
    ScoringError,
    WerResult,
    read_transcripts,
    score,
    write_report,
    write_transcripts,
)


def test_substitution_and_insertion_hand_computed():
    result = score({"u1": "A B C D".split()}, {"u1": "A X C D E".split()})
    (utt,) = result.utts
    assert (utt.substitutions, utt.deletions, utt.insertions) == (1, 0, 1)
    assert utt.alignment == [("A", "A"), ("B", "X"), ("C", "C"), ("D", "D"), ("*", "E")]
    assert utt.errors == 2 and utt.ref_words == 4
    assert result.words == 4 and result.wer == pytest.approx(50.0)
    assert result.sentences == 1 and result.sentence_errors == 1 and result.ser == 100.0


def test_deletions():
    result = score({"u1": "A B C D".split()}, {"u1": "A D".split()})
    assert (result.substitutions, result.deletions, result.insertions) == (0, 2, 0)
    assert result.wer == pytest.approx(50.0)


def test_empty_hypothesis_is_all_deletions():
    result = score({"u1": ["A", "B", "C"]}, {"u1": []})
    assert (result.substitutions, result.deletions, result.insertions) == (0, 3, 0)
    assert result.wer == pytest.approx(100.0)


def test_empty_reference():
    assert score({"u1": []}, {"u1": []}).wer == 0.0
    result = score({"u1": []}, {"u1": ["A"]})
    assert result.insertions == 1 and result.wer == float("inf")


def test_ser_counts_and_totals():
    refs = {"a": "X Y".split(), "b": "X Y Z".split(), "c": "Z".split(), "d": "Y Y".split()}
    hyps = {"a": "X Y".split(), "b": "X Q Z".split(), "c": "Z".split(), "d": "Y".split()}
    result = score(refs, hyps)
    assert [u.utt_id for u in result.utts] == ["a", "b", "c", "d"]
    assert result.sentences == 4 and result.sentence_errors == 2
    assert result.ser == pytest.approx(50.0)
    assert result.words == 8 and result.errors == 2 and result.wer == pytest.approx(25.0)


def test_summary_format():
    result = WerResult(
        utts=[], words=773, substitutions=65, deletions=20, insertions=10,
        sentences=130, sentence_errors=39,
    )
    assert result.summary() == (
        "%WER 12.29 [ 95 / 773, 10 ins, 20 del, 65 sub ]\n%SER 30.00 [ 39 / 130 ]"
    )


def test_missing_hypothesis_counts_as_deletions(caplog):
    refs = {"u1": "A B".split(), "u2": "C D E".split()}
    with caplog.at_level(logging.WARNING, logger="hybrid_asr.scoring.wer"):
        result = score(refs, {"u1": "A B".split()})
    assert result.deletions == 3 and result.sentences == 2 and result.sentence_errors == 1
    assert result.wer == pytest.approx(60.0)
    assert any("u2" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_extra_hypothesis_raises():
    with pytest.raises(ScoringError, match="'zz'") as info:
        score({"u1": ["A"]}, {"u1": ["A"], "zz": ["B"]})
    assert isinstance(info.value, HybridAsrError)
    assert "\n" not in str(info.value)


def test_gap_symbol_as_word_raises():
    with pytest.raises(ScoringError, match="u1"):
        score({"u1": ["A", "*"]}, {"u1": ["A"]})


def test_string_transcript_rejected():
    with pytest.raises(TypeError):
        score({"u1": "A B"}, {"u1": ["A", "B"]})


def test_counts_agree_with_kaldialign_edit_distance():
    rng = random.Random(1234)
    vocab = ["a", "b", "c", "d", "e"]
    refs, hyps = {}, {}
    for i in range(300):
        refs[f"u{i:03d}"] = [rng.choice(vocab) for _ in range(rng.randint(0, 12))]
        hyps[f"u{i:03d}"] = [rng.choice(vocab) for _ in range(rng.randint(0, 12))]
    result = score(refs, hyps)
    totals = {"sub": 0, "del": 0, "ins": 0}
    for utt in result.utts:
        expected = kaldialign.edit_distance(refs[utt.utt_id], hyps[utt.utt_id])
        assert (utt.substitutions, utt.deletions, utt.insertions) == (
            expected["sub"], expected["del"], expected["ins"]
        )
        assert utt.errors == expected["total"]
        # the alignment reproduces both word sequences
        assert [r for r, _ in utt.alignment if r != "*"] == refs[utt.utt_id]
        assert [h for _, h in utt.alignment if h != "*"] == hyps[utt.utt_id]
        for key in totals:
            totals[key] += expected[key]
    assert (result.substitutions, result.deletions, result.insertions) == (
        totals["sub"], totals["del"], totals["ins"]
    )


def test_read_transcripts(tmp_path):
    path = tmp_path / "text"
    path.write_text("u1 HELLO  WORLD\nu2\nu3\tA\n", encoding="utf-8")
    assert read_transcripts(path) == {"u1": ["HELLO", "WORLD"], "u2": [], "u3": ["A"]}


def test_read_transcripts_duplicate_id(tmp_path):
    path = tmp_path / "text"
    path.write_text("u1 A\nu2 B\nu1 C\n", encoding="utf-8")
    with pytest.raises(InputError, match="duplicate utterance id 'u1'") as info:
        read_transcripts(path)
    assert info.value.line == 3
    assert str(info.value).startswith(f"{path}:3: ")


def test_read_transcripts_empty_line(tmp_path):
    path = tmp_path / "text"
    path.write_text("u1 A\n   \nu2 B\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_transcripts(path)
    assert info.value.line == 2


def test_read_transcripts_missing_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_transcripts(tmp_path / "nope")


def test_write_read_round_trip(tmp_path):
    transcripts = {"b": ["X", "Y"], "a": ["HELLO"], "c": []}
    path = tmp_path / "sub" / "text"
    write_transcripts(path, transcripts)
    assert path.read_text(encoding="utf-8") == "a HELLO\nb X Y\nc\n"
    assert read_transcripts(path) == transcripts
    assert [p.name for p in path.parent.iterdir()] == ["text"]  # no temporary files left


def test_write_transcripts_rejects_whitespace(tmp_path):
    with pytest.raises(ValueError):
        write_transcripts(tmp_path / "text", {"u1": ["A B"]})


def _token_starts(line):
    """Column index of each whitespace-separated token in ``line``."""
    starts, prev = [], " "
    for i, ch in enumerate(line):
        if ch != " " and prev == " ":
            starts.append(i)
        prev = ch
    return starts


def test_report_files(tmp_path):
    refs = {
        "an406-fcaw-b": "RUBOUT G M E F THREE NINE".split(),
        "ok": "YES".split(),
    }
    hyps = {
        "an406-fcaw-b": "RUBOUT G NN E THREE NINE EXTRA".split(),
        "ok": "YES".split(),
    }
    result = score(refs, hyps)
    summary_path, details_path = write_report(result, tmp_path / "out", name="test")
    assert summary_path == tmp_path / "out" / "test.txt"
    assert details_path == tmp_path / "out" / "test_details.txt"

    summary = summary_path.read_text(encoding="utf-8").splitlines()
    assert summary[:2] == result.summary().splitlines()
    worst = [line for line in summary if line.startswith("an406-fcaw-b")]
    assert len(worst) == 1 and "3 / 7" in worst[0]
    assert not any(line.startswith("ok ") for line in summary)

    details = details_path.read_text(encoding="utf-8")
    blocks = details.strip("\n").split("\n\n")
    assert len(blocks) == 2
    id_line, ref_line, hyp_line, op_line, csid_line = blocks[0].splitlines()
    assert id_line == "id: an406-fcaw-b"
    assert ref_line.split()[1:] == ["RUBOUT", "G", "M", "E", "F", "THREE", "NINE", "***"]
    assert hyp_line.split()[1:] == ["RUBOUT", "G", "NN", "E", "***", "THREE", "NINE", "EXTRA"]
    assert op_line.split()[1:] == ["C", "C", "S", "C", "D", "C", "C", "I"]
    assert _token_starts(ref_line) == _token_starts(hyp_line) == _token_starts(op_line)
    assert csid_line == "#csid: 5 1 1 1"
    assert blocks[1].splitlines()[-1] == "#csid: 1 0 0 0"


def test_report_without_errors(tmp_path):
    result = score({"u1": ["A"]}, {"u1": ["A"]})
    summary_path, _ = write_report(result, tmp_path)
    assert "(none)" in summary_path.read_text(encoding="utf-8")
    assert summary_path.name == "wer.txt"


def test_report_lists_ten_worst_utterances(tmp_path):
    # utterance uNN has NN % 6 substitutions; 12 of the 15 have errors
    refs = {f"u{i:02d}": ["A"] * 5 for i in range(15)}
    hyps = {f"u{i:02d}": ["B"] * (i % 6) + ["A"] * (5 - i % 6) for i in range(15)}
    summary_path, _ = write_report(score(refs, hyps), tmp_path)
    lines = summary_path.read_text(encoding="utf-8").splitlines()
    first = lines.index("Utterances with most errors (up to 10):") + 1
    listed = [line.split()[0] for line in lines[first:first + 10]]
    assert listed == ["u05", "u11", "u04", "u10", "u03", "u09", "u02", "u08", "u14", "u01"]
    assert lines[first + 10] == ""  # then the confusion lists


def test_breakdown_by_group_and_report_table(tmp_path):
    refs = {"a1": ["X", "Y"], "a2": ["X"], "b1": ["X", "Y", "Z", "W"], "c1": ["Y"]}
    hyps = {"a1": ["X", "X"], "a2": ["X"], "b1": ["X"], "c1": ["Y"]}
    result = score(refs, hyps)
    parts = result.breakdown({"a1": "ga", "a2": "ga", "b1": "gb"})
    assert list(parts) == ["ga", "gb", "unknown"]
    assert (parts["ga"].errors, parts["ga"].words, parts["ga"].sentence_errors) == (1, 3, 1)
    assert (parts["gb"].errors, parts["gb"].words) == (3, 4)
    assert parts["unknown"].errors == 0 and parts["unknown"].sentences == 1
    assert sum(p.errors for p in parts.values()) == result.errors
    summary, _ = write_report(result, tmp_path, breakdowns={"group": {"a1": "ga", "a2": "ga", "b1": "gb"}})
    rows = {line.split()[0]: line.split() for line in summary.read_text().splitlines() if line.startswith("g")}
    assert rows["ga"][1] == "33.33" and rows["gb"][1] == "75.00"


def test_speaker_breakdowns_map_utterances_to_their_speakers_group():
    from hybrid_asr.scoring import speaker_breakdowns

    assert speaker_breakdowns({}, {"s1": "g"}) == {}
    b = speaker_breakdowns({"u1": "s1", "u2": "s2"}, {"s1": "child"})
    assert b == {"speaker": {"u1": "s1", "u2": "s2"}, "group": {"u1": "child", "u2": "unknown"}}
    assert "group" not in speaker_breakdowns({"u1": "s1"})


def test_error_totals_and_wer_agree_with_jiwer_on_random_pairs():
    """Total errors (S + D + I) and WER equal jiwer's on 2,000 random pairs over tiny
    vocabularies (many equal-cost alignments). The split into S, D and I may differ where
    alignments tie: kaldialign and jiwer break ties differently, as Kaldi and sclite do."""
    import random

    import jiwer

    rng = random.Random(0)
    refs, hyps = {}, {}
    for t in range(2000):
        vocab = ["a", "b", "c", "d"][: rng.randint(1, 4)]
        refs[f"u{t}"] = [rng.choice(vocab) for _ in range(rng.randint(1, 9))]
        hyps[f"u{t}"] = [rng.choice(vocab) for _ in range(rng.randint(1, 9))]
        mine = score({"u": refs[f"u{t}"]}, {"u": hyps[f"u{t}"]})
        theirs = jiwer.process_words(" ".join(refs[f"u{t}"]), " ".join(hyps[f"u{t}"]))
        assert mine.errors == theirs.substitutions + theirs.deletions + theirs.insertions
        assert mine.wer == pytest.approx(100 * theirs.wer)
    corpus = score(refs, hyps)
    ids = sorted(refs)
    theirs = jiwer.process_words([" ".join(refs[u]) for u in ids], [" ".join(hyps[u]) for u in ids])
    assert corpus.wer == pytest.approx(100 * theirs.wer)


def test_confusions_json_summary_and_normalisation(tmp_path):
    import json

    from hybrid_asr.scoring.analysis import TextNormalizer, confusions

    norm = TextNormalizer(case="upper", strip_punctuation=True, drop_words=("uh",))
    assert norm(["Hello,", "uh", "world!", "..."]) == ["HELLO", "WORLD"]
    refs = {"a": ["ONE", "TWO", "THREE"], "b": ["ONE", "TWO"]}
    hyps = {"a": ["ONE", "TOO", "THREE", "EXTRA"], "b": ["ONE", "TOO"]}
    result = score(refs, hyps)
    c = confusions(result)
    assert c["substitutions"] == {("TWO", "TOO"): 2} and c["insertions"] == {"EXTRA": 1} and not c["deletions"]
    write_report(result, tmp_path)
    summary = json.loads((tmp_path / "wer.json").read_text())
    assert summary["errors"] == 3 and summary["top_substitutions"] == [["TWO", "TOO", 2]]
    assert "TWO -> TOO  2" in (tmp_path / "wer.txt").read_text()


def test_compare_bootstrap_interval_and_utterance_lists():
    from hybrid_asr.scoring.analysis import compare

    refs = {f"u{i}": ["A", "B", "C", "D"] for i in range(50)}
    a = score(refs, {u: ["A", "X", "C", "D"] for u in refs})  # 1 error each
    b_hyps = {u: list(r) for u, r in refs.items()}
    b_hyps["u0"] = ["X", "X", "X", "X"]
    b = score(refs, b_hyps)  # 4 errors on u0, none elsewhere
    c = compare(a, b, resamples=500)
    assert c.difference == pytest.approx(100 * (4 - 50) / 200)
    assert c.better == [u for u in sorted(refs) if u != "u0"] and c.worse == ["u0"]
    assert c.significant and c.interval[1] < 0
    same = compare(a, a, resamples=200)
    assert not same.significant and same.interval == (0.0, 0.0)


def test_html_report_is_self_contained_with_tables_and_charts(tmp_path):
    refs = {"s1-a": ["ONE", "TWO"], "s2-b": ["<X>", "TWO"]}
    hyps = {"s1-a": ["ONE", "TOO"], "s2-b": ["TWO"]}
    write_report(score(refs, hyps), tmp_path, breakdowns={"speaker": {"s1-a": "s1", "s2-b": "s2"}})
    page = (tmp_path / "wer.html").read_text()
    assert page.count("data:image/png;base64,") == 2  # error types, WER per speaker
    assert "<td class='l'>s1</td><td>50.00</td>" in page and "TWO &rarr; TOO" in page
    assert "&lt;X&gt;" in page and "<X>" not in page  # words are escaped
    assert "http" not in page  # nothing to fetch


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (Debian package chromium)")
def test_html_report_renders_in_headless_chromium(tmp_path):
    """The browser shows the tables (its DOM) and draws both charts (the error-type bars are
    red, green and blue pixels of the screenshot)."""
    import matplotlib.image

    refs = {f"s{k}-u{i}": ["ONE", "TWO", "THREE"] for k in range(3) for i in range(4)}
    hyps = {u: (["ONE", "TOO"] if u.startswith("s1") else ["ONE", "TWO", "THREE", "FOUR"]) for u in refs}
    write_report(score(refs, hyps), tmp_path, breakdowns={"speaker": {u: u.split("-")[0] for u in refs}})
    page = tmp_path / "wer.html"
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1000,1400"]
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert "WER per speaker" in dom and "<td class=\"l\">s1</td>" in dom and dom.count("<img") == 2
    shot = tmp_path / "wer.png"
    subprocess.run([*flags, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120, check=True)
    pixels = matplotlib.image.imread(str(shot))[..., :3]
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    for name, mask in (("red", (r > 0.7) & (g < 0.5) & (b < 0.5)), ("green", (g > 0.5) & (r < 0.5) & (b < 0.5)),
                       ("blue", (b > 0.7) & (r < 0.5) & (g < 0.5))):
        assert mask.sum() > 200, f"no {name} bars drawn"


def test_score_names_the_hypothesis_file_with_an_unknown_id_or_no_lines(tmp_path, capsys):
    from hybrid_asr.cli.main import main

    ref, hyp, empty = tmp_path / "ref", tmp_path / "hyp", tmp_path / "empty"
    ref.write_text("u1 A B\nu2 C\n")
    hyp.write_text("u1 A B\nu3 C\nu4 D\n")
    empty.write_text("")
    assert main(["score", str(ref), str(hyp), str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err == (f"hybrid-asr score: error: {hyp}: utterance 'u3' (and 1 more) is not in the "
                                       f"references {ref}\n")
    assert main(["score", str(ref), str(empty), str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err == f"hybrid-asr score: error: {empty}: holds no utterances (an empty file)\n"
    assert main(["compare", str(ref), str(ref), str(empty)]) == 1
    assert capsys.readouterr().err == f"hybrid-asr compare: error: {empty}: holds no utterances (an empty file)\n"
    assert not (tmp_path / "out").exists()
