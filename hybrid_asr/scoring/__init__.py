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
    write_report,
    write_transcripts,
)

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
