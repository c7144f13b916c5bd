"""What ``hybrid-asr decode`` accepts: audio files, directories (recursive), Kaldi ``wav.scp``
files (with ``segments`` beside them), lhotse manifests; all turned into one list of segments."""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

from hybrid_asr.data.kaldi_dir import read_segments, read_wav_scp_sources
from hybrid_asr.data.pipes import ALLOW_PIPES_HINT, AudioPath, PipeCommand
from hybrid_asr.errors import InputError

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac", ".sph", ".mp3", ".ogg", ".opus", ".m4a", ".aiff", ".aif")
"""File name endings a directory is searched for (case-insensitive)."""


Channel = Union[None, int, Tuple[int, ...]]
"""Which channels of a recording to decode: a 0-based index, several (averaged), or None (all,
averaged)."""


@dataclass(frozen=True)
class AudioSegment:
    """One thing to decode: a whole audio file or a segment of one.

    Attributes:
        id: utterance id (file path for a lone file; the Kaldi/lhotse id otherwise).
        path: audio file, or a :class:`~hybrid_asr.data.pipes.PipeCommand` (a ``wav.scp`` pipe
            entry, with ``allow_pipes``) whose ``str()`` names its ``wav.scp`` line.
        recording: recording id (CTM times are relative to this recording).
        start: start in the recording, seconds.
        duration: seconds; None: to the end of the file.
        channel: the channel(s) to decode (0-based indices into the file's channels; several
            are averaged); None: all, averaged. A lhotse cut names its channel; a Kaldi
            ``wav.scp`` has none.
    """

    id: str
    path: AudioPath
    recording: str
    start: float = 0.0
    duration: Optional[float] = None
    channel: Channel = None


def read_wav_scp(path: Union[str, Path], allow_pipes: bool = False) -> List[AudioSegment]:
    """Segments of a Kaldi ``wav.scp`` (``<recording> <file>``); with a ``segments`` file beside
    it (``<utt> <recording> <start> <end>``, seconds, end -1 for the end of the recording), its
    segments instead.

    Both files are read as ``import-kaldi-dir`` reads them
    (:func:`~hybrid_asr.data.kaldi_dir.read_kaldi_table`: UTF-8 checked, byte-order mark and CR LF
    dropped, duplicate ids refused naming both lines; :func:`~hybrid_asr.data.kaldi_dir.read_segments`).
    A relative audio path is looked up in the working directory (Kaldi's rule), then in the
    ``wav.scp``'s directory (:func:`~hybrid_asr.data.kaldi_dir.resolve_audio_path`). Files are not
    opened here: a missing one fails when it is decoded, and the others go on.

    Args:
        path: the ``wav.scp``.
        allow_pipes: accept ``<command> |`` entries (the command's output is the audio, read
            when decoded: :class:`~hybrid_asr.data.pipes.PipeCommand`).

    Raises:
        InputError: naming the file and line: a malformed line, a duplicate id, a pipe entry
            without ``allow_pipes``, a segment of an unknown recording or with bad times.
    """
    path = Path(path)
    table, recordings = read_wav_scp_sources(path, allow_pipes)
    segments_file = path.parent / "segments"
    if not segments_file.is_file():
        return [AudioSegment(rec, p, rec) for rec, p in recordings.items()]
    out = []
    for utt, (_, (rec, start, end)) in read_segments(segments_file, table, path).items():
        t0, t1 = float(start), float(end)
        out.append(AudioSegment(utt, recordings[rec], rec, t0, None if t1 == -1 else t1 - t0))
    return out


