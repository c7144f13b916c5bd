"""Audio input: the one path every audio read takes, in training and in decoding.

Samples come from a file or a piped command (:func:`load_audio`: libsndfile, sox for SPHERE
only) or from lhotse (:func:`load_recording`, which applies a recording's transforms such as
speed perturbation); either way they go through :func:`prepare_waveform`, which checks and
converts them the same way::

    [C, N] float32, full scale +-1, any rate
      --channel--> selected rows      (an index, several, or all)
      --checks-->  NaN/Inf set to 0, beyond full scale clipped, clipping and 8-bit samples noted,
                   each with a warning naming the file
      --mean-->    [N] mono
      --resample-> the model's rate   (a lower rate is warned about: its upper band is empty)
      --x 32768--> float32 [N'] in the int16 range, as Kaldi's feature extractors expect

A file that cannot be read is an :class:`~hybrid_asr.errors.InputError` saying why, in one line.
"""

import io
import logging
import math
import os
import struct
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torchaudio

from hybrid_asr.data.pipes import AudioPath, PipeCommand
from hybrid_asr.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from lhotse import Recording

log = logging.getLogger(__name__)

Channels = Union[None, int, Sequence[int]]
"""Channels to use: a 0-based index, several (averaged), or None (all, averaged)."""


class AudioInfo(NamedTuple):
    """What an audio file's header says: ``sample_rate`` (Hz), ``num_frames`` (samples per
    channel), ``num_channels`` and ``subtype`` (libsndfile's sample format, e.g. ``PCM_16``,
    ``PCM_U8``, ``FLOAT``, ``VORBIS``; ``PCM_<bits>``-style from torchaudio for SPHERE; ``""`` if
    unknown)."""

    sample_rate: int
    num_frames: int
    num_channels: int
    subtype: str = ""


def _first_line(e: Exception) -> str:
    return str(e).splitlines()[0][:200] if str(e) else type(e).__name__


def _error(source: AudioPath, problem: str) -> InputError:
    """An InputError naming a file, or a pipe entry's data file and line."""
    return source.error(problem) if isinstance(source, PipeCommand) else InputError(source, problem)


def _open_binary(source: AudioPath) -> BinaryIO:
    return io.BytesIO(source.read()) if isinstance(source, PipeCommand) else open(source, "rb")


def _unreadable(source: AudioPath, errors) -> InputError:
    with _open_binary(source) as f:
        head = f.read(12)
    if isinstance(source, PipeCommand):  # empty output is refused by PipeCommand.read
        what = f"output of command '{source.command} |'"
        if head[:4] in (b"RIFF", b"RIFX", b"RF64") and head[8:12] == b"WAVE":
            return source.error(f"{what} is a WAV with a damaged or truncated header: " + "; ".join(errors))
        return source.error(f"{what} is not audio: libsndfile cannot read it")
    path = Path(source)
    if path.stat().st_size == 0:
        return InputError(path, "audio file is empty (0 bytes)")
    if head[:4] in (b"RIFF", b"RIFX", b"RF64") and head[8:12] == b"WAVE":
        return InputError(path, "WAV file with a damaged or truncated header: " + "; ".join(errors))
    return InputError(path, f"unsupported format or not audio ({path.suffix or 'no suffix'}): libsndfile cannot "
                      "read it" + (" and neither can torchaudio" if path.suffix.lower() in SOX_SUFFIXES else ""))


def _check_path(path: Path) -> None:
    if path.is_dir():
        raise InputError(path, "is a directory, not an audio file")
    if not path.is_file():
        raise InputError(path, "audio file does not exist")


SOX_SUFFIXES = (".sph", ".nist")
"""Files that torchaudio's sox backend reads when libsndfile cannot (SPHERE with shorten
compression). Only these go to sox: libsox kills the whole process (SIGFPE) on some damaged WAV
headers that libsndfile refuses cleanly (found by tests/test_fuzz_audio.py)."""


