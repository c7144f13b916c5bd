"""Import a Kaldi data directory (``wav.scp``, ``text``, ``utt2spk``, optional ``segments``).

The directory is first checked the way Kaldi's ``utils/validate_data_dir.sh`` would (required
files, field counts, duplicate and mismatched ids), so that a user's mistake is reported as one
line naming the file and line; the conversion itself is lhotse's
:func:`lhotse.kaldi.load_kaldi_data_dir`, run on a cleaned copy of the checked files (so that it
sees exactly what was checked: UTF-8 without a byte-order mark, ``\n`` line endings, fields
separated by single spaces, no invisible characters). Sorted order, which Kaldi requires, is not
required.

``wav.scp`` and ``segments`` are read here for ``hybrid-asr decode`` too
(:func:`read_wav_scp_sources`, :func:`read_segments`), so a file means the same to both commands:
a relative audio path is looked up in the working directory first, as Kaldi's tools do, and
then in the ``wav.scp``'s own directory (:func:`resolve_audio_path`); an entry ending in ``|`` is a
shell command whose output is the audio, run only when the caller allows it
(:mod:`hybrid_asr.data.pipes`).
"""

import io
import locale
import logging
import math
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, Optional, Tuple

import soundfile
from lhotse import RecordingSet, SupervisionSet
from lhotse.audio import info as audio_info
from lhotse.audio.utils import AudioLoadingError
from lhotse.kaldi import floor_duration_to_milliseconds, load_kaldi_data_dir
from lhotse.utils import fastcopy

from hybrid_asr.data.manifests import normalize_text, validate_split
from hybrid_asr.data.pipes import ALLOW_PIPES_HINT, AudioPath, PipeCommand, pipe_command
from hybrid_asr.errors import InputError
from hybrid_asr.text_files import read_clean_lines

logger = logging.getLogger(__name__)

#: A parsed Kaldi table: key -> (1-based line number, fields after the key).
Table = Dict[str, Tuple[int, Tuple[str, ...]]]


def read_kaldi_table(path: Path, min_fields: int, max_fields: Optional[int] = None) -> Table:
    """Read a Kaldi table file (one ``<key> <value...>`` per line), checking the field counts.

    Lines are read as UTF-8 and cleaned by :func:`~hybrid_asr.text_files.clean_transcript`: a
    byte-order mark and Windows line endings are dropped, any whitespace separates fields, and
    invisible characters (e.g. U+200B) are removed with a warning naming the line.

    Args:
        path: the file (``wav.scp``, ``text``, ``utt2spk``, ``segments``, ...).
        min_fields: least number of whitespace-separated fields per line, the key included.
        max_fields: most number of fields per line, or None for no limit.

    Returns:
        key -> (line number, the remaining fields).

    Raises:
        InputError: the file is missing; a line is not valid UTF-8, is blank or has a wrong number
            of fields; a key appears twice (file and both lines named).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "required file does not exist")
    table: Table = {}
    for number, line in read_clean_lines(path):
        fields = line.split()
        if not min_fields <= len(fields) <= (max_fields or len(fields)):
            expected = (
                f"{min_fields}" if max_fields == min_fields
                else f"at least {min_fields}" if max_fields is None
                else f"{min_fields} to {max_fields}"
            )
            problem = f"expected {expected} fields, got {len(fields)}"
            raise InputError(path, problem, line=number)
        if fields[0] in table:
            raise InputError(
                path, f"duplicate id {fields[0]} (first on line {table[fields[0]][0]})", number
            )
        table[fields[0]] = (number, tuple(fields[1:]))
    return table


def read_kaldi_map(path: Path) -> Dict[str, str]:
    """Read a two-column Kaldi table (``utt2spk``, ``spk2gender``, ...) as ``{key: value}``.

    Raises:
        InputError: as :func:`read_kaldi_table`, or a line without exactly two fields.
    """
    return {k: fields[0] for k, (_, fields) in read_kaldi_table(Path(path), 2, 2).items()}


def _check_subset(
    keys: Table, other: Table, keys_path: Path, other_path: Path, what: str, hint: str = ""
) -> None:
    """Raise InputError at the first key of ``keys`` missing from ``other``."""
    for key, (number, _) in keys.items():
        if key not in other:
            raise InputError(
                keys_path, f"{what} {key} is not in {other_path.name}{hint}", line=number
            )


def _check_segments(segments: Table, wav_scp: Table, path: Path, wav_path: Path) -> None:
    """Check each segment's recording id exists and its times are numbers with end > start."""
    for seg_id, (number, (rec_id, start, end)) in segments.items():
        if rec_id not in wav_scp:
            raise InputError(path, f"recording {rec_id} is not in {wav_path.name}", line=number)
        try:
            start_s, end_s = float(start), float(end)
        except ValueError:
            raise InputError(path, f"times {start} {end} are not numbers", line=number) from None
        if not (math.isfinite(start_s) and math.isfinite(end_s)):
            raise InputError(path, f"times {start} {end} are not finite numbers", line=number)
        if start_s < 0 or (end_s != -1 and end_s <= start_s):
            raise InputError(path, f"segment {seg_id} has bad times {start} {end}", line=number)


