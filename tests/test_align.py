"""Flat start, Viterbi forced alignment with k2, alignment storage and phone segments."""

import numpy as np
import pytest
import torch

from hybrid_asr.align import equal_alignment, viterbi_align
from hybrid_asr.align.flat_start import flat_start_alignment, speech_bounds
from hybrid_asr.hmm.alignment import (
    Alignments,
    load_alignment_dir,
    phone_segments,
    segments_from_marks,
    senone_segments,
)
from hybrid_asr.errors import AlignmentError, InputError
from hybrid_asr.graph import TrainingGraphCompiler


def _states(topo, phone):
    return [topo.pdf_id(phone, s) for s in range(topo.states_of(phone))]


def test_equal_alignment_divides_frames(toy_topo):
    ali = equal_alignment(["A", "B"], 8, toy_topo)
    a, b = _states(toy_topo, "A"), _states(toy_topo, "B")
    assert ali.tolist() == [a[0]] * 2 + [a[1]] * 2 + [b[0]] * 2 + [b[1]] * 2
    with pytest.raises(AlignmentError):
        equal_alignment(["A", "B"], 3, toy_topo)


def test_speech_bounds_finds_the_loud_region():
    energy = np.concatenate([np.full(20, 1.0), np.full(50, 10.0), np.full(30, 1.0)])
    energy += np.random.default_rng(0).normal(0, 0.1, energy.size)
    assert speech_bounds(energy, margin=5) == (15, 75)
    assert speech_bounds(np.zeros(40)) == (0, 40)


def test_flat_start_puts_silence_on_quiet_frames(toy_lang, toy_topo):
    energy = np.concatenate([np.full(30, 1.0), np.full(40, 10.0), np.full(30, 1.0)])
    ali = flat_start_alignment("AB", energy, toy_lang.lexicon.with_unk().pronunciations(), toy_topo)
    segs = phone_segments(ali, toy_topo)
    assert [s[0] for s in segs] == ["SIL", "A", "B", "SIL"]
    assert segs[1][1] == 25 and segs[2][2] == 75  # speech region 30..70 plus 5-frame margins


def test_viterbi_boundaries_follow_the_signal(toy_lang, toy_topo):
    """Scores favour SIL for 6 frames, then A (7 frames), B (5), SIL (4): the forced alignment
    must put the phone boundaries exactly where the synthetic signal changes."""
    segments = [("SIL", 0, 6), ("A", 6, 13), ("B", 13, 18), ("SIL", 18, 22)]
    T = 22
    scores = torch.full((T, toy_topo.num_pdfs), -8.0)
    for phone, start, end in segments:
        for pdf in _states(toy_topo, phone):
            scores[start:end, pdf] = 0.0  # any state of the right phone fits
    compiler = TrainingGraphCompiler(toy_lang, toy_topo)
    ali = viterbi_align(compiler, ["AB"], [scores])[0]
    assert len(ali.pdfs) == T and len(ali.phone_marks) == T
    assert [(p, s, e) for p, s, e in phone_segments(ali.pdfs, toy_topo)] == segments
    # the phone marks read off the graph give the same boundaries
    names = {toy_lang.phone_table[p]: p for p in toy_lang.phones}
    assert segments_from_marks(ali.phone_marks, names) == segments


def test_viterbi_failure_is_reported_as_empty(toy_lang, toy_topo):
    compiler = TrainingGraphCompiler(toy_lang, toy_topo)
    scores = torch.zeros(3, toy_topo.num_pdfs)  # 3 frames < 4 states of "A B"
    ok = torch.zeros(10, toy_topo.num_pdfs)
    alis = viterbi_align(compiler, ["AB", "AB"], [scores, ok])
    assert len(alis[0].pdfs) == 0 and len(alis[1].pdfs) == 10


def test_alignments_roundtrip(tmp_path):
    ali = Alignments({"u1": np.array([0, 0, 1]), "u2": np.array([2])})
    ali.save(tmp_path / "ali.npz")
    back = Alignments.load(tmp_path / "ali.npz")
    assert set(back) == {"u1", "u2"} and back["u1"].tolist() == [0, 0, 1]
    with pytest.raises(InputError):
        Alignments.load(tmp_path / "nope.npz")


def test_phone_segments_split_repeated_phone(toy_topo):
    a = _states(toy_topo, "A")
    ali = np.array([a[0], a[1], a[1], a[0], a[1]])
    assert phone_segments(ali, toy_topo) == [("A", 0, 3), ("A", 3, 5)]


def test_segments_from_marks_and_senone_runs():
    names = {3: "A", 4: "B"}
    marks = np.array([3, 0, 0, 3, 0, 4])
    assert segments_from_marks(marks, names) == [("A", 0, 3), ("A", 3, 5), ("B", 5, 6)]
    with pytest.raises(AlignmentError):
        segments_from_marks(np.array([0, 3, 0]), names)  # frame 0 starts no phone
    with pytest.raises(AlignmentError):
        segments_from_marks(np.array([9, 0]), names)  # unknown phone id
    pdfs = np.array([1, 1, 2, 2, 2, 5])
    # the run of senone 2 is cut where the second A starts
    assert senone_segments(pdfs, marks) == [(1, 0, 2), (2, 2, 3), (2, 3, 5), (5, 5, 6)]
    assert senone_segments(pdfs) == [(1, 0, 2), (2, 2, 5), (5, 5, 6)]


