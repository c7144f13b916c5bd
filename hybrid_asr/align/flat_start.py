"""Flat start: the first alignment, before any model exists (energy-aware equal split)."""

from typing import Dict, List, Tuple

import numpy as np

from hybrid_asr.errors import AlignmentError
from hybrid_asr.hmm.topology import HmmTopology
from hybrid_asr.lang.lexicon import SIL, UNK

Pronunciations = Dict[str, List[Tuple[str, ...]]]
"""word -> its pronunciations in lexicon order (``Lexicon.pronunciations()``)."""


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
    pdfs = [topo.pdf_id(p, s) for p in phones for s in range(topo.states_of(p))]
    if num_frames < len(pdfs):
        raise AlignmentError(f"{num_frames} frames are fewer than the {len(pdfs)} HMM states of the text")
    bounds = np.linspace(0, num_frames, len(pdfs) + 1).round().astype(int)
    return np.repeat(np.asarray(pdfs, dtype=np.int32), np.diff(bounds))


def flat_start_alignment(text: str, energy: np.ndarray, prons: Pronunciations, topo: HmmTopology) -> np.ndarray:
    """Flat start that puts SIL where the energy says there is silence.

    Leading and trailing SIL take the quiet frames before and after the speech region
    (:func:`speech_bounds`, at least one HMM chain long), and the words' phones share the speech
    region equally (:func:`equal_alignment`).

    Args:
        text: transcript.
        energy: ``[T]`` log energy per frame.
        prons: ``Lexicon.pronunciations()`` with ``<UNK>`` (built once per corpus; the first
            pronunciation of each word is used).
        topo: HMM topology.

    Returns:
        int32 ``[T]`` pdf-ids.

    Raises:
        AlignmentError: too few frames for the states of the text.
    """
    phones = flat_start_phones(text, prons)
    sil_len = topo.states_of(SIL)
    num = len(energy)
    start, end = speech_bounds(energy)
    start, end = max(start, sil_len), min(end, num - sil_len)
    speech_states = sum(topo.states_of(p) for p in phones[1:-1])
    if end - start < speech_states:
        return equal_alignment(phones, num, topo)
    return np.concatenate([
        equal_alignment(phones[:1], start, topo),
        equal_alignment(phones[1:-1], end - start, topo),
        equal_alignment(phones[-1:], num - end, topo),
    ])


def flat_start_phones(text: str, prons: Pronunciations) -> List[str]:
    """SIL + first pronunciation of every word (``<UNK>``'s for unknown ones) + SIL; ``prons`` is
    ``Lexicon.pronunciations()`` with ``<UNK>``."""
    phones = [SIL]
    for word in text.split():
        phones.extend(prons.get(word, prons.get(UNK))[0])
    return phones + [SIL]
