"""CMU AN4 (census) database: download and conversion to lhotse manifests.

Layout of a corpus directory::

    etc/an4_{train,test}.fileids        an4_clstk/fash/an251-fash-b
    etc/an4_{train,test}.transcription  <s> YES </s> (an251-fash-b)
    wav/<fileid>.wav  or  wav/<fileid>.sph

The recording id and the supervision id are the utterance id (``an251-fash-b``); the speaker is
the directory holding the audio (``fash``).
"""

import logging
import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from lhotse import RecordingSet, SupervisionSegment, SupervisionSet

from hybrid_asr.data.manifests import (
    download_and_extract,
    find_dir_with,
    normalize_text,
    recording_from_file,
)
from hybrid_asr.errors import InputError
from hybrid_asr.text_files import read_clean_lines

logger = logging.getLogger(__name__)

AN4_URL = "http://www.speech.cs.cmu.edu/databases/an4/an4_sphere.tar.gz"

AN4_SPLITS = ("train", "test")
_MARKERS = frozenset({"<s>", "</s>", "<sil>"})
_TRANSCRIPTION_RE = re.compile(r"^(?P<words>.*?)\s*\((?P<utt>[^()\s]+)\)\s*$")
_AUDIO_SUFFIXES = (".wav", ".sph")


def download_an4(target_dir: Path) -> Path:
    """Download the official AN4 tarball (NIST SPHERE audio) and extract it.

    Args:
        target_dir: where to put the archive and the extracted corpus; created if missing.

    Returns:
        The extracted corpus directory (the one holding ``etc/`` and ``wav/``).

    Raises:
        urllib.error.URLError: the download failed.
        InputError: the archive does not contain an AN4 corpus.
    """
    download_and_extract(AN4_URL, target_dir)
    return find_dir_with(target_dir, "etc/an4_train.fileids", Path(target_dir))


def _numbered_lines(path: Path) -> List[Tuple[int, str]]:
    """Return ``(line_number, line)`` for the non-blank lines of ``path`` (1-based), each cleaned
    by :func:`~hybrid_asr.text_files.clean_transcript` (UTF-8 checked, invisible characters
    removed with a warning, whitespace normalized)."""
    if not path.is_file():
        raise InputError(path, "file does not exist")
    return [(number, line) for number, line in read_clean_lines(path) if line]


def parse_transcription_line(line: str, path: Path, number: int) -> Tuple[str, str]:
    """Parse one AN4 transcription line such as ``<s> YES </s> (an251-fash-b)``.

    Args:
        line: the line, without its newline.
        path: the transcription file, for error messages.
        number: 1-based line number, for error messages.

    Returns:
        ``(utterance_id, text)``; the text is normalized and has no ``<s>``, ``</s>``, ``<sil>``.

    Raises:
        InputError: the line has no trailing ``(utterance-id)`` or no words.
    """
    match = _TRANSCRIPTION_RE.match(line)
    if match is None:
        raise InputError(path, "expected 'WORDS (utterance-id)'", line=number)
    words = [w for w in match.group("words").split() if w.lower() not in _MARKERS]
    text = normalize_text(" ".join(words))
    if not text:
        raise InputError(path, f"utterance {match.group('utt')} has no words", line=number)
    return match.group("utt"), text


def _find_audio(wav_dir: Path, fileid: str) -> Optional[Path]:
    """Return ``wav_dir/<fileid>.wav`` or, failing that, ``.sph``; None if neither exists."""
    for suffix in _AUDIO_SUFFIXES:
        path = wav_dir / f"{fileid}{suffix}"
        if path.is_file():
            return path
    return None