def read_lhotse_manifest(path: Union[str, Path], allow_pipes: bool = False) -> List[AudioSegment]:
    """Segments of a lhotse ``RecordingSet`` (whole recordings) or ``CutSet`` (each cut, on the
    channel(s) it names; its supervisions are not needed), read with ``lhotse.load_manifest``.

    Args:
        path: the manifest.
        allow_pipes: accept recordings whose source is a command (lhotse's ``command`` type).

    Raises:
        InputError: not a recording or cut manifest; a recording that is not one audio file (or,
            with ``allow_pipes``, one command); a recording with transforms (e.g. speed
            perturbation), which ``decode`` does not apply.
    """
    from lhotse import CutSet, RecordingSet, load_manifest

    path = Path(path)
    try:
        manifest = load_manifest(path)
    except Exception as e:  # noqa: BLE001 - lhotse raises many types for a bad manifest
        raise InputError(path, f"not a lhotse manifest: {str(e).splitlines()[0][:200] if str(e) else e}") from None

    def source(rec) -> AudioPath:
        types = ("file", "command") if allow_pipes else ("file",)
        if len(rec.sources) != 1 or rec.sources[0].type not in types:
            if len(rec.sources) == 1 and rec.sources[0].type == "command":
                raise InputError(path, f"recording {rec.id}: its source is a command; {ALLOW_PIPES_HINT}")
            raise InputError(path, f"recording {rec.id}: only recordings with one audio file are supported")
        if rec.transforms:
            raise InputError(path, f"recording {rec.id}: has transforms (e.g. speed perturbation), which decode "
                             "does not apply")
        src = rec.sources[0]
        return PipeCommand(src.source, f"{path}: recording {rec.id}") if src.type == "command" else Path(src.source)

    def channel(cut) -> Channel:
        ids = [cut.channel] if isinstance(cut.channel, int) else list(cut.channel)
        layout = list(cut.recording.sources[0].channels)
        if sorted(ids) == sorted(layout):
            return None
        missing = [c for c in ids if c not in layout]
        if missing:
            raise InputError(path, f"cut {cut.id}: channel {missing[0]} is not in recording {cut.recording.id} "
                             f"(channels {layout})")
        rows = tuple(layout.index(c) for c in ids)
        return rows[0] if len(rows) == 1 else rows

    if isinstance(manifest, RecordingSet):
        return [AudioSegment(r.id, source(r), r.id) for r in manifest]
    if isinstance(manifest, CutSet):
        out = []
        for c in manifest:
            if getattr(c, "recording", None) is None:
                raise InputError(path, f"cut {c.id}: a {type(c).__name__} is not a piece of one recording")
            out.append(AudioSegment(c.id, source(c.recording), c.recording.id, c.start, c.duration, channel(c)))
        return out
    raise InputError(path, f"a {type(manifest).__name__}: give a recording or cut manifest")


def collect_inputs(paths: Sequence[Union[str, Path]], allow_pipes: bool = False
                   ) -> Tuple[List[AudioSegment], List[Tuple[str, str]]]:
    """Turn command-line inputs into segments to decode.

    Each input is an audio file; a directory (searched recursively for :data:`AUDIO_SUFFIXES`,
    sorted); a file named ``*.scp`` (Kaldi ``wav.scp``, with ``segments`` if beside it:
    :func:`read_wav_scp`); or a lhotse manifest (``*.jsonl``, ``*.jsonl.gz``, ``*.json``).
    ``allow_pipes``: accept piped commands in ``wav.scp`` files and manifests.

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
                segments += read_wav_scp(p, allow_pipes)
            elif p.name.endswith((".jsonl", ".jsonl.gz", ".json")):
                segments += read_lhotse_manifest(p, allow_pipes)
            else:
                segments.append(AudioSegment(str(p), p, str(p)))
        except InputError as e:
            problems.append((str(p), str(e)))
    ids = [s.id for s in segments]
    if len(set(ids)) != len(ids):
        log.warning("some inputs appear more than once; each is decoded every time it appears")
    return segments, problems


__all__ = ["AUDIO_SUFFIXES", "AudioSegment", "Channel", "collect_inputs", "read_lhotse_manifest", "read_wav_scp"]