def read_segments(path: Path, wav_scp: Table, wav_path: Path) -> Table:
    """Read and check a Kaldi ``segments`` file (``<utt> <recording> <start> <end>``, seconds;
    end ``-1``: to the end of the recording) against the ``wav.scp`` table of its recordings.

    Args:
        path: the ``segments`` file.
        wav_scp: :func:`read_kaldi_table` of the ``wav.scp``.
        wav_path: the ``wav.scp`` (named in errors).

    Returns:
        utterance -> (line number, ``(recording, start, end)`` as written).

    Raises:
        InputError: as :func:`read_kaldi_table` (4 fields a line); a recording not in ``wav.scp``;
            times that are not finite numbers, a negative start, or an end not after the start.
    """
    segments = read_kaldi_table(path, 4, 4)
    _check_segments(segments, wav_scp, path, wav_path)
    return segments


def resolve_audio_path(entry: str, wav_scp: Path) -> Path:
    """Where a ``wav.scp``'s audio path points: an absolute path as it is; a relative one in the
    working directory if it exists there (Kaldi's rule: its tools open the path as written), else
    in the ``wav.scp``'s directory if it exists there (a ``wav.scp`` written beside its audio),
    else as written (the caller reports it missing)."""
    p = Path(entry)
    if p.is_absolute() or p.exists() or not (wav_scp.parent / p).exists():
        return p
    return wav_scp.parent / p


def wav_scp_sources(wav_scp: Table, path: Path, allow_pipes: bool = False) -> Dict[str, AudioPath]:
    """The audio of each recording of a ``wav.scp`` table (see :func:`read_kaldi_table`):
    a file path resolved by :func:`resolve_audio_path`, or for ``<command> |`` a
    :class:`~hybrid_asr.data.pipes.PipeCommand` (not run here).

    Raises:
        InputError: naming the line: a command while ``allow_pipes`` is False; a file entry that is
            not one path (a path with spaces).
    """
    out: Dict[str, AudioPath] = {}
    for rec_id, (number, fields) in wav_scp.items():
        command = pipe_command(" ".join(fields))
        if command is not None:
            if not allow_pipes:
                raise InputError(path, f"recording {rec_id}: piped commands ('... |') are not run by default; "
                                 f"{ALLOW_PIPES_HINT}", line=number)
            out[rec_id] = PipeCommand(command, path, number)
        elif len(fields) != 1:
            raise InputError(path, "expected '<rec-id> <audio-path>'", line=number)
        else:
            out[rec_id] = resolve_audio_path(fields[0], path)
    return out


def read_wav_scp_sources(path: Path, allow_pipes: bool = False) -> Tuple[Table, Dict[str, AudioPath]]:
    """Read a ``wav.scp`` (:func:`read_kaldi_table`: cleaned lines, duplicate ids refused) and
    its sources (:func:`wav_scp_sources`): ``(table, {recording: source})``.

    Raises:
        InputError: see :func:`read_kaldi_table` and :func:`wav_scp_sources`.
    """
    table = read_kaldi_table(Path(path), 2)
    return table, wav_scp_sources(table, Path(path), allow_pipes)


def _audio_header(source: AudioPath, path: Path, number: int) -> Tuple[int, float]:
    """``(sampling rate in Hz, duration in seconds floored to milliseconds as lhotse does)`` of one
    ``wav.scp`` entry (line ``number`` of ``path``); raises :class:`InputError` naming the line."""
    if isinstance(source, PipeCommand):  # run it: lhotse would need kaldi_native_io for the header
        data = source.read()
        try:
            header = soundfile.info(io.BytesIO(data))
        except Exception:  # noqa: BLE001 - libsndfile raises several types for non-audio bytes
            raise InputError(path, f"output of command '{source.command} |' is not audio: libsndfile cannot read it",
                             line=number) from None
        return int(header.samplerate), floor_duration_to_milliseconds(header.frames / header.samplerate)
    if not Path(source).is_file():
        raise InputError(path, f"audio file {source} does not exist", line=number)
    try:
        header = audio_info(str(source))
    except AudioLoadingError as exc:
        raise InputError(path, f"cannot read audio file {source}", line=number) from exc
    return int(header.samplerate), floor_duration_to_milliseconds(header.duration)


