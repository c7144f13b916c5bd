"""Frame alignments: a pdf-id per frame (a path through the HMM states), phone-start marks beside
them, their storage, and phone and senone segments read off them.

An alignment directory holds ``ali.npz`` (:class:`Alignments`: pdf-id per frame), ``phones.npz``
(phone-start marks: phones.txt id on the first frame of each phone, 0 elsewhere), for senone
alignments ``states.npz`` (the monophone HMM state of every frame: a pdf-id of the topology),
``topology.json``
(the HMM topology the pdf-ids refer to), ``tree.json`` for senone alignments, ``frame_shift``
(seconds per frame, as Kaldi writes it: one number) and ``failed.txt`` (utterances that could not
be aligned). :func:`load_alignment_dir` reads it back, :func:`read_frame_shift` the frame shift.
"""

from pathlib import Path
from typing import Dict, Iterator, List, Mapping, NamedTuple, Optional, Tuple, Union

import numpy as np

from hybrid_asr.errors import AlignmentError, InputError
from hybrid_asr.hmm.topology import HmmTopology
from hybrid_asr.utils import atomic_path


class Alignments(Mapping[str, np.ndarray]):
    """pdf-id of every frame of every aligned utterance.

    A mapping ``utt_id -> int32 [T]``; saved as one ``.npz`` archive (``np.savez_compressed``).

    Example::

        ali = Alignments({"utt1": np.array([0, 0, 1, 2], dtype=np.int32)})
        ali.save("exp/ali/ali.npz"); Alignments.load("exp/ali/ali.npz")["utt1"]
    """

    def __init__(self, data: Dict[str, np.ndarray]):
        self._data = {k: np.asarray(v, dtype=np.int32) for k, v in data.items()}

    def __getitem__(self, key: str) -> np.ndarray:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def save(self, path: Union[str, Path]) -> None:
        """Write the archive atomically."""
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, **self._data)

    @classmethod
    def load(cls, path: Union[str, Path]) -> "Alignments":
        """Read an archive written by :meth:`save`; raises :class:`InputError` if missing."""
        if not Path(path).is_file():
            raise InputError(path, "alignment file does not exist")
        with np.load(path) as z:
            return cls({k: z[k] for k in z.files})


class FrameAlignment(NamedTuple):
    """One utterance's forced alignment: what every frame is, and where every phone starts.

    Attributes:
        pdfs: int32 ``[T]`` pdf-id of every frame (monophone HMM state or senone).
        phone_marks: int32 ``[T]`` phones.txt id of the phone that starts at the frame, 0 on
            every other frame. With senones the phone cannot be read back from the pdf-ids (one
            senone may serve several phones' contexts), so the marks are kept beside them.
        states: int32 ``[T]`` monophone HMM state (pdf-id of the topology) of every frame, or
            None where the alignment did not record it. For monophones it equals ``pdfs``.
    """

    pdfs: np.ndarray
    phone_marks: np.ndarray
    states: Optional[np.ndarray] = None


def phone_segments(ali: np.ndarray, topo: HmmTopology) -> List[Tuple[str, int, int]]:
    """Split a pdf alignment into phones.

    A phone starts where the state enters the phone's first state from anything but itself
    (so two consecutive instances of one phone are kept apart when the first re-enters state 0).

    Returns:
        ``(phone, first frame, end frame (exclusive))`` in time order.
    """
    first_of = {topo.pdf_range(p)[0]: p for p in topo.phones}
    pdf_phone = np.repeat(np.arange(len(topo.phones)), topo.num_states)
    segs: List[Tuple[str, int, int]] = []
    start = 0
    for t in range(1, len(ali) + 1):
        if t == len(ali) or (
            ali[t] != ali[t - 1] and (pdf_phone[ali[t]] != pdf_phone[ali[t - 1]] or ali[t] in first_of)
        ):
            segs.append((topo.phones[pdf_phone[ali[start]]], start, t))
            start = t
    return segs