def audio_info(path: AudioPath) -> AudioInfo:
    """Header of an audio file (or of a pipe entry's output, running its command once), from
    libsndfile (``soundfile``: WAV of every sample format, FLAC, OGG, MP3, ...) or, for
    :data:`SOX_SUFFIXES`, torchaudio's sox backend.

    Raises:
        InputError: missing, a directory, empty, a damaged WAV header, or a format neither reads;
            a command that fails or writes no audio (naming its ``wav.scp`` line).
    """
    import soundfile

    errors = []
    if isinstance(path, PipeCommand):
        try:
            i = soundfile.info(io.BytesIO(path.read()))
            if i.samplerate > 0:
                return AudioInfo(int(i.samplerate), int(i.frames), int(i.channels), str(i.subtype))
        except InputError:
            raise
        except Exception as e:  # noqa: BLE001 - libsndfile raises several types for bad bytes
            errors.append(_first_line(e))
        raise _unreadable(path, errors)
    path = Path(path)
    _check_path(path)
    try:
        i = soundfile.info(str(path))
        if i.samplerate > 0:
            return AudioInfo(int(i.samplerate), int(i.frames), int(i.channels), str(i.subtype))
    except Exception as e:  # noqa: BLE001 - the backends raise RuntimeError/OSError/... for bad files
        errors.append(_first_line(e))
    if path.suffix.lower() not in SOX_SUFFIXES:
        raise _unreadable(path, errors)
    try:
        i = torchaudio.info(str(path))
        if i.sample_rate > 0:
            subtype = f"PCM_{i.bits_per_sample}" if i.encoding == "PCM_S" and i.bits_per_sample in (16, 24, 32) else ""
            return AudioInfo(int(i.sample_rate), int(i.num_frames), int(i.num_channels), subtype)
    except Exception as e:  # noqa: BLE001 - as above
        errors.append(_first_line(e))
    raise _unreadable(path, errors)


def wav_data_shortfall(path: AudioPath) -> Optional[Tuple[int, int]]:
    """``(declared, present)`` bytes of a RIFF/WAVE file's data chunk when the file ends before
    the chunk does (a cut-off download or an interrupted write), else None (also for non-WAV
    files and streamed WAVs whose header gives no size). A pipe entry's output is checked too."""
    with _open_binary(path) as f:
        head = f.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            size = struct.unpack("<I", chunk[4:])[0]
            if chunk[:4] == b"data":
                here = f.tell()
                present = f.seek(0, os.SEEK_END) - here
                return (size, present) if 0 < size < 0xFFFFFFFF and present < size else None
            f.seek(size + (size & 1), os.SEEK_CUR)


def _read(path: AudioPath, start: int, num: int):
    """``([C, N] float32, rate)`` through soundfile (float files as stored: NaN, beyond full
    scale), else for :data:`SOX_SUFFIXES` torchaudio; integer formats scaled to [-1, 1)."""
    import soundfile

    if isinstance(path, PipeCommand):
        try:
            data, rate = soundfile.read(io.BytesIO(path.read()), start=start, frames=num, dtype="float32",
                                        always_2d=True)
        except Exception as e:  # noqa: BLE001 - libsndfile raises several types
            raise path.error(f"cannot read the audio of command '{path.command} |': {_first_line(e)}") from None
        return torch.from_numpy(data.T.copy()), rate
    path = Path(path)
    try:
        data, rate = soundfile.read(str(path), start=start, frames=num, dtype="float32", always_2d=True)
        return torch.from_numpy(data.T.copy()), rate
    except Exception as first:  # noqa: BLE001 - fall back to torchaudio below
        if path.suffix.lower() not in SOX_SUFFIXES:
            raise InputError(path, f"cannot read audio: {_first_line(first)}") from None
        try:
            return torchaudio.load(str(path), frame_offset=start, num_frames=num)
        except Exception as e:  # noqa: BLE001
            raise InputError(path, f"cannot read audio: {_first_line(first)}; {_first_line(e)}") from None