def _audio_headers(wav_scp: Table, path: Path, allow_pipes: bool
                   ) -> Tuple[int, Dict[str, float], Dict[str, AudioPath]]:
    """Read every wav.scp entry's audio header (in parallel threads: the reads wait on the disk
    or on the commands) and check that they share one sampling rate.

    Returns:
        ``(sampling rate in Hz, {recording id: duration in seconds}, {recording id: source})``;
        the durations are what lhotse would read from the same headers, so it is given them
        instead of reading again.

    Raises:
        InputError: a pipe entry without ``allow_pipes``, or one whose command fails or writes no
            audio; a missing or unreadable audio file; mixed sampling rates. The first problem in
            file order is reported.
    """
    sources = wav_scp_sources(wav_scp, path, allow_pipes)
    rates: Dict[int, str] = {}
    durations: Dict[str, float] = {}
    with ThreadPoolExecutor(max_workers=_HEADER_THREADS) as pool:
        for (rec_id, (number, _)), (rate, duration) in zip(
                wav_scp.items(), pool.map(lambda rec: _audio_header(sources[rec], path, wav_scp[rec][0]), wav_scp)):
            rates.setdefault(rate, rec_id)
            if len(rates) > 1:
                raise InputError(
                    path,
                    f"recording {rec_id} has sampling rate {rate} Hz but recording "
                    f"{next(iter(rates.values()))} has {next(iter(rates))} Hz",
                    line=number,
                )
            durations[rec_id] = duration
    return next(iter(rates)), durations, sources


_HEADER_THREADS = 8
"""Threads reading audio headers (I/O bound; libsndfile releases the GIL)."""


#: Optional tables that lhotse reads too: file name -> what its keys are.
_OPTIONAL_TABLES = {"spk2gender": "speaker", "utt2lang": "utterance"}


def _read_data_dir(data_dir: Path, allow_pipes: bool
                   ) -> Tuple[Dict[str, Table], int, Dict[str, float], Dict[str, AudioPath]]:
    """Read and check every table of a Kaldi data directory (see :func:`validate_kaldi_data_dir`).

    Returns:
        ``({file name: table}, sampling rate in Hz, {recording id: duration in seconds},
        {recording id: audio source})``.
    """
    if not data_dir.is_dir():
        raise InputError(data_dir, "Kaldi data directory does not exist")
    wav_path, text_path, spk_path = data_dir / "wav.scp", data_dir / "text", data_dir / "utt2spk"
    seg_path = data_dir / "segments"
    tables = {"wav.scp": read_kaldi_table(wav_path, 2), "text": read_kaldi_table(text_path, 1),
              "utt2spk": read_kaldi_table(spk_path, 2, 2)}
    wav_scp, text, utt2spk = tables["wav.scp"], tables["text"], tables["utt2spk"]
    for utt, (number, words) in text.items():
        if not words:
            raise InputError(text_path, f"expected at least 2 fields, got 1: utterance {utt} has an empty "
                             "transcript (remove it from the data directory, or give it its words)", number)
    _check_subset(text, utt2spk, text_path, spk_path, "utterance")
    _check_subset(utt2spk, text, spk_path, text_path, "utterance")
    if seg_path.exists():
        segments = tables["segments"] = read_segments(seg_path, wav_scp, wav_path)
        _check_subset(utt2spk, segments, spk_path, seg_path, "utterance")
        _check_subset(segments, utt2spk, seg_path, spk_path, "segment")
    else:
        hint = " (without a segments file, utterance ids must be recording ids)"
        _check_subset(utt2spk, wav_scp, spk_path, wav_path, "utterance", hint)
        _check_subset(wav_scp, utt2spk, wav_path, spk_path, "recording", hint)
    for name, what in _OPTIONAL_TABLES.items():
        if (data_dir / name).exists():
            table = tables[name] = read_kaldi_table(data_dir / name, 2, 2)
            keys = {spk: (number, ()) for number, (spk,) in utt2spk.values()} if what == "speaker" else utt2spk
            _check_subset(keys, table, spk_path, data_dir / name, what)
    return (tables,) + _audio_headers(wav_scp, wav_path, allow_pipes)


