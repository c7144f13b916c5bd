"""Alignment: flat start and Viterbi forced alignment (k2). The alignment types themselves
(:class:`~hybrid_asr.hmm.alignment.Alignments`, phone marks, segments) live in :mod:`hybrid_asr.hmm`."""

from hybrid_asr.align.flat_start import equal_alignment, flat_start_alignment, flat_start_phones
from hybrid_asr.align.viterbi import align_dataset, viterbi_align

__all__ = ["align_dataset", "equal_alignment", "flat_start_alignment", "flat_start_phones", "viterbi_align"]
