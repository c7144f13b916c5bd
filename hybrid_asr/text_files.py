"""Reading and cleaning the user's text files: UTF-8 lines with line numbers and transcript
normalization (a base module: data, lang and scoring read text through it).

Every reader of a user's text file (Kaldi tables, transcripts, lexicons, ARPA LMs) goes through
:func:`read_text_lines`, so that a bad byte is reported as ``file:line: is not valid UTF-8``
instead of a :class:`UnicodeDecodeError`; transcripts and table lines are then cleaned by
:func:`clean_transcript` (:func:`read_clean_lines` does both)::

    bytes --read_text_lines--> str             UTF-8 checked, BOM and CR LF line ending dropped
          --clean_transcript--> str            NFC, invisible characters removed (warned),
                                               any run of whitespace -> one space

Lines are split at ``\\n`` only (as Kaldi, ``wc -l`` and editors count them), not at the other
characters :meth:`str.splitlines` breaks at, so line numbers agree with the user's editor.
"""

import codecs
import gzip
import logging
import re
import unicodedata
import zlib
from pathlib import Path
from typing import Iterator, List, Optional, Tuple, Union

from hybrid_asr.errors import InputError

log = logging.getLogger(__name__)

#: Per file, at most this many lines get their own warning from :func:`read_clean_lines`.
MAX_LINE_WARNINGS = 5

# ASCII control characters that are not whitespace (Python's str.split() splits at \t \n \v \f
# \r and \x1c-\x1f, so those only separate words).
_ASCII_CONTROL = re.compile("[\x00-\x08\x0e-\x1b\x7f]")


def read_text_lines(path: Union[str, Path]) -> Iterator[Tuple[int, str]]:
    """Yield the lines of a UTF-8 text file with their 1-based numbers, lazily.

    The line ending (``\\n`` or Windows ``\\r\\n``) is removed, and a UTF-8 byte-order mark at the
    start of the file is dropped. A ``.gz`` file is decompressed.

    Args:
        path: the file.

    Yields:
        ``(line_number, line)``.

    Raises:
        InputError: the file does not exist or cannot be read; a line is not valid UTF-8 or holds
            a carriage return that does not end it (old Mac line endings), naming the line.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file does not exist")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            for number, raw in enumerate(f, 1):
                if raw.endswith(b"\n"):
                    raw = raw[:-1]
                if raw.endswith(b"\r"):
                    raw = raw[:-1]
                if number == 1 and raw.startswith(codecs.BOM_UTF8):
                    raw = raw[len(codecs.BOM_UTF8):]
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise InputError(
                        path,
                        f"is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1} of the "
                        "line); save the file as UTF-8",
                        number,
                    ) from None
                if "\r" in line:
                    raise InputError(path, "carriage return inside the line (old Mac line endings?); "
                                     "use \\n line endings", number)
                yield number, line
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(path, f"cannot read the file: {exc}") from None


def _where(path: Union[str, Path], line: Optional[int]) -> str:
    return f"{path}:{line}" if line is not None else f"{path}"


def clean_transcript(text: str, path: Union[str, Path], line: Optional[int] = None) -> Tuple[str, List[str]]:
    """Normalize one transcript (or any line of a user's text table) so that equal words compare equal.

    In order: the text is put in Unicode normalization form NFC (``e`` + combining acute becomes
    ``é``); invisible format characters (Unicode category Cf: zero-width space U+200B, zero-width
    (non-)joiner U+200C/U+200D, word joiner U+2060, byte-order mark U+FEFF, soft hyphen, direction
    marks) are removed; every run of whitespace (tabs, several spaces, no-break space U+00A0, other
    Unicode spaces) becomes one space, and the ends are stripped. Letter case is not changed.

    Args:
        text: the transcript or line, without its line ending.
        path: the file it comes from, for messages.
        line: its 1-based line number in ``path``, if any.

    Returns:
        ``(cleaned, notes)``: the cleaned text (may be empty) and messages, each naming
        ``path:line``, for the changes the user should hear about (removed characters), ready to
        log as warnings. Whitespace and NFC normalization are not reported.

    Raises:
        InputError: the text holds a control character (e.g. NUL, which suggests a UTF-16 file) or
            an unpaired surrogate.

    Example::

        >>> clean_transcript("HEL\\u200bLO\\tWORLD ", "text", 3)
        ('HELLO WORLD', ['text:3: removed 1 invisible character (U+200B ZERO WIDTH SPACE)'])
    """
    if text.isascii():
        bad = _ASCII_CONTROL.search(text)
        if bad is None:
            return " ".join(text.split()), []
        _raise_control(bad.group(), path, line)
    for c in text:
        if unicodedata.category(c) in ("Cc", "Cs") and not c.isspace():
            _raise_control(c, path, line)
    text = unicodedata.normalize("NFC", text)
    invisible = [c for c in text if unicodedata.category(c) == "Cf"]
    notes = []
    if invisible:
        text = "".join(c for c in text if unicodedata.category(c) != "Cf")
        kinds = ", ".join(f"U+{ord(c):04X} {unicodedata.name(c, 'FORMAT CHARACTER')}"
                          for c in sorted(set(invisible)))
        plural = "" if len(invisible) == 1 else "s"
        notes.append(f"{_where(path, line)}: removed {len(invisible)} invisible character{plural} ({kinds})")
    return " ".join(text.split()), notes


def _raise_control(c: str, path: Union[str, Path], line: Optional[int]) -> None:
    if unicodedata.category(c) == "Cs":
        raise InputError(path, f"contains an unpaired surrogate U+{ord(c):04X}", line)
    hint = " (is the file UTF-16? save it as UTF-8)" if c == "\x00" else ""
    raise InputError(path, f"contains the control character U+{ord(c):04X}{hint}", line)


def read_clean_lines(path: Union[str, Path]) -> Iterator[Tuple[int, str]]:
    """:func:`read_text_lines` with every line cleaned by :func:`clean_transcript`.

    The notes of :func:`clean_transcript` are logged as warnings: the first
    :data:`MAX_LINE_WARNINGS` of the file one by one, the rest counted in one last warning.

    Args:
        path: the file.

    Yields:
        ``(line_number, cleaned_line)``; blank lines are yielded as ``""``.

    Raises:
        InputError: see :func:`read_text_lines` and :func:`clean_transcript`.
    """
    warned = 0
    for number, raw in read_text_lines(path):
        line, notes = clean_transcript(raw, path, number)
        for note in notes:
            warned += 1
            if warned <= MAX_LINE_WARNINGS:
                log.warning("%s", note)
        yield number, line
    if warned > MAX_LINE_WARNINGS:
        log.warning("%s: %d more lines had invisible characters removed", path, warned - MAX_LINE_WARNINGS)


__all__ = ["MAX_LINE_WARNINGS", "clean_transcript", "read_clean_lines", "read_text_lines"]
