"""Import a Kaldi data directory (``wav.scp``, ``text``, ``utt2spk``, optional ``segments``).

The directory is first checked the way Kaldi's ``utils/validate_data_dir.sh`` would (required
files, field counts, duplicate and mismatched ids), so that a user's mistake is reported as one
line naming the file and line; the conversion itself is lhotse's
:func:`lhotse.kaldi.load_kaldi_data_dir`, run on a cleaned copy of the checked files (so that it
sees exactly what was checked: UTF-8 without a byte-order mark, ``\n`` line endings, fields
separated by single spaces, no invisible characters). Sorted order, which Kaldi requires, is not
required.
"""

import locale
import logging
import math
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, Optional, Tuple

from lhotse import RecordingSet, SupervisionSet
from lhotse.audio import info as audio_info
from lhotse.audio.utils import AudioLoadingError
from lhotse.kaldi import floor_duration_to_milliseconds, load_kaldi_data_dir
from lhotse.utils import fastcopy, is_module_available

from hybrid_asr.data.manifests import normalize_text, validate_split
from hybrid_asr.errors import InputError
from hybrid_asr.lang.text import read_clean_lines

logger = logging.getLogger(__name__)

#: A parsed Kaldi table: key -> (1-based line number, fields after the key).
Table = Dict[str, Tuple[int, Tuple[str, ...]]]


def read_kaldi_table(path: Path, min_fields: int, max_fields: Optional[int] = None) -> Table:
    """Read a Kaldi table file (one ``<key> <value...>`` per line), checking the field counts.

    Lines are read as UTF-8 and cleaned by :func:`~hybrid_asr.lang.text.clean_transcript`: a
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


def _audio_header(entry: Tuple[str, Tuple[int, Tuple[str, ...]]], path: Path) -> Tuple[int, float]:
    """``(sampling rate in Hz, duration in seconds floored to milliseconds as lhotse does)`` of one
    ``wav.scp`` entry; raises :class:`InputError` naming the line."""
    rec_id, (number, fields) = entry
    source = " ".join(fields)
    if source.endswith("|"):
        if not is_module_available("kaldi_native_io"):
            raise InputError(path, "command pipes ('... |') are not supported (lhotse needs kaldi_native_io)",
                             line=number)
        import kaldi_native_io

        wave = kaldi_native_io.read_wave(source)
        return int(wave.sample_freq), floor_duration_to_milliseconds(wave.duration)
    if len(fields) != 1:
        raise InputError(path, "expected '<rec-id> <audio-path>'", line=number)
    if not Path(source).is_file():
        raise InputError(path, f"audio file {source} does not exist", line=number)
    try:
        header = audio_info(source)
    except AudioLoadingError as exc:
        raise InputError(path, f"cannot read audio file {source}", line=number) from exc
    return int(header.samplerate), floor_duration_to_milliseconds(header.duration)


def _audio_headers(wav_scp: Table, path: Path) -> Tuple[int, Dict[str, float]]:
    """Read every wav.scp entry's audio header (in parallel threads: the reads wait on the disk)
    and check that they share one sampling rate.

    Returns:
        ``(sampling rate in Hz, {recording id: duration in seconds})``; the durations are what
        lhotse would read from the same headers, so it is given them instead of reading again.

    Raises:
        InputError: a pipe entry while lhotse cannot read pipes (``kaldi_native_io`` not
            installed); a missing or unreadable audio file; mixed sampling rates. The first
            problem in file order is reported.
    """
    rates: Dict[int, str] = {}
    durations: Dict[str, float] = {}
    with ThreadPoolExecutor(max_workers=_HEADER_THREADS) as pool:
        for (rec_id, (number, _)), (rate, duration) in zip(
                wav_scp.items(), pool.map(lambda e: _audio_header(e, path), wav_scp.items())):
            rates.setdefault(rate, rec_id)
            if len(rates) > 1:
                raise InputError(
                    path,
                    f"recording {rec_id} has sampling rate {rate} Hz but recording "
                    f"{next(iter(rates.values()))} has {next(iter(rates))} Hz",
                    line=number,
                )
            durations[rec_id] = duration
    return next(iter(rates)), durations


_HEADER_THREADS = 8
"""Threads reading audio headers (I/O bound; libsndfile releases the GIL)."""


#: Optional tables that lhotse reads too: file name -> what its keys are.
_OPTIONAL_TABLES = {"spk2gender": "speaker", "utt2lang": "utterance"}


def _read_data_dir(data_dir: Path) -> Tuple[Dict[str, Table], int, Dict[str, float]]:
    """Read and check every table of a Kaldi data directory (see :func:`validate_kaldi_data_dir`).

    Returns:
        ``({file name: table}, sampling rate in Hz, {recording id: duration in seconds})``.
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
        segments = tables["segments"] = read_kaldi_table(seg_path, 4, 4)
        _check_subset(utt2spk, segments, spk_path, seg_path, "utterance")
        _check_subset(segments, utt2spk, seg_path, spk_path, "segment")
        _check_segments(segments, wav_scp, seg_path, wav_path)
    else:
        hint = " (without a segments file, utterance ids must be recording ids)"
        _check_subset(utt2spk, wav_scp, spk_path, wav_path, "utterance", hint)
        _check_subset(wav_scp, utt2spk, wav_path, spk_path, "recording", hint)
    for name, what in _OPTIONAL_TABLES.items():
        if (data_dir / name).exists():
            table = tables[name] = read_kaldi_table(data_dir / name, 2, 2)
            keys = {spk: (number, ()) for number, (spk,) in utt2spk.values()} if what == "speaker" else utt2spk
            _check_subset(keys, table, spk_path, data_dir / name, what)
    return (tables,) + _audio_headers(wav_scp, wav_path)


