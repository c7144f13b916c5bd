"""Reading, writing and checking the lhotse manifests of one data split, and finding corpora.

A split (``train``, ``test``, ...) is stored as two lhotse JSONL files in a manifest directory,
named by :data:`SPLIT_FILES`. Every reader of manifests goes through :func:`read_split`, which
checks the manifests with :func:`validate_split` so that later stages may assume well-formed data.
"""

import logging
import tarfile
import urllib.request
import zlib
from pathlib import Path
from typing import Callable, Optional, Tuple

from lhotse import Recording, RecordingSet, SupervisionSet
from lhotse.audio.utils import AudioLoadingError

from hybrid_asr.errors import InputError
from hybrid_asr.utils import atomic_path, progress

logger = logging.getLogger(__name__)

SPLIT_FILES = ("recordings_{split}.jsonl.gz", "supervisions_{split}.jsonl.gz")

#: Supervisions may overrun their recording by this much (seconds) before it is an error.
_DURATION_TOLERANCE = 0.01


def _split_paths(manifest_dir: Path, split: str) -> Tuple[Path, Path]:
    """Return the (recordings, supervisions) manifest paths of ``split`` in ``manifest_dir``."""
    rec_name, sup_name = (name.format(split=split) for name in SPLIT_FILES)
    return Path(manifest_dir) / rec_name, Path(manifest_dir) / sup_name


def normalize_text(text: str) -> str:
    """Return ``text`` upper-cased, with runs of whitespace collapsed to one space and stripped.

    Args:
        text: a transcript.

    Returns:
        The normalized transcript (may be empty if ``text`` is blank).
    """
    return " ".join(text.upper().split())


def write_split(
    out_dir: Path, split: str, recordings: RecordingSet, supervisions: SupervisionSet
) -> None:
    """Write the manifests of one split to ``out_dir``, each file atomically.

    Args:
        out_dir: manifest directory; created if missing.
        split: split name, e.g. ``"train"``; the files are named by :data:`SPLIT_FILES`.
        recordings: the split's recordings.
        supervisions: the split's supervisions.
    """
    rec_path, sup_path = _split_paths(out_dir, split)
    for manifest, path in ((recordings, rec_path), (supervisions, sup_path)):
        with atomic_path(path) as tmp:
            manifest.to_file(tmp)
    logger.info(
        "wrote %d recordings and %d supervisions of split %s to %s",
        len(recordings), len(supervisions), split, out_dir,
    )


def _load_manifest(path: Path, manifest_cls):
    """Load one manifest file eagerly, turning a missing, empty or unreadable (e.g. truncated
    ``.gz``) file into InputError."""
    if not path.is_file():
        raise InputError(path, "manifest file does not exist")
    try:
        manifest = manifest_cls.from_file(path)
        if manifest is None:  # lhotse's answer for an empty file
            raise InputError(path, "manifest is empty")
        return manifest.to_eager()
    except (OSError, EOFError, zlib.error, ValueError, KeyError, TypeError) as exc:  # EOFError, zlib: a cut or corrupt .gz
        raise InputError(path, f"cannot read manifest: {exc}") from exc


def read_split(manifest_dir: Path, split: str) -> Tuple[RecordingSet, SupervisionSet]:
    """Read and validate the manifests of one split.

    Args:
        manifest_dir: directory written by :func:`write_split`.
        split: split name, e.g. ``"train"``.

    Returns:
        ``(recordings, supervisions)``.

    Raises:
        InputError: a manifest file is missing or unreadable (the message names it), or the
            manifests fail :func:`validate_split`.
    """
    rec_path, sup_path = _split_paths(manifest_dir, split)
    recordings = _load_manifest(rec_path, RecordingSet)
    supervisions = _load_manifest(sup_path, SupervisionSet)
    validate_split(recordings, supervisions, sup_path)
    return recordings, supervisions


def validate_split(recordings: RecordingSet, supervisions: SupervisionSet, source: Path) -> None:
    """Check that a split's manifests are consistent and usable for training.

    Checks: recording and supervision ids are unique; every recording has a duration > 0; every
    supervision refers to a known recording, has a non-empty text, a speaker, a duration > 0
    seconds, and ends within its recording (tolerance 0.01 s).

    Args:
        recordings: the split's recordings.
        supervisions: the split's supervisions.
        source: file or directory named in error messages.

    Raises:
        InputError: on the first problem found, naming ``source`` and the offending id.
    """
    durations = {}
    for rec in recordings:
        if rec.id in durations:
            raise InputError(source, f"duplicate recording id {rec.id}")
        if not rec.duration > 0:
            raise InputError(source, f"recording {rec.id} has duration {rec.duration} <= 0")
        durations[rec.id] = rec.duration
    seen = set()
    for sup in supervisions:
        if sup.id in seen:
            raise InputError(source, f"duplicate supervision id {sup.id}")
        seen.add(sup.id)
        if sup.recording_id not in durations:
            raise InputError(
                source, f"supervision {sup.id} refers to unknown recording {sup.recording_id}"
            )
        if not sup.text or not sup.text.strip():
            raise InputError(source, f"supervision {sup.id} has an empty text")
        if not sup.speaker:
            raise InputError(source, f"supervision {sup.id} has no speaker")
        if not sup.duration > 0:
            raise InputError(source, f"supervision {sup.id} has duration {sup.duration} <= 0")
        if sup.start < 0 or sup.end > durations[sup.recording_id] + _DURATION_TOLERANCE:
            raise InputError(
                source,
                f"supervision {sup.id} ({sup.start:.3f}-{sup.end:.3f} s) lies outside recording "
                f"{sup.recording_id} (0-{durations[sup.recording_id]:.3f} s)",
            )