def phone_marks(segments: List[Tuple[str, int, int]], phone_ids: Mapping[str, int], num_frames: int) -> np.ndarray:
    """Phone segments -> per-frame phone-start marks (the ``phone_marks`` of :class:`FrameAlignment`).

    Args:
        segments: ``(phone, first frame, end frame)`` covering ``[0, num_frames)``.
        phone_ids: phones.txt id of every phone.
        num_frames: T.

    Returns:
        int32 ``[T]``: the phone's id on its first frame, 0 elsewhere.
    """
    marks = np.zeros(num_frames, dtype=np.int32)
    for phone, start, _ in segments:
        marks[start] = phone_ids[phone]
    return marks


def segments_from_marks(marks: np.ndarray, phone_names: Mapping[int, str]) -> List[Tuple[str, int, int]]:
    """Per-frame phone-start marks -> phone segments.

    Args:
        marks: int ``[T]`` phones.txt id on the first frame of every phone, 0 elsewhere.
        phone_names: phones.txt id -> phone.

    Returns:
        ``(phone, first frame, end frame (exclusive))`` in time order.

    Raises:
        AlignmentError: the first frame starts no phone, or a mark is not a known phone id.
    """
    starts = np.flatnonzero(np.asarray(marks))
    if len(marks) and (len(starts) == 0 or starts[0] != 0):
        raise AlignmentError("the phone marks do not start a phone on frame 0")
    ends = list(starts[1:]) + [len(marks)]
    try:
        return [(phone_names[int(marks[s])], int(s), int(e)) for s, e in zip(starts, ends)]
    except KeyError as e:
        raise AlignmentError(f"phone mark {e.args[0]} is not a phone id of the topology") from None


def frame_phones(marks: np.ndarray) -> np.ndarray:
    """The phone of every frame from phone-start marks (the last mark at or before the frame).

    Args:
        marks: int ``[T]`` phones.txt id on the first frame of every phone, 0 elsewhere.

    Returns:
        int32 ``[T]`` phones.txt id of every frame (0 before the first mark).
    """
    marks = np.asarray(marks, dtype=np.int32)
    last = np.maximum.accumulate(np.where(marks > 0, np.arange(len(marks)), -1))  # last mark at or before t
    return np.where(last >= 0, marks[np.maximum(last, 0)], 0).astype(np.int32)


def phone_agreement(reference: Mapping[str, np.ndarray], other: Mapping[str, np.ndarray]) -> Tuple[int, int, int]:
    """How often two alignments put the same phone on a frame, over the utterances both have with
    the same number of frames (the phone accuracy that Kaldi's recipes read from ``ali-to-phones``
    and ``compare-int-vector``).

    Args:
        reference, other: ``utt_id -> int [T]`` phone-start marks (``phones.npz``) of two
            alignments with one phone set.

    Returns:
        ``(frames with the same phone, frames compared, utterances compared)``.
    """
    same = total = utts = 0
    for utt, ref in reference.items():
        hyp = other.get(utt)
        if hyp is None or len(hyp) != len(ref):
            continue
        same += int((frame_phones(ref) == frame_phones(hyp)).sum())
        total += len(ref)
        utts += 1
    return same, total, utts


def senone_segments(pdfs: np.ndarray, marks: Optional[np.ndarray] = None) -> List[Tuple[int, int, int]]:
    """Runs of one pdf-id: ``(pdf, first frame, end frame (exclusive))`` in time order.

    A run also ends where a phone starts (``marks`` nonzero), so that the same senone in two
    consecutive phones gives two segments.
    """
    pdfs = np.asarray(pdfs)
    change = np.flatnonzero(pdfs[1:] != pdfs[:-1]) + 1
    if marks is not None:
        change = np.union1d(change, np.flatnonzero(np.asarray(marks)[1:]) + 1)
    bounds = [0] + [int(c) for c in change] + [len(pdfs)]
    return [(int(pdfs[s]), s, e) for s, e in zip(bounds[:-1], bounds[1:]) if e > s]


