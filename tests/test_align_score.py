"""``align-audio`` scores its alignment and warns when the transcript is not the audio's: on AN4
dev (speakers the model never heard), another utterance's transcript is flagged and the right one
is not."""

import logging
import random

from conftest import AN4, corpus_mark

from hybrid_asr.align.audio import TranscriptCheckConfig, align_audio, score_alignment
from hybrid_asr.bundle import ModelBundle
from hybrid_asr.cli.main import main
from hybrid_asr.data import read_split
from hybrid_asr.errors import AlignmentError
from hybrid_asr.lang import Lang

pytestmark = corpus_mark(AN4)


def test_score_alignment_averages_the_aligned_and_the_best_senones():
    import torch

    scores = torch.tensor([[0.0, -1.0, -3.0], [-2.0, -0.5, -4.0]])
    score = score_alignment(scores, [1, 0])
    assert score.frames == 2
    assert abs(score.log_likelihood - (-1.0 - 2.0) / 2) < 1e-9
    assert abs(score.best_log_likelihood - (0.0 - 0.5) / 2) < 1e-9
    assert abs(score.gap - (-1.25)) < 1e-9


def test_wrong_transcripts_are_flagged_and_right_ones_are_not(an4_exp):
    bundle, lang = ModelBundle.load(an4_exp / "dnn2"), Lang(an4_exp / "lang")
    recs, sups = read_split(an4_exp / "manifests", "dev")
    paths = {r.id: r.sources[0].source for r in recs}
    sups = sorted(sups, key=lambda s: s.id)
    check, rng = TranscriptCheckConfig(), random.Random(0)
    right_flagged = wrong_flagged = 0
    for s in sups:
        other = rng.choice([o for o in sups if o.text.split() != s.text.split()])
        right_flagged += check.suspicious(align_audio(bundle, lang, paths[s.recording_id], s.text).score)
        try:
            wrong_flagged += check.suspicious(align_audio(bundle, lang, paths[s.recording_id], other.text).score)
        except AlignmentError:  # too many phones for the frames: refused outright
            wrong_flagged += 1
    assert len(sups) >= 50
    assert wrong_flagged >= 0.9 * len(sups), (wrong_flagged, len(sups))
    assert right_flagged <= 0.05 * len(sups), (right_flagged, len(sups))


def test_align_audio_prints_the_score_and_warns_on_another_files_transcript(an4_exp, capsys, caplog):
    recs, sups = read_split(an4_exp / "manifests", "dev")
    sups = sorted(sups, key=lambda s: s.id)
    sup = sups[0]
    wav = next(r.sources[0].source for r in recs if r.id == sup.recording_id)
    other = next(o.text for o in sups  # no word in common, no longer (so that it aligns)
                 if not set(o.text.split()) & set(sup.text.split()) and len(o.text.split()) <= len(sup.text.split()))
    args = ["align-audio", str(an4_exp / "dnn2"), str(an4_exp / "lang"), wav]
    capsys.readouterr()
    with caplog.at_level(logging.WARNING):
        assert main([*args, sup.text]) == 0
    err = capsys.readouterr().err
    assert f"hybrid-asr align-audio: {wav}: " in err and "per frame below the best senones" in err
    assert not [r for r in caplog.records if "fits the audio badly" in r.getMessage()]
    with caplog.at_level(logging.WARNING):
        assert main([*args, other]) == 0
    out, err = capsys.readouterr()
    assert out  # the CTM is still written
    warnings = [r.getMessage() for r in caplog.records if "fits the audio badly" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith(f"{wav}: the transcript fits the audio badly (")
    assert warnings[0].endswith("per frame below the best senones, under -2): is it this file's transcript?")