def resolve_corpus_dir(
    arg: Optional[str], corpus: str, download: Callable[[Path], Path], download_dir: Path
) -> Path:
    """Find a corpus on disk, downloading it if needed.

    Args:
        arg: a user-given corpus directory, or None to look for the shared copy.
        corpus: corpus name, e.g. ``"an4"``; the shared copy is ``<repo>/../shared/data/<corpus>``.
        download: function ``download(download_dir) -> corpus_dir`` used when there is no
            shared copy.
        download_dir: where ``download`` puts the corpus.

    Returns:
        The corpus directory.

    Raises:
        InputError: ``arg`` is given but is not an existing directory.
    """
    if arg is not None:
        path = Path(arg)
        if not path.is_dir():
            raise InputError(path, f"{corpus} corpus directory does not exist")
        return path
    shared = Path(__file__).resolve().parents[2].parent / "shared" / "data" / corpus
    if shared.is_dir():
        logger.info("using the shared %s corpus at %s", corpus, shared)
        return shared
    logger.info("no shared %s corpus at %s; downloading to %s", corpus, shared, download_dir)
    return download(Path(download_dir))


def recording_from_file(path: Path, recording_id: str) -> Recording:
    """Make a lhotse Recording from an audio file, reading its header only.

    Args:
        path: audio file (any format lhotse reads: WAV, NIST SPHERE, FLAC, ...).
        recording_id: id of the new recording.

    Returns:
        The recording (duration in seconds, sampling rate in Hz as found in the header).

    Raises:
        InputError: the file does not exist or its header cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "audio file does not exist")
    try:
        return Recording.from_file(path, recording_id=recording_id)
    except AudioLoadingError as exc:
        raise InputError(path, "cannot read the audio header (unsupported format?)") from exc


DOWNLOAD_TIMEOUT_SECONDS = 60.0
"""A download with no data for this long fails (``urllib.request.urlopen``'s socket timeout)."""


def download_and_extract(url: str, target_dir: Path) -> None:
    """Download a ``.tar.gz`` archive (with a progress bar) and extract it into ``target_dir``.

    Does nothing if a previous call completed for the same archive (a marker file
    ``.<archive>.done`` in ``target_dir`` records that). The download is written atomically.

    Args:
        url: http(s) URL of a tar archive.
        target_dir: directory to extract into; created if missing.

    Raises:
        InputError: the download failed (names the URL and the reason, and suggests a local
            copy through ``--corpus-dir``), or the archive holds a member that would be written
            outside ``target_dir``.
    """
    target_dir = Path(target_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    archive = target_dir / url.rstrip("/").split("/")[-1]
    marker = target_dir / f".{archive.name}.done"
    if marker.is_file():
        logger.info("%s already extracted in %s", archive.name, target_dir)
        return
    if not archive.is_file():
        logger.info("downloading %s", url)
        try:
            with atomic_path(archive) as tmp:
                with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response, open(tmp, "wb") as out:
                    total = int(response.headers.get("Content-Length") or 0) or None
                    with progress(total=total, unit="B", unit_scale=True, desc=archive.name) as bar:
                        for chunk in iter(lambda: response.read(1 << 20), b""):
                            out.write(chunk)
                            bar.update(len(chunk))
        except (OSError, ValueError) as e:  # URLError, HTTPError, timeouts, refused connections, bad URLs
            reason = getattr(e, "reason", None) or e
            raise InputError(url, f"download failed ({reason}); without network, pass a local copy of the "
                             f"corpus with --corpus-dir") from None
    logger.info("extracting %s", archive)
    root = target_dir.resolve()
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            dest = (root / member.name).resolve()
            if dest != root and root not in dest.parents:
                raise InputError(archive, f"archive member {member.name} escapes {target_dir}")
        tar.extractall(root)
    marker.touch()


def find_dir_with(root: Path, relative_file: str, source: Path) -> Path:
    """Return the directory ``d`` under ``root`` (or ``root``) where ``d/relative_file`` exists.

    Used to locate a corpus inside an extracted archive.

    Args:
        root: where to search.
        relative_file: relative path of a file or directory that identifies the wanted
            directory, e.g. ``"etc/an4_train.fileids"``.
        source: named in the error message (usually the archive URL or download dir).

    Raises:
        InputError: no such directory.
    """
    for candidate in [Path(root) / relative_file, *sorted(Path(root).glob(f"**/{relative_file}"))]:
        if candidate.exists():
            return candidate.parents[len(Path(relative_file).parts) - 1]
    raise InputError(source, f"no {relative_file} found under {root}")


__all__ = [
    "SPLIT_FILES",
    "write_split",
    "read_split",
    "validate_split",
    "resolve_corpus_dir",
    "normalize_text",
    "recording_from_file",
    "download_and_extract",
    "find_dir_with",
]
