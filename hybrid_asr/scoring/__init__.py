"""Scoring: word error rate of decoded hypotheses against reference transcripts."""

from hybrid_asr.scoring.wer import (
    ScoringError,
    UttScore,
    WerResult,
    format_alignment,
    read_transcripts,
    speaker_breakdowns,
    score,
    score_files,
    score_utterance,
    write_transcripts,
)
from hybrid_asr.scoring.report import write_report

__all__ = [
    "ScoringError",
    "UttScore",
    "WerResult",
    "format_alignment",
    "read_transcripts",
    "speaker_breakdowns",
    "score",
    "score_files",
    "score_utterance",
    "write_report",
    "write_transcripts",
]
