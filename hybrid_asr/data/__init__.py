"""Corpus preparation: AN4, FSDD and Kaldi data directories to lhotse manifests.

Each corpus becomes, per split, a :class:`lhotse.RecordingSet` and a
:class:`lhotse.SupervisionSet` (one supervision per utterance, with speaker and normalized text),
stored by :func:`write_split` and read back, validated, by :func:`read_split`.
"""

from hybrid_asr.data.an4 import AN4_URL, download_an4, prepare_an4
from hybrid_asr.data.fsdd import DIGIT_WORDS, FSDD_URL, download_fsdd, prepare_fsdd
from hybrid_asr.data.kaldi_dir import import_kaldi_data_dir
from hybrid_asr.data.manifests import (
    SPLIT_FILES,
    normalize_text,
    read_split,
    resolve_corpus_dir,
    validate_split,
    write_split,
)

__all__ = [
    "AN4_URL",
    "DIGIT_WORDS",
    "FSDD_URL",
    "SPLIT_FILES",
    "download_an4",
    "download_fsdd",
    "import_kaldi_data_dir",
    "normalize_text",
    "prepare_an4",
    "prepare_fsdd",
    "read_split",
    "resolve_corpus_dir",
    "validate_split",
    "write_split",
]