MIN_RATE, MAX_RATE = 1000, 384000
"""Sample rates (Hz) accepted from a file's header; others mean a damaged header."""
MAX_RESAMPLE_TERMS = 2000
"""Largest reduced rate ratio resampled exactly: torchaudio's sinc kernel has ``orig/g x new/g``
taps (``g``: their greatest common divisor), hundreds of MB for a rate such as 11027 Hz."""


FULL_SCALE = {"PCM_S8": 127 / 128, "PCM_U8": 127 / 128, "PCM_16": 32767 / 32768, "PCM_24": 1 - 2.0 ** -23,
              "PCM_32": 1 - 2.0 ** -31, "ULAW": 32124 / 32768, "ALAW": 32256 / 32768}
"""Largest positive sample of each integer sample format (libsndfile subtype), as read scaled to
[-1, 1): a sample at least this far from 0 on either side is at full scale (+32767, -32767 or
-32768 for 16-bit PCM: converters clip at -32768, code that scales floats by 32767 at -32767).
Other formats (float, lossy codecs) are not checked for clipping."""

LOW_BIT_SUBTYPES = {"PCM_S8": "8-bit", "PCM_U8": "8-bit", "ULAW": "8-bit mu-law", "ALAW": "8-bit A-law",
                    "DPCM_8": "8-bit DPCM", "IMA_ADPCM": "4-bit ADPCM", "MS_ADPCM": "4-bit ADPCM",
                    "VOX_ADPCM": "4-bit ADPCM", "G721_32": "4-bit ADPCM", "G723_24": "3-bit ADPCM",
                    "G723_40": "5-bit ADPCM"}
"""Sample formats with 8 bits or fewer per sample (libsndfile subtype -> words for the warning):
their quantization noise (about -50 dBFS for 8-bit linear PCM) is far above that of the 16-bit
audio models are trained on."""

CLIP_RUN = 3
"""A sample counts as clipped when it is one of at least this many consecutive samples at full
scale (:data:`FULL_SCALE`): a natural waveform almost never repeats its extreme value, a clipped
one holds it for as long as the signal is beyond the converter's range."""
CLIP_MIN_FRACTION = 0.001
"""Clipping is warned about when at least this fraction of the samples read (0.1%) is clipped,
so that one clipped click in a long recording passes."""

_WARNED_MAX = 10000
_warned: "OrderedDict[tuple, None]" = OrderedDict()
_warned_lock = threading.Lock()


def _identity(source: AudioPath) -> tuple:
    """What makes a source the same file: its path and, for a file, its size and modification
    time (a file rewritten in place is a new file)."""
    if isinstance(source, PipeCommand):
        return ("pipe", source.command)
    try:
        st = os.stat(source)
        return (str(source), st.st_size, st.st_mtime_ns)
    except OSError:
        return (str(source),)


def _warn_once(source: AudioPath, message: str, *args) -> None:
    """``log.warning(message, *args)`` once per source file and message (a file read in pieces,
    or by several supervisions, is warned about once; the last 10000 are remembered)."""
    key = (_identity(source), message, args)
    with _warned_lock:
        if key in _warned:
            return
        _warned[key] = None
        while len(_warned) > _WARNED_MAX:
            _warned.popitem(last=False)
    log.warning(message, *args)


def _check_rate(rate: int, source: AudioPath) -> None:
    if not MIN_RATE <= rate <= MAX_RATE:
        raise _error(source, f"sample rate {rate} Hz in its header is outside {MIN_RATE}-{MAX_RATE} Hz "
                     "(a damaged header?)")


def _warn_truncated(source: AudioPath, info: AudioInfo) -> None:
    """Warn (once per file) when the file's WAV data chunk is cut short (see :func:`wav_data_shortfall`)."""
    short = wav_data_shortfall(source)
    if short is not None:
        present = info.num_frames / info.sample_rate
        _warn_once(source, "%s: truncated: its header declares %.2f s of audio, the file holds %.2f s; using the "
                   "audio present", source, present * short[0] / max(short[1], 1), present)


