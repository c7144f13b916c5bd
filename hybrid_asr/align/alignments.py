"""Frame alignments: storage, flat start, phone segments."""

from pathlib import Path
from typing import Dict, Iterator, List, Mapping, NamedTuple, Optional, Tuple, Union

import numpy as np

from hybrid_asr.errors import AlignmentError, InputError
from hybrid_asr.hmm.topology import HmmTopology
from hybrid_asr.lang.lexicon import SIL, UNK, Lexicon
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
    """

    pdfs: np.ndarray
    phone_marks: np.ndarray


def speech_bounds(energy: np.ndarray, fraction: float = 0.3, margin: int = 5) -> Tuple[int, int]:
    """Frames ``[start, end)`` between the first and last frame louder than a threshold.

    The threshold lies ``fraction`` of the way from the 5th to the 95th percentile of the
    utterance's frame energies (noise floor to speech level); ``margin`` frames are kept on each
    side. Used to give the flat start's leading and trailing SIL realistic durations.

    Args:
        energy: ``[T]`` log energy per frame (e.g. mean log mel energy).
        fraction: position of the threshold between noise floor and speech level.
        margin: frames of padding around the detected speech.

    Returns:
        ``(start, end)`` with ``0 <= start < end <= T``; ``(0, T)`` if nothing stands out.
    """
    lo, hi = np.percentile(energy, [5, 95])
    loud = np.flatnonzero(energy > lo + fraction * (hi - lo))
    if hi - lo < 1e-3 or loud.size == 0:
        return 0, len(energy)
    return max(0, int(loud[0]) - margin), min(len(energy), int(loud[-1]) + 1 + margin)


def equal_alignment(phones: List[str], num_frames: int, topo: HmmTopology) -> np.ndarray:
    """Flat-start alignment: divide the frames equally among the HMM states of a phone sequence.

    Kaldi's ``align-equal-compiled`` on a single path; the starting point of Viterbi training
    (Young et al., *The HTK Book*, section 8.3, "flat start").

    Args:
        phones: phone sequence of the utterance (e.g. SIL, the words' phones, SIL).
        num_frames: T.
        topo: gives the states and pdf-ids of each phone.

    Returns:
        int32 ``[T]`` pdf-ids, non-decreasing state order.

    Raises:
        AlignmentError: fewer frames than states.
    """
    pdfs = [topo.pdf_id(p, s) for p in phones for s in range(topo.num_states[topo.phones.index(p)])]
    if num_frames < len(pdfs):
        raise AlignmentError(f"{num_frames} frames are fewer than the {len(pdfs)} HMM states of the text")
    bounds = np.linspace(0, num_frames, len(pdfs) + 1).round().astype(int)
    return np.repeat(np.asarray(pdfs, dtype=np.int32), np.diff(bounds))


def flat_start_alignment(text: str, energy: np.ndarray, lexicon: Lexicon, topo: HmmTopology) -> np.ndarray:
    """Flat start that puts SIL where the energy says there is silence.

    Leading and trailing SIL take the quiet frames before and after the speech region
    (:func:`speech_bounds`, at least one HMM chain long), and the words' phones share the speech
    region equally (:func:`equal_alignment`).

    Args:
        text: transcript.
        energy: ``[T]`` log energy per frame.
        lexicon: pronunciations (first one per word is used).
        topo: HMM topology.

    Returns:
        int32 ``[T]`` pdf-ids.

    Raises:
        AlignmentError: too few frames for the states of the text.
    """
    phones = flat_start_phones(text, lexicon)
    sil_len = topo.num_states[topo.phones.index(SIL)]
    num = len(energy)
    start, end = speech_bounds(energy)
    start, end = max(start, sil_len), min(end, num - sil_len)
    speech_states = sum(topo.num_states[topo.phones.index(p)] for p in phones[1:-1])
    if end - start < speech_states:
        return equal_alignment(phones, num, topo)
    return np.concatenate([
        equal_alignment(phones[:1], start, topo),
        equal_alignment(phones[1:-1], end - start, topo),
        equal_alignment(phones[-1:], num - end, topo),
    ])


def flat_start_phones(text: str, lexicon: Lexicon) -> List[str]:
    """SIL + first pronunciation of every word (``<UNK>`` for unknown ones) + SIL."""
    prons = lexicon.pronunciations()
    phones = [SIL]
    for word in text.split():
        phones.extend(prons.get(word, prons.get(UNK))[0])
    return phones + [SIL]


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
