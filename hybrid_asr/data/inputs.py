"""What ``hybrid-asr decode`` accepts: audio files, directories (recursive), Kaldi ``wav.scp``
files (with ``segments`` beside them), lhotse manifests; all turned into one list of segments."""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

from hybrid_asr.errors import InputError

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac", ".sph", ".mp3", ".ogg", ".opus", ".m4a", ".aiff", ".aif")
"""File name endings a directory is searched for (case-insensitive)."""


@dataclass(frozen=True)
class AudioSegment:
    """One thing to decode: a whole audio file or a segment of one.

    Attributes:
        id: utterance id (file path for a lone file; the Kaldi/lhotse id otherwise).
        path: audio file.
        recording: recording id (CTM times are relative to this recording).
        start: start in the recording, seconds.
        duration: seconds; None: to the end of the file.
    """

    id: str
    path: Path
    recording: str
    start: float = 0.0
    duration: Optional[float] = None


def _kaldi_map(path: Path, fields: int) -> List[List[str]]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=fields - 1)
        if len(parts) < fields:
            raise InputError(path, f"line {n}: expected {fields} fields, got {len(parts)}")
        rows.append(parts)
    return rows


def read_wav_scp(path: Union[str, Path]) -> List[AudioSegment]:
    """Segments of a Kaldi ``wav.scp`` (``<recording> <file>``, paths relative to the file's
    directory or absolute); with a ``segments`` file beside it (``<utt> <recording> <start>
    <end>``), its segments instead.

    Raises:
        InputError: a malformed line, a piped command (``... |``, not supported: convert the
            audio to files first) or a segment of an unknown recording.
    """
    path = Path(path)
    recordings = {}
    for rec, target in _kaldi_map(path, 2):
        target = target.strip()
        if target.endswith("|"):
            raise InputError(path, f"recording {rec}: piped commands are not supported, give audio files")
        p = Path(target)
        recordings[rec] = p if p.is_absolute() else path.parent / p
    segments_file = path.parent / "segments"
    if not segments_file.is_file():
        return [AudioSegment(rec, p, rec) for rec, p in recordings.items()]
    out = []
    for n, (utt, rec, start, end) in enumerate(_kaldi_map(segments_file, 4), 1):
        if rec not in recordings:
            raise InputError(segments_file, f"line {n}: recording {rec} is not in {path.name}")
        try:
            t0, t1 = float(start), float(end)
        except ValueError:
            raise InputError(segments_file, f"line {n}: start and end must be numbers") from None
        out.append(AudioSegment(utt, recordings[rec], rec, t0, None if t1 < 0 else t1 - t0))
    return out


def read_lhotse_manifest(path: Union[str, Path]) -> List[AudioSegment]:
    """Segments of a lhotse ``RecordingSet`` (whole recordings) or ``CutSet`` (each cut; its
    supervisions are not needed), read with ``lhotse.load_manifest``.

    Raises:
        InputError: not a recording or cut manifest, or a recording that is not one audio file.
    """
    from lhotse import CutSet, RecordingSet, load_manifest

    path = Path(path)
    try:
        manifest = load_manifest(path)
    except Exception as e:  # noqa: BLE001 - lhotse raises many types for a bad manifest
        raise InputError(path, f"not a lhotse manifest: {str(e).splitlines()[0][:200] if str(e) else e}") from None

    def source(rec) -> Path:
        if len(rec.sources) != 1 or rec.sources[0].type != "file":
            raise InputError(path, f"recording {rec.id}: only recordings with one audio file are supported")
        return Path(rec.sources[0].source)

    if isinstance(manifest, RecordingSet):
        return [AudioSegment(r.id, source(r), r.id) for r in manifest]
    if isinstance(manifest, CutSet):
        return [AudioSegment(c.id, source(c.recording), c.recording.id, c.start, c.duration) for c in manifest]
    raise InputError(path, f"a {type(manifest).__name__}: give a recording or cut manifest")


def collect_inputs(paths: Sequence[Union[str, Path]]) -> Tuple[List[AudioSegment], List[Tuple[str, str]]]:
    """Turn command-line inputs into segments to decode.

    Each input is an audio file; a directory (searched recursively for :data:`AUDIO_SUFFIXES`,
    sorted); a file named ``*.scp`` (Kaldi ``wav.scp``, with ``segments`` if beside it); or a
    lhotse manifest (``*.jsonl``, ``*.jsonl.gz``, ``*.json``).

    Returns:
        ``(segments, problems)``: problems are ``(input, message)`` of inputs that gave nothing
        (missing, empty directory, bad manifest); the others are still returned.
    """
    segments: List[AudioSegment] = []
    problems: List[Tuple[str, str]] = []
    for item in paths:
        p = Path(item)
        try:
            if p.is_dir():
                files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES)
                if not files:
                    raise InputError(p, "directory holds no audio files (" + ", ".join(AUDIO_SUFFIXES) + ")")
                segments += [AudioSegment(str(f), f, str(f)) for f in files]
            elif not p.exists():
                raise InputError(p, "does not exist")
            elif p.suffix == ".scp":
                segments += read_wav_scp(p)
            elif p.name.endswith((".jsonl", ".jsonl.gz", ".json")):
                segments += read_lhotse_manifest(p)
            else:
                segments.append(AudioSegment(str(p), p, str(p)))
        except InputError as e:
            problems.append((str(p), str(e)))
    ids = [s.id for s in segments]
    if len(set(ids)) != len(ids):
        log.warning("some inputs appear more than once; each is decoded every time it appears")
    return segments, problems


__all__ = ["AUDIO_SUFFIXES", "AudioSegment", "collect_inputs", "read_lhotse_manifest", "read_wav_scp"]