def prepare_an4_split(corpus_dir: Path, split: str) -> Tuple[RecordingSet, SupervisionSet]:
    """Build the manifests of one AN4 split.

    Args:
        corpus_dir: directory holding ``etc/`` and ``wav/``.
        split: ``"train"`` or ``"test"``.

    Returns:
        ``(recordings, supervisions)``, one supervision per recording spanning all of it
        (channel 0, language ``"English"``), in the order of the fileids file.

    Raises:
        InputError: a file is missing or not UTF-8; a line is malformed; an utterance id
            repeats; the fileids and transcription files differ in length or utterance ids (line
            by line); an audio file is missing or unreadable.
    """
    corpus_dir = Path(corpus_dir)
    fileids_path = corpus_dir / "etc" / f"an4_{split}.fileids"
    trans_path = corpus_dir / "etc" / f"an4_{split}.transcription"
    fileids = _numbered_lines(fileids_path)
    transcripts = _numbered_lines(trans_path)
    if len(fileids) != len(transcripts):
        raise InputError(
            trans_path,
            f"has {len(transcripts)} utterances but {fileids_path.name} has {len(fileids)}",
        )
    recordings, supervisions = [], []
    first_line: Dict[str, int] = {}
    for (fid_number, fileid), (trans_number, line) in zip(fileids, transcripts):
        utt_id, text = parse_transcription_line(line, trans_path, trans_number)
        if utt_id in first_line:
            raise InputError(trans_path, f"duplicate utterance id {utt_id} (first on line {first_line[utt_id]})",
                             line=trans_number)
        first_line[utt_id] = trans_number
        parts = fileid.split("/")
        if len(parts) < 2 or parts[-1] != utt_id:
            raise InputError(
                trans_path,
                f"utterance {utt_id} does not match {fileids_path.name} line {fid_number} "
                f"({fileid})",
                line=trans_number,
            )
        audio = _find_audio(corpus_dir / "wav", fileid)
        if audio is None:
            raise InputError(
                corpus_dir / "wav" / f"{fileid}.wav",
                f"audio file (.wav or .sph) does not exist (listed in {fileids_path.name} "
                f"line {fid_number})",
            )
        recording = recording_from_file(audio, utt_id)
        recordings.append(recording)
        supervisions.append(
            SupervisionSegment(
                id=utt_id,
                recording_id=utt_id,
                start=0.0,
                duration=recording.duration,
                channel=0,
                text=text,
                speaker=parts[-2],
                language="English",
            )
        )
    return RecordingSet.from_recordings(recordings), SupervisionSet.from_segments(supervisions)


def prepare_an4(corpus_dir: Path) -> Dict[str, Tuple[RecordingSet, SupervisionSet]]:
    """Build the lhotse manifests of AN4's train and test splits.

    Args:
        corpus_dir: directory holding ``etc/`` and ``wav/`` (e.g. ``../shared/data/an4``).

    Returns:
        ``{"train": (recordings, supervisions), "test": (recordings, supervisions)}``;
        durations are in seconds, sampling rate as in the files (16000 Hz).

    Raises:
        InputError: see :func:`prepare_an4_split`.
    """
    result = {}
    for split in AN4_SPLITS:
        result[split] = prepare_an4_split(corpus_dir, split)
        logger.info("AN4 %s: %d utterances", split, len(result[split][1]))
    return result


def copy_an4_lexicon(corpus_dir: Path, out_dir: Path) -> Path:
    """Copy the corpus's pronunciation dictionary ``etc/an4.dic`` to ``out_dir/an4.dic``.

    Later stages (``prepare-lang``) then need only the manifest directory, not the corpus.

    Raises:
        InputError: the corpus has no ``etc/an4.dic``.
    """
    import shutil

    from hybrid_asr.utils import atomic_path

    src = Path(corpus_dir) / "etc" / "an4.dic"
    if not src.is_file():
        raise InputError(src, "AN4 pronunciation dictionary is missing")
    dst = Path(out_dir) / "an4.dic"
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    return dst


def write_an4_spk2gender(supervisions: SupervisionSet, out_dir: Path) -> Path:
    """Write ``out_dir/spk2gender`` (``<speaker> f|m``): AN4 speaker ids start with the gender.

    ``hold-out-speakers --groups`` reads it to hold out women and men in proportion.
    """
    from hybrid_asr.utils import write_text_atomic

    speakers = sorted({s.speaker for s in supervisions})
    dst = Path(out_dir) / "spk2gender"
    write_text_atomic(dst, "".join(f"{spk} {spk[0]}\n" for spk in speakers))
    return dst