def monophone_marks(alignments: Mapping[str, np.ndarray], topo: HmmTopology) -> Dict[str, np.ndarray]:
    """Phone-start marks of monophone alignments (read off the HMM states by :func:`phone_segments`)."""
    ids = {p: i for i, p in topo.phone_names.items()}
    return {u: phone_marks(phone_segments(np.asarray(a), topo), ids, len(a)) for u, a in alignments.items()}


def load_alignment_dir(ali_dir: Union[str, Path]) -> Tuple[Alignments, Alignments, HmmTopology]:
    """Read an alignment directory: pdf-ids, phone-start marks and the topology.

    The marks come from ``phones.npz``; for a monophone directory written before that file
    existed they are derived from the HMM states.

    Returns:
        ``(pdf-id alignments, phone-start marks, topology)``; both alignments map
        ``utt_id -> int32 [T]``.

    Raises:
        InputError: a file is missing, or a senone directory has no ``phones.npz``.
    """
    ali_dir = Path(ali_dir)
    topo = HmmTopology.load(ali_dir / "topology.json")
    alis = Alignments.load(ali_dir / "ali.npz")
    if (ali_dir / "phones.npz").is_file():
        return alis, Alignments.load(ali_dir / "phones.npz"), topo
    if (ali_dir / "tree.json").is_file():
        raise InputError(ali_dir / "phones.npz", "senone alignments without phone marks; realign to get them")
    return alis, Alignments(monophone_marks(alis, topo)), topo


def load_hmm_states(ali_dir: Union[str, Path]) -> Alignments:
    """The monophone HMM state (a pdf-id of the topology) of every frame of an alignment
    directory: ``states.npz`` of a senone directory, ``ali.npz`` itself of a monophone one.

    Raises:
        InputError: a senone directory without ``states.npz`` (written before HMM states were
            recorded: realign it), or a missing file.
    """
    ali_dir = Path(ali_dir)
    if not (ali_dir / "tree.json").is_file():
        return Alignments.load(ali_dir / "ali.npz")
    if not (ali_dir / "states.npz").is_file():
        raise InputError(ali_dir / "states.npz", "senone alignments without HMM states; realign to get them")
    return Alignments.load(ali_dir / "states.npz")


FRAME_SHIFT_FILE = "frame_shift"
"""File of an alignment directory holding its frame shift in seconds (e.g. ``0.01``)."""


def read_frame_shift(ali_dir: Union[str, Path]) -> Optional[float]:
    """Seconds per frame of an alignment directory, or None for a directory written before the
    frame shift was recorded.

    Raises:
        InputError: the file exists but does not hold one positive number.
    """
    path = Path(ali_dir) / FRAME_SHIFT_FILE
    if not path.is_file():
        return None
    try:
        value = float(path.read_text().strip())
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise InputError(path, "expected one positive number of seconds per frame")
    return value


def upsample_alignment(ali: FrameAlignment, factor: int, num_frames: int) -> FrameAlignment:
    """An alignment at a model's output frame rate (one entry per ``factor`` input frames) back at
    the feature frame rate: each pdf-id repeated ``factor`` times and cut to ``num_frames``; phone
    marks moved to frame ``j * factor``. The identity for ``factor`` 1.

    Args:
        ali: ``[ceil(num_frames / factor)]`` pdf-ids and marks.
        factor: frame subsampling factor f of the model that made the alignment.
        num_frames: T, frames of the features.

    Returns:
        :class:`FrameAlignment` with ``[T]`` arrays (empty if ``ali`` is empty; ``states``
        repeated as the pdf-ids).
    """
    if factor == 1 or not len(ali.pdfs):
        return ali
    pdfs = np.repeat(ali.pdfs, factor)[:num_frames]
    marks = np.zeros(num_frames, dtype=np.int32)
    marks[::factor] = ali.phone_marks[: len(marks[::factor])]
    states = None if ali.states is None else np.repeat(ali.states, factor)[:num_frames].astype(np.int32)
    return FrameAlignment(pdfs.astype(np.int32), marks, states)
