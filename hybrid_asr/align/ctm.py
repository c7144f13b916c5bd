"""Alignments as CTM: one line per phone or senone segment with its start time and duration.

The CTM layout (NIST; Kaldi's ``ali-to-phones --ctm-output``) is
``<utterance> <channel> <start seconds> <duration seconds> <label>``, channel always 1.
"""

from pathlib import Path
from typing import Iterable, List, Sequence, Tuple, Union

import numpy as np

from hybrid_asr.hmm.alignment import load_alignment_dir, segments_from_marks, senone_segments
from hybrid_asr.errors import AlignmentError, InputError
from hybrid_asr.hmm.topology import HmmTopology
from hybrid_asr.utils import write_text_atomic

LEVELS = ("phone", "senone")


def ctm_lines(utt_id: str, segments: Iterable[Tuple[object, int, int]], frame_shift: float) -> List[str]:
    """CTM lines of one utterance's ``(label, first frame, end frame)`` segments.

    Args:
        utt_id: first field of every line.
        segments: labels with frame ranges ``[first, end)``.
        frame_shift: seconds per frame (0.01 for a 10 ms shift).
    """
    return [f"{utt_id} 1 {start * frame_shift:.3f} {(end - start) * frame_shift:.3f} {label}"
            for label, start, end in segments]


def alignment_segments(pdfs: np.ndarray, marks: np.ndarray, topo: HmmTopology,
                       level: str) -> Sequence[Tuple[object, int, int]]:
    """Segments of one utterance at a level: ``"phone"`` (phone names) or ``"senone"`` (pdf-ids).

    Raises:
        ValueError: unknown level.
        AlignmentError: the marks are not a valid phone segmentation.
    """
    if level == "phone":
        return segments_from_marks(marks, topo.phone_names)
    if level == "senone":
        return senone_segments(pdfs, marks)
    raise ValueError(f"level must be one of {LEVELS}, not {level!r}")


def write_alignment_ctm(ali_dir: Union[str, Path], out: Union[str, Path], level: str = "phone",
                        frame_shift: float = 0.01) -> int:
    """Write every utterance of an alignment directory as CTM (atomically).

    Args:
        ali_dir: alignment directory (``ali.npz``, ``phones.npz``, ``topology.json``).
        out: CTM file to write.
        level: ``"phone"`` or ``"senone"``.
        frame_shift: seconds per frame of the features the alignments were made on.

    Returns:
        The number of utterances written.

    Raises:
        InputError: a file of the directory is missing, or its phone marks are broken.
    """
    alis, marks, topo = load_alignment_dir(ali_dir)
    lines: List[str] = []
    for utt in sorted(alis):
        try:
            lines += ctm_lines(utt, alignment_segments(alis[utt], marks[utt], topo, level), frame_shift)
        except (AlignmentError, KeyError) as e:
            raise InputError(Path(ali_dir) / "phones.npz", f"utterance {utt}: {e}") from None
    write_text_atomic(out, "".join(line + "\n" for line in lines))
    return len(alis)