def validate_kaldi_data_dir(data_dir: Path, allow_pipes: bool = False) -> int:
    """Check a Kaldi data directory like Kaldi's ``validate_data_dir.sh``.

    Checks: ``wav.scp``, ``text`` and ``utt2spk`` exist and are UTF-8 (see
    :func:`read_kaldi_table` for the cleaning of their lines); field counts (``text`` needs at
    least one word, ``utt2spk`` exactly a speaker, ``segments`` exactly rec-id, start, end in
    seconds, finite); no duplicate ids; ``text`` and ``utt2spk`` list the same utterances; with
    ``segments`` every utterance is a segment of a recording in ``wav.scp``, without it the
    utterance ids are the recording ids; ``spk2gender`` and ``utt2lang``, if present, cover every
    speaker and utterance; every audio file exists (a relative path in the working directory,
    else beside ``wav.scp``: :func:`resolve_audio_path`) and all share one sampling rate.

    Args:
        data_dir: the Kaldi data directory.
        allow_pipes: run the commands of ``wav.scp`` entries ending in ``|`` to read their
            headers (:mod:`hybrid_asr.data.pipes`); if False such an entry is an error.

    Returns:
        The sampling rate of the audio, in Hz.

    Raises:
        InputError: on the first problem, naming the file and, where there is one, the line.
    """
    return _read_data_dir(Path(data_dir), allow_pipes)[1]


def import_kaldi_data_dir(data_dir: Path, allow_pipes: bool = False) -> Tuple[RecordingSet, SupervisionSet]:
    """Convert a Kaldi data directory to lhotse manifests.

    Args:
        data_dir: the Kaldi data directory.
        allow_pipes: accept ``wav.scp`` entries ending in ``|`` (each command is run once here
            for its header; the recording keeps it as a lhotse ``command`` source, which
            ``compute-features`` runs again to read the audio).

    Returns:
        ``(recordings, supervisions)``; supervisions carry the speaker from ``utt2spk`` and the
        normalized text (:func:`normalize_text`) from ``text``, channel 0; times in seconds
        (recording durations from the audio headers, read once by the checks and floored to
        milliseconds as lhotse does; a ``reco2dur`` of the directory is not used). Audio paths
        are stored as :func:`resolve_audio_path` finds them (a relative path found only beside
        ``wav.scp`` is stored with that directory in front).

    Raises:
        InputError: see :func:`validate_kaldi_data_dir`; also if the result fails
            :func:`~hybrid_asr.data.manifests.validate_split` (e.g. a segment past the end of
            its recording).
    """
    data_dir = Path(data_dir)
    tables, sampling_rate, durations, sources = _read_data_dir(data_dir, allow_pipes)
    tables["wav.scp"] = {rec: (number, (str(sources[rec]),) if isinstance(sources[rec], Path) else fields)
                         for rec, (number, fields) in tables["wav.scp"].items()}
    lines = {name: "".join(" ".join((key,) + fields) + "\n" for key, (_, fields) in table.items())
             for name, table in tables.items()}
    if locale.getpreferredencoding(False).lower().replace("-", "") != "utf8" and \
            not all(text.isascii() for text in lines.values()):
        raise InputError(data_dir, f"has non-ASCII text, which lhotse reads in the locale's encoding "
                         f"({locale.getpreferredencoding(False)}); run with a UTF-8 locale (e.g. LC_ALL=C.UTF-8)")
    with tempfile.TemporaryDirectory() as clean_dir:
        # lhotse reads the files with the locale's encoding and splits them its own way: give it
        # the checked tables, one "<key> <fields>" line each (audio paths as resolved)
        for name, text in lines.items():
            (Path(clean_dir) / name).write_text(text, encoding="utf-8")
        # the headers were read by the checks: lhotse takes their durations instead of reading again
        (Path(clean_dir) / "reco2dur").write_text("".join(f"{r} {d!r}\n" for r, d in durations.items()))
        recordings, supervisions, _ = load_kaldi_data_dir(clean_dir, sampling_rate=sampling_rate, use_reco2dur=True)
    supervisions = SupervisionSet.from_segments(
        fastcopy(sup, text=normalize_text(sup.text)) for sup in supervisions
    )
    validate_split(recordings, supervisions, data_dir)
    logger.info(
        "imported %d recordings, %d utterances (%d Hz) from %s",
        len(recordings), len(supervisions), sampling_rate, data_dir,
    )
    return recordings, supervisions
