"""Alignment: flat start, Viterbi forced alignment (k2), storage and phone segments."""

from hybrid_asr.align.alignments import Alignments, equal_alignment, flat_start_phones, phone_segments
from hybrid_asr.align.viterbi import align_dataset, viterbi_align

__all__ = ["Alignments", "align_dataset", "equal_alignment", "flat_start_phones", "phone_segments", "viterbi_align"]
