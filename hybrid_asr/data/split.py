"""Held-out speakers: carve a dev set out of a training split (Kaldi ``subset_data_dir_tr_cv.sh
--cv-spk-percent``), optionally balanced over speaker groups (e.g. children and adults)."""

import random
from typing import Dict, List, Mapping, Optional, Sequence, Set, Tuple

from lhotse import RecordingSet, SupervisionSet

from hybrid_asr.errors import HybridAsrError


def choose_dev_speakers(speakers: Sequence[str], fraction: float, seed: int = 0,
                        groups: Optional[Mapping[str, str]] = None) -> Set[str]:
    """Pick ``fraction`` of the speakers, at random but reproducibly, as held-out speakers.

    With ``groups`` (speaker -> group label, e.g. ``"child"``/``"adult"``) the fraction is taken
    within every group separately (at least one speaker from each group with two or more
    speakers), so that the dev set has the training set's mix.

    Args:
        speakers: speaker ids (duplicates are ignored).
        fraction: share of speakers to hold out, ``0 < fraction < 1``.
        seed: seed of the random choice.
        groups: optional speaker -> group label; speakers without a label form one group.

    Returns:
        The held-out speaker ids.

    Raises:
        HybridAsrError: the fraction is out of range, or fewer than two speakers.
    """
    if not 0.0 < fraction < 1.0:
        raise HybridAsrError(f"dev fraction must be between 0 and 1, got {fraction}")
    unique = sorted(set(speakers))
    if len(unique) < 2:
        raise HybridAsrError(f"cannot hold out speakers from {len(unique)} speaker(s)")
    by_group: Dict[str, List[str]] = {}
    for spk in unique:
        by_group.setdefault((groups or {}).get(spk, ""), []).append(spk)
    rng = random.Random(seed)
    dev: Set[str] = set()
    for group in sorted(by_group):
        members = by_group[group]
        rng.shuffle(members)
        n = int(round(len(members) * fraction))
        if len(members) >= 2:
            n = min(max(n, 1), len(members) - 1)
        dev.update(members[:n])
    return dev


def split_by_speakers(recordings: RecordingSet, supervisions: SupervisionSet, dev_speakers: Set[str]
                      ) -> Tuple[Tuple[RecordingSet, SupervisionSet], Tuple[RecordingSet, SupervisionSet]]:
    """Split manifests into ``(rest, dev)`` by the speaker of each supervision.

    A recording goes with its supervisions (all of one recording's supervisions must be on one
    side: a recording shared by a dev and a non-dev speaker is an error).

    Raises:
        HybridAsrError: a recording has supervisions on both sides, or one side is empty.
    """
    side: Dict[str, bool] = {}
    for s in supervisions:
        is_dev = s.speaker in dev_speakers
        if side.setdefault(s.recording_id, is_dev) != is_dev:
            raise HybridAsrError(f"recording {s.recording_id} has speakers on both sides of the dev split")
    parts = []
    for want in (False, True):
        sups = supervisions.filter(lambda s: side[s.recording_id] == want)
        recs = recordings.filter(lambda r: side.get(r.id) == want)
        if len(sups) == 0:
            raise HybridAsrError("the dev split leaves one side without utterances")
        parts.append((recs, sups))
    return parts[0], parts[1]


__all__ = ["choose_dev_speakers", "split_by_speakers"]
