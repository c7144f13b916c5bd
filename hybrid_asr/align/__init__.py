"""Alignment: flat start, Viterbi forced alignment (k2), storage and phone segments."""

from hybrid_asr.align.alignments import (
    Alignments,
    FrameAlignment,
    equal_alignment,
    flat_start_phones,
    load_alignment_dir,
    phone_segments,
    segments_from_marks,
    senone_segments,
)
from hybrid_asr.align.viterbi import align_dataset, viterbi_align

__all__ = ["Alignments", "FrameAlignment", "align_dataset", "equal_alignment", "flat_start_phones", "load_alignment_dir",
           "phone_segments", "segments_from_marks", "senone_segments", "viterbi_align"]