def clipped_samples(samples: torch.Tensor, subtype: str) -> int:
    """Number of samples in runs of at least :data:`CLIP_RUN` consecutive samples at full scale.

    Args:
        samples: float32 ``[C, N]`` as read, full scale +-1 (runs are counted along each row).
        subtype: the source's libsndfile subtype; formats not in :data:`FULL_SCALE` give 0.
    """
    top = FULL_SCALE.get(subtype)
    if top is None or samples.shape[-1] < CLIP_RUN:
        return 0
    at = samples.abs() >= top - 1e-6
    n = samples.shape[-1]
    start = at[:, : n - CLIP_RUN + 1].clone()  # a run of CLIP_RUN starts here
    for k in range(1, CLIP_RUN):
        start &= at[:, k : n - CLIP_RUN + 1 + k]
    inside = torch.zeros_like(at)
    for k in range(CLIP_RUN):
        inside[:, k : n - CLIP_RUN + 1 + k] |= start
    return int(inside.sum())


def select_channels(samples: torch.Tensor, channel: Channels, source: AudioPath) -> torch.Tensor:
    """Rows ``channel`` of ``[C, N]`` samples (an index or a list of them; None: all).

    Raises:
        InputError: an index outside ``0..C-1``, or an empty list.
    """
    if channel is None:
        return samples
    rows = [int(channel)] if isinstance(channel, int) else [int(c) for c in channel]
    count = samples.shape[0]
    if not rows:
        raise _error(source, "no channel selected")
    for c in rows:
        if not 0 <= c < count:
            raise _error(source, f"channel {c} requested, but the audio has {count} channel"
                         f"{'s' if count != 1 else ''} (0-{count - 1})")
    return samples[rows]


def _resample(wave: torch.Tensor, rate: int, target: int, path: AudioPath) -> torch.Tensor:
    g = math.gcd(rate, target)
    if max(rate, target) // g > MAX_RESAMPLE_TERMS:  # resample as the nearest rate in 100 Hz steps
        near = max(100, int(round(rate / 100.0)) * 100)
        _warn_once(path, "%s: sample rate %d Hz resampled as %d Hz (%.3f%% faster)", path, rate, near,
                   100.0 * (near - rate) / rate)
        rate = near
        if rate == target:
            return wave
    return torchaudio.functional.resample(wave, orig_freq=rate, new_freq=target)