def test_monophone_dir_without_phone_marks_derives_them(tmp_path, toy_topo):
    a = _states(toy_topo, "A")
    toy_topo.save(tmp_path / "topology.json")
    Alignments({"u": np.array([a[0], a[1], a[0], a[1]])}).save(tmp_path / "ali.npz")
    _, marks, _ = load_alignment_dir(tmp_path)
    aid = toy_topo.phone_ids[toy_topo.phones.index("A")]
    assert marks["u"].tolist() == [aid, 0, aid, 0]
    (tmp_path / "tree.json").write_text("{}")  # a senone dir must carry its marks
    with pytest.raises(InputError, match="phones.npz"):
        load_alignment_dir(tmp_path)


def test_upsampling_a_subsampled_alignment_restores_the_feature_frame_rate():
    from hybrid_asr.hmm.alignment import FrameAlignment, upsample_alignment

    ali = FrameAlignment(np.array([4, 4, 7], dtype=np.int32), np.array([2, 0, 5], dtype=np.int32))
    up = upsample_alignment(ali, 3, 8)
    assert up.pdfs.tolist() == [4, 4, 4, 4, 4, 4, 7, 7]
    assert up.phone_marks.tolist() == [2, 0, 0, 0, 0, 0, 5, 0]
    assert upsample_alignment(ali, 1, 3) is ali


def test_alignment_ctm_uses_the_recorded_frame_shift_and_recording_times(tmp_path, toy_topo, caplog):
    from lhotse import SupervisionSegment, SupervisionSet

    from hybrid_asr.align.ctm import supervision_placements, write_alignment_ctm
    from hybrid_asr.hmm.alignment import monophone_marks, read_frame_shift
    from hybrid_asr.stages.align import _save

    a, s = _states(toy_topo, "A"), _states(toy_topo, "SIL")
    alis = {"u2": np.array([s[0], s[1], s[2], a[0], a[1], a[1]]), "u1": np.array([a[0], a[1]]),
            "sp0.9-u1": np.array([a[0], a[1]])}
    _save(tmp_path / "ali", alis, monophone_marks(alis, toy_topo), toy_topo, [], frame_shift=0.03)
    assert read_frame_shift(tmp_path / "ali") == 0.03
    write_alignment_ctm(tmp_path / "ali", tmp_path / "utt.ctm")
    assert (tmp_path / "utt.ctm").read_text().splitlines()[-2:] == ["u2 1 0.000 0.090 SIL", "u2 1 0.090 0.090 A"]
    # u2 starts 1.5 s into rec1 on its second channel, u1 at 0.25 s; the speed-perturbed copy is left out
    sups = SupervisionSet.from_segments([SupervisionSegment("u2", "rec1", 1.5, 0.18, channel=1),
                                         SupervisionSegment("u1", "rec1", 0.25, 0.06, channel=0)])
    assert write_alignment_ctm(tmp_path / "ali", tmp_path / "rec.ctm", placements=supervision_placements(sups)) == 2
    assert (tmp_path / "rec.ctm").read_text().splitlines() == [
        "rec1 1 0.250 0.060 A", "rec1 2 1.500 0.090 SIL", "rec1 2 1.590 0.090 A"]
    assert "1 of 3 aligned utterances are not in the supervisions" in caplog.text
    (tmp_path / "ali" / "frame_shift").write_text("ten ms\n")
    with pytest.raises(InputError, match="frame_shift"):
        write_alignment_ctm(tmp_path / "ali", tmp_path / "bad.ctm")


def test_compare_alignments_counts_frames_with_the_same_phone(tmp_path, toy_topo, capsys):
    """Per-frame phone agreement from the phone marks: a one-frame boundary shift in one of two
    utterances costs that frame; an utterance of another length is skipped and said so; the CLI
    prints the share; another phone set is refused with one line."""
    import json

    from hybrid_asr.cli.main import main
    from hybrid_asr.hmm.alignment import frame_phones, phone_agreement
    from hybrid_asr.stages.align import compare_alignment_dirs

    assert frame_phones(np.array([0, 3, 0, 5, 0])).tolist() == [0, 3, 3, 5, 5]
    assert frame_phones(np.array([], dtype=np.int32)).tolist() == []
    ref = {"u1": np.array([2, 0, 0, 4, 0, 0]), "u2": np.array([3, 0, 0, 0]), "u3": np.array([2, 0])}
    hyp = {"u1": np.array([2, 0, 4, 0, 0, 0]), "u2": np.array([3, 0, 0, 0]), "u3": np.array([2, 0, 0])}
    assert phone_agreement(ref, hyp) == (9, 10, 2)
    for name, marks in (("ref", ref), ("hyp", hyp)):
        (tmp_path / name).mkdir()
        toy_topo.save(tmp_path / name / "topology.json")
        Alignments({u: np.zeros(len(m)) for u, m in marks.items()}).save(tmp_path / name / "ali.npz")
        Alignments(marks).save(tmp_path / name / "phones.npz")
    assert main(["compare-alignments", str(tmp_path / "ref"), str(tmp_path / "hyp")]) == 0
    out = capsys.readouterr().out
    assert "90.0% of 10 frames agrees with" in out and "(2 utterances; 1 utterances of the reference not compared)" in out
    topo_file = tmp_path / "hyp" / "topology.json"
    data = json.loads(topo_file.read_text())
    data["phones"] = list(reversed(data["phones"]))
    topo_file.write_text(json.dumps(data))
    with pytest.raises(InputError, match="other phones"):
        compare_alignment_dirs(tmp_path / "ref", [tmp_path / "hyp"])