def validate_kaldi_data_dir(data_dir: Path) -> int:
    """Check a Kaldi data directory like Kaldi's ``validate_data_dir.sh``.

    Checks: ``wav.scp``, ``text`` and ``utt2spk`` exist and are UTF-8 (see
    :func:`read_kaldi_table` for the cleaning of their lines); field counts (``text`` needs at
    least one word, ``utt2spk`` exactly a speaker, ``segments`` exactly rec-id, start, end in
    seconds, finite); no duplicate ids; ``text`` and ``utt2spk`` list the same utterances; with
    ``segments`` every utterance is a segment of a recording in ``wav.scp``, without it the
    utterance ids are the recording ids; ``spk2gender`` and ``utt2lang``, if present, cover every
    speaker and utterance; every audio file exists and all share one sampling rate.

    Args:
        data_dir: the Kaldi data directory.

    Returns:
        The sampling rate of the audio, in Hz.

    Raises:
        InputError: on the first problem, naming the file and, where there is one, the line.
    """
    return _read_data_dir(Path(data_dir))[1]


def import_kaldi_data_dir(data_dir: Path) -> Tuple[RecordingSet, SupervisionSet]:
    """Convert a Kaldi data directory to lhotse manifests.

    Args:
        data_dir: the Kaldi data directory.

    Returns:
        ``(recordings, supervisions)``; supervisions carry the speaker from ``utt2spk`` and the
        normalized text (:func:`normalize_text`) from ``text``, channel 0; times in seconds
        (recording durations from the audio headers, read once by the checks and floored to
        milliseconds as lhotse does; a ``reco2dur`` of the directory is not used).

    Raises:
        InputError: see :func:`validate_kaldi_data_dir`; also if the result fails
            :func:`~hybrid_asr.data.manifests.validate_split` (e.g. a segment past the end of
            its recording).
    """
    data_dir = Path(data_dir)
    tables, sampling_rate, durations = _read_data_dir(data_dir)
    lines = {name: "".join(" ".join((key,) + fields) + "\n" for key, (_, fields) in table.items())
             for name, table in tables.items()}
    if locale.getpreferredencoding(False).lower().replace("-", "") != "utf8" and \
            not all(text.isascii() for text in lines.values()):
        raise InputError(data_dir, f"has non-ASCII text, which lhotse reads in the locale's encoding "
                         f"({locale.getpreferredencoding(False)}); run with a UTF-8 locale (e.g. LC_ALL=C.UTF-8)")
    with tempfile.TemporaryDirectory() as clean_dir:
        # lhotse reads the files with the locale's encoding and splits them its own way: give it
        # the checked tables, one "<key> <fields>" line each (audio paths stay as they were)
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