def prepare_waveform(
    samples: torch.Tensor,
    rate: int,
    sample_rate: int,
    source: AudioPath,
    channel: Channels = None,
    subtype: str = "",
    offset: float = 0.0,
) -> torch.Tensor:
    """Check and convert samples read from any source into the waveform features are computed
    from; :func:`load_audio` (decoding) and :func:`load_recording` (training) both end here.

    In order: the channels are selected; NaN or infinite samples are set to 0 (warning
    ``N samples are NaN or infinite; set to 0``); samples beyond full scale are clipped to +-1
    (warning ``N samples beyond full scale; clipped``, unless the source's format is an integer
    one, where only resampling, e.g. lhotse's speed perturbation, can overshoot); clipping in an
    integer format is warned about when at least :data:`CLIP_MIN_FRACTION` of the samples are in
    runs of :data:`CLIP_RUN` or more at full scale (:func:`clipped_samples`); a format of 8 bits
    or fewer (:data:`LOW_BIT_SUBTYPES`) and a rate below ``sample_rate`` are warned about once per
    file; the channels are averaged and the result resampled with
    ``torchaudio.functional.resample`` (windowed sinc; a rate whose ratio to ``sample_rate`` has
    no small common divisor as the nearest 100 Hz, with a warning). Every warning is one line
    starting with ``source``.

    Args:
        samples: float32 ``[C, N]`` (or ``[N]``: one channel), full scale +-1 (integer formats
            scaled by 2^(bits-1), float formats as stored).
        rate: their sample rate, Hz.
        sample_rate: the rate wanted (the model's), Hz.
        source: the file or pipe entry they came from, named in warnings and errors.
        channel: 0-based row(s) of ``samples`` to use (several are averaged); None: all.
        subtype: the source's libsndfile sample format (``PCM_16``, ``PCM_U8``, ``FLOAT``, ...;
            ``""`` if unknown): selects the clipping check and the low-bit-depth warning.
        offset: where the samples start in the source, seconds (named in errors).

    Returns:
        float32 ``[N']`` in [-32768, 32767] at ``sample_rate``, ``N' ~ N * sample_rate / rate``.

    Raises:
        InputError: a rate outside ``MIN_RATE``-``MAX_RATE`` Hz, a channel the samples do not have,
            or no samples.
    """
    if samples.dim() == 1:
        samples = samples[None]
    samples = samples.to(torch.float32)
    _check_rate(rate, source)
    samples = select_channels(samples, channel, source)
    if samples.shape[-1] == 0:
        raise _error(source, "audio holds no samples" + (f" from {offset:.2f} s" if offset else ""))
    bad = ~torch.isfinite(samples)
    if bad.any():
        log.warning("%s: %d samples are NaN or infinite; set to 0", source, int(bad.sum()))
        samples = torch.where(bad, torch.zeros_like(samples), samples)
    over = samples.abs() > 1.0
    if over.any():
        if subtype not in FULL_SCALE:
            log.warning("%s: %d samples beyond full scale; clipped", source, int(over.sum()))
        samples = samples.clamp(-1.0, 1.0)
    clipped = clipped_samples(samples, subtype)
    if clipped and clipped >= CLIP_MIN_FRACTION * samples.numel():
        log.warning("%s: clipped: %d samples (%.1f%%) in runs of %d or more at full scale; expect lower accuracy",
                    source, clipped, 100.0 * clipped / samples.numel(), CLIP_RUN)
    if subtype in LOW_BIT_SUBTYPES:
        _warn_once(source, "%s: %s samples: expect lower accuracy", source, LOW_BIT_SUBTYPES[subtype])
    mono = samples.mean(dim=0)
    if rate != sample_rate:
        if rate < sample_rate:
            _warn_once(source, "%s: %d Hz audio upsampled to %d Hz: the model's upper band is empty", source, rate,
                       sample_rate)
        mono = _resample(mono, rate, sample_rate, source)
    return (mono * 32768.0).clamp(-32768.0, 32767.0).to(torch.float32)


def load_audio(
    path: AudioPath,
    sample_rate: int,
    offset: float = 0.0,
    duration: Optional[float] = None,
    channel: Channels = None,
) -> torch.Tensor:
    """Read an audio file (or a pipe entry's output) as a mono waveform at ``sample_rate``.

    The samples are read with libsndfile (torchaudio's sox backend for :data:`SOX_SUFFIXES`
    only) and go through :func:`prepare_waveform`: channel selection, the checks and their
    warnings, downmix, resampling, int16 scale. A WAV whose data chunk is shorter than its header
    says is read as far as it goes, with a warning (``truncated: its header declares X s of
    audio, the file holds Y s``).

    Args:
        path: audio file (WAV of any sample format, FLAC, OGG, MP3, SPHERE, ... whatever
            torchaudio's backend or libsndfile reads), or a
            :class:`~hybrid_asr.data.pipes.PipeCommand` (its command is run, its output read).
        sample_rate: target rate in Hz.
        offset: start of the segment to read, seconds.
        duration: length of the segment, seconds; ``None`` reads to the end.
        channel: 0-based channel(s) to use (several are averaged); None: all, averaged.

    Returns:
        float32 tensor ``[num_samples]`` in [-32768, 32767].

    Raises:
        InputError: the file is missing, a directory, empty, unreadable, has an implausible rate
            or not the channel asked for, or holds no samples in the segment; a pipe's command
            fails or writes no audio.
    """
    if not isinstance(path, PipeCommand):
        path = Path(path)
    info = audio_info(path)
    _check_rate(info.sample_rate, path)
    start = int(round(offset * info.sample_rate))
    num = -1 if duration is None else int(round(duration * info.sample_rate))
    wave, rate = _read(path, start, num)
    if start + wave.shape[-1] >= info.num_frames - 1:  # the read reached the end: was the file cut?
        _warn_truncated(path, info)
    return prepare_waveform(wave, rate, sample_rate, path, channel, info.subtype, offset)


