"""Free Spoken Digit Dataset (FSDD): download and conversion to lhotse manifests.

Audio files are ``recordings/<digit>_<speaker>_<index>.wav`` (8000 Hz mono). Following the
dataset's README, indices 0-4 of every (digit, speaker) pair form the test split and the rest the
train split. Each file is one utterance of one digit word; its id is the file stem.
"""

import logging
import re
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from lhotse import RecordingSet, SupervisionSegment, SupervisionSet

from hybrid_asr.data.manifests import download_and_extract, find_dir_with, recording_from_file
from hybrid_asr.errors import InputError

logger = logging.getLogger(__name__)

FSDD_URL = (
    "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/heads/master.tar.gz"
)
DIGIT_WORDS = ("ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE")
FSDD_SPLITS = ("train", "test")
NUM_TEST_INDICES = 5

_NAME_RE = re.compile(r"^(?P<digit>[0-9])_(?P<speaker>[A-Za-z0-9]+)_(?P<index>[0-9]+)$")


class FsddFile(NamedTuple):
    """One FSDD audio file and the fields parsed from its name."""

    path: Path
    digit: int
    speaker: str
    index: int

    @property
    def split(self) -> str:
        """``"test"`` for indices 0-4, else ``"train"``."""
        return "test" if self.index < NUM_TEST_INDICES else "train"


def download_fsdd(target_dir: Path) -> Path:
    """Download the FSDD repository snapshot from GitHub and extract it.

    Args:
        target_dir: where to put the archive and the extracted corpus; created if missing.

    Returns:
        The extracted corpus directory (the one holding ``recordings/``).

    Raises:
        urllib.error.URLError: the download failed.
        InputError: the archive does not contain a ``recordings`` directory.
    """
    download_and_extract(FSDD_URL, target_dir)
    return find_dir_with(target_dir, "recordings", Path(target_dir))


def parse_fsdd_name(path: Path) -> FsddFile:
    """Parse ``<digit>_<speaker>_<index>.wav``.

    Raises:
        InputError: the file name does not have that form.
    """
    match = _NAME_RE.match(path.stem)
    if match is None or path.suffix != ".wav":
        raise InputError(path, "FSDD file name is not <digit>_<speaker>_<index>.wav")
    digit, speaker, index = match.group("digit", "speaker", "index")
    return FsddFile(path, int(digit), speaker, int(index))


def list_fsdd_files(
    corpus_dir: Path,
    speakers: Optional[Sequence[str]] = None,
    max_per_digit_speaker: Optional[int] = None,
) -> List[FsddFile]:
    """List the FSDD audio files to use, sorted by (digit, speaker, index).

    Args:
        corpus_dir: directory holding ``recordings/``.
        speakers: keep only these speakers; None keeps all.
        max_per_digit_speaker: keep, per (digit, speaker), only the N smallest train indices and
            the N smallest test indices; None keeps all.

    Raises:
        InputError: ``recordings/`` is missing or has no WAV files; a WAV file name is malformed;
            a requested speaker has no files.
    """
    rec_dir = Path(corpus_dir) / "recordings"
    if not rec_dir.is_dir():
        raise InputError(rec_dir, "FSDD recordings directory does not exist")
    files = [parse_fsdd_name(p) for p in rec_dir.glob("*.wav")]
    if not files:
        raise InputError(rec_dir, "no .wav files")
    if speakers is not None:
        missing = sorted(set(speakers) - {f.speaker for f in files})
        if missing:
            raise InputError(rec_dir, f"no recordings of speaker(s) {', '.join(missing)}")
        files = [f for f in files if f.speaker in set(speakers)]
    files.sort(key=lambda f: (f.digit, f.speaker, f.index))
    if max_per_digit_speaker is not None:
        kept: Dict[Tuple[int, str, str], int] = defaultdict(int)
        selected = []
        for f in files:
            key = (f.digit, f.speaker, f.split)
            if kept[key] < max_per_digit_speaker:
                kept[key] += 1
                selected.append(f)
        files = selected
    return files


def prepare_fsdd(
    corpus_dir: Path,
    speakers: Optional[Sequence[str]] = None,
    max_per_digit_speaker: Optional[int] = None,
) -> Dict[str, Tuple[RecordingSet, SupervisionSet]]:
    """Build the lhotse manifests of FSDD's train and test splits.

    Args:
        corpus_dir: directory holding ``recordings/`` (e.g. ``../shared/data/fsdd``).
        speakers: keep only these speakers (e.g. ``["george", "jackson"]``); None keeps all.
        max_per_digit_speaker: keep, per (digit, speaker), only the first N train indices and
            the first N test indices (by index); None keeps all. For small test subsets.

    Returns:
        ``{"train": (recordings, supervisions), "test": (recordings, supervisions)}``; one
        supervision per file spanning it (channel 0, language ``"English"``), text the digit
        word (``DIGIT_WORDS``), speaker the speaker name, ids the file stem; durations in
        seconds, sampling rate as in the files (8000 Hz).

    Raises:
        InputError: see :func:`list_fsdd_files`; an audio file is unreadable.
    """
    parts = {split: ([], []) for split in FSDD_SPLITS}
    for f in list_fsdd_files(corpus_dir, speakers, max_per_digit_speaker):
        recording = recording_from_file(f.path, f.path.stem)
        recordings, supervisions = parts[f.split]
        recordings.append(recording)
        supervisions.append(
            SupervisionSegment(
                id=recording.id,
                recording_id=recording.id,
                start=0.0,
                duration=recording.duration,
                channel=0,
                text=DIGIT_WORDS[f.digit],
                speaker=f.speaker,
                language="English",
            )
        )
    result = {}
    for split, (recordings, supervisions) in parts.items():
        result[split] = (
            RecordingSet.from_recordings(recordings),
            SupervisionSet.from_segments(supervisions),
        )
        logger.info("FSDD %s: %d utterances", split, len(supervisions))
    return result
