"""Alignments as CTM: one line per phone or senone segment with its start time and duration.

The CTM layout (NIST; Kaldi's ``ali-to-phones --ctm-output``) is
``<utterance> <channel> <start seconds> <duration seconds> <label>``: times relative to the
utterance, channel 1. Given where each utterance lies in its recording (a lhotse supervision
manifest: recording id, start, channel), the first field is the recording and the times are
relative to it, as Kaldi's ``utils/convert_ctm.pl`` makes them from ``segments``.
"""

import logging
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from hybrid_asr.hmm.alignment import load_alignment_dir, read_frame_shift, segments_from_marks, senone_segments
from hybrid_asr.errors import AlignmentError, InputError
from hybrid_asr.hmm.topology import HmmTopology
from hybrid_asr.utils import write_text_atomic

log = logging.getLogger(__name__)

LEVELS = ("phone", "senone")

Placement = Tuple[str, float, int]
"""Where an utterance lies: ``(recording id, start in seconds, channel number from 1)``."""


def ctm_lines(utt_id: str, segments: Iterable[Tuple[object, int, int]], frame_shift: float,
              offset: float = 0.0, channel: int = 1) -> List[str]:
    """CTM lines of one utterance's ``(label, first frame, end frame)`` segments.

    Args:
        utt_id: first field of every line (the utterance, or its recording with ``offset``).
        segments: labels with frame ranges ``[first, end)``.
        frame_shift: seconds per frame (0.01 for a 10 ms shift).
        offset: seconds added to every start (the utterance's start in its recording).
        channel: second field.
    """
    return [f"{utt_id} {channel} {offset + start * frame_shift:.3f} {(end - start) * frame_shift:.3f} {label}"
            for label, start, end in segments]


def supervision_placements(supervisions) -> Dict[str, Placement]:
    """Utterance id -> :data:`Placement` from a lhotse ``SupervisionSet`` (channel 0 -> 1)."""
    def channel(sup) -> int:
        c = sup.channel[0] if isinstance(sup.channel, list) else sup.channel
        return int(c or 0) + 1
    return {sup.id: (sup.recording_id, float(sup.start), channel(sup)) for sup in supervisions}


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
                        frame_shift: Optional[float] = None,
                        placements: Optional[Mapping[str, Placement]] = None) -> int:
    """Write every utterance of an alignment directory as CTM (atomically).

    Args:
        ali_dir: alignment directory (``ali.npz``, ``phones.npz``, ``topology.json``, ``frame_shift``).
        out: CTM file to write.
        level: ``"phone"`` or ``"senone"``.
        frame_shift: seconds per frame; None: the directory's ``frame_shift`` file (0.01, with a
            warning, for a directory written before it existed).
        placements: utterance -> (recording, start seconds, channel), e.g.
            :func:`supervision_placements`: lines name the recording and times are relative to
            it, in recording and time order; utterances it lacks (e.g. speed-perturbed copies)
            are left out, with a warning giving their number. None: utterance-relative times.

    Returns:
        The number of utterances written.

    Raises:
        InputError: a file of the directory is missing, or its phone marks are broken.
    """
    alis, marks, topo = load_alignment_dir(ali_dir)
    if frame_shift is None:
        frame_shift = read_frame_shift(ali_dir)
        if frame_shift is None:
            frame_shift = 0.01
            log.warning("%s records no frame shift (written by an older version): assuming 0.01 s", ali_dir)
    utts = sorted(alis)
    if placements is not None:
        missing = [u for u in utts if u not in placements]
        if missing:
            log.warning("%d of %d aligned utterances are not in the supervisions (e.g. %s); left out of %s",
                        len(missing), len(utts), missing[0], out)
        utts = sorted((u for u in utts if u in placements), key=lambda u: (placements[u][0], placements[u][1], u))
    lines: List[str] = []
    for utt in utts:
        name, offset, channel = placements[utt] if placements is not None else (utt, 0.0, 1)
        try:
            segments = alignment_segments(alis[utt], marks[utt], topo, level)
        except (AlignmentError, KeyError) as e:
            raise InputError(Path(ali_dir) / "phones.npz", f"utterance {utt}: {e}") from None
        lines += ctm_lines(name, segments, frame_shift, offset, channel)
    write_text_atomic(out, "".join(line + "\n" for line in lines))
    return len(utts)