def load_recording(
    recording: "Recording",
    sample_rate: int,
    offset: float = 0.0,
    duration: Optional[float] = None,
    channel: Channels = None,
) -> torch.Tensor:
    """Read a stretch of a lhotse recording as a mono waveform at ``sample_rate``: the training
    path, through the same :func:`prepare_waveform` as :func:`load_audio`.

    lhotse reads the samples and applies the recording's transforms (e.g. speed perturbation
    from ``Recording.perturb_speed``). Each file source's header is checked first by
    :func:`audio_info` (so a missing, empty or damaged file gives the same one-line error as in
    ``decode``; a truncated one the same warning); a ``command`` source (a Kaldi pipe imported
    with ``--allow-pipes``) is run once by :class:`~hybrid_asr.data.pipes.PipeCommand`, which
    says clearly when it fails, and its output handed to lhotse.

    Args:
        recording: the lhotse recording.
        sample_rate: target rate in Hz.
        offset: start, seconds in the recording (after its transforms).
        duration: seconds; None: to the end.
        channel: channel id(s) of the recording (a supervision's ``channel``), several averaged;
            None: all, averaged.

    Returns:
        float32 ``[num_samples]`` in [-32768, 32767].

    Raises:
        InputError: a source cannot be read (naming it), a channel the recording does not have,
            or as :func:`prepare_waveform`.
    """
    from lhotse.utils import fastcopy

    ids = None if channel is None else ([channel] if isinstance(channel, int) else list(channel))
    wanted = set(recording.channel_ids if ids is None else ids)
    checked = []
    sources = []
    for src in recording.sources:
        if wanted.intersection(src.channels):
            if src.type == "file":
                checked.append((Path(src.source), audio_info(src.source)))
            elif src.type == "command":
                pipe = PipeCommand(src.source, f"recording {recording.id}")
                checked.append((pipe, audio_info(pipe)))
                src = fastcopy(src, type="memory", source=pipe.read())
        sources.append(src)
    name = checked[0][0] if len(checked) == 1 else f"recording {recording.id}"
    missing = sorted(wanted - set(recording.channel_ids))
    if missing:
        raise _error(name, f"channel {missing[0]} is not in recording {recording.id} (channels "
                     f"{recording.channel_ids})")
    _check_rate(recording.sampling_rate, name)
    try:
        audio = fastcopy(recording, sources=sources).load_audio(channels=ids, offset=offset, duration=duration)
    except Exception as e:  # noqa: BLE001 - lhotse raises several types depending on the backend
        raise _error(name, f"cannot read audio: {_first_line(e)}") from None
    if duration is None or offset + duration >= recording.duration - 1.0 / recording.sampling_rate:
        for source, info in checked:
            _warn_truncated(source, info)
    subtypes = {info.subtype for _, info in checked}
    subtype = subtypes.pop() if len(subtypes) == 1 else ""
    return prepare_waveform(torch.from_numpy(audio), recording.sampling_rate, sample_rate, name, None, subtype, offset)


__all__ = ["CLIP_MIN_FRACTION", "CLIP_RUN", "FULL_SCALE", "LOW_BIT_SUBTYPES", "SOX_SUFFIXES", "AudioInfo", "AudioPath",
           "Channels", "audio_info", "clipped_samples", "load_audio", "load_recording", "prepare_waveform",
           "select_channels", "wav_data_shortfall"]
