"""LibriSpeech and mini LibriSpeech (Panayotov et al. 2015, openslr.org 11 and 31): lhotse's
downloader and preparer, then our manifest splits.

The corpus folder holds one folder per part (``train-clean-100``, ``dev-clean``, ...; mini
LibriSpeech: ``train-clean-5``, ``dev-clean-2``), each ``<speaker>/<chapter>/`` with FLAC files
``<speaker>-<chapter>-<utterance>.flac`` and a ``<speaker>-<chapter>.trans.txt`` of
``<utterance id> <TRANSCRIPT>`` lines. lhotse's ``prepare_librispeech`` reads that layout; each part
becomes a split of the same name (one supervision per utterance, speaker = the LibriSpeech speaker).

The language models and lexicon of Kaldi's recipes (``3-gram.pruned.1e-7.arpa.gz``,
``librispeech-lexicon.txt``, ...) are the resources of openslr.org 11: :func:`download_lm_resources`.
"""

import logging
import urllib.request
from pathlib import Path
from typing import Dict, Sequence, Tuple

from lhotse import RecordingSet, SupervisionSet
from lhotse.utils import fastcopy

from hybrid_asr.data.manifests import normalize_text
from hybrid_asr.errors import InputError
from hybrid_asr.utils import atomic_path

log = logging.getLogger(__name__)

#: The parts of mini LibriSpeech (Kaldi's ``egs/mini_librispeech``).
MINI_LIBRISPEECH = ("train-clean-5", "dev-clean-2")
#: Where the LMs and the lexicon of openslr.org resource 11 are.
LM_RESOURCES_URL = "https://www.openslr.org/resources/11"


def download_librispeech(target_dir: Path, parts: Sequence[str] = MINI_LIBRISPEECH) -> Path:
    """Download and extract LibriSpeech parts with lhotse (openslr.org 12 / 31).

    Returns:
        The corpus folder (``<target_dir>/LibriSpeech``), one folder per part.

    Raises:
        InputError: the download failed (e.g. no network).
    """
    from lhotse.recipes import download_librispeech as lhotse_download

    try:
        return Path(lhotse_download(target_dir, dataset_parts=list(parts))) / "LibriSpeech"
    except OSError as e:
        raise InputError(target_dir, f"could not download LibriSpeech {', '.join(parts)} ({e}); download it by "
                         "hand and pass --corpus-dir") from None


def download_lm_resources(target_dir: Path, names: Sequence[str]) -> Dict[str, Path]:
    """Download the named files of openslr.org resource 11 (e.g. ``3-gram.pruned.1e-7.arpa.gz``,
    ``librispeech-lexicon.txt``) into ``target_dir`` unless they are there.

    Returns:
        ``{name: path}``.

    Raises:
        InputError: a download failed.
    """
    target_dir.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in names:
        path = target_dir / name
        if not path.is_file():
            url = f"{LM_RESOURCES_URL}/{name}"
            log.info("downloading %s", url)
            try:
                with urllib.request.urlopen(url, timeout=60) as r, atomic_path(path) as tmp, open(tmp, "wb") as f:
                    while True:
                        block = r.read(1 << 20)
                        if not block:
                            break
                        f.write(block)
            except OSError as e:
                raise InputError(path, f"could not download {url} ({e}); download it by hand into "
                                 f"{target_dir}") from None
        out[name] = path
    return out


def prepare_librispeech(corpus_dir: Path, parts: Sequence[str] = MINI_LIBRISPEECH
                        ) -> Dict[str, Tuple[RecordingSet, SupervisionSet]]:
    """Manifests of LibriSpeech parts, one split per part (named as the part).

    Args:
        corpus_dir: the folder holding the part folders.
        parts: which parts.

    Returns:
        ``{part: (recordings, supervisions)}``; transcripts normalized as every corpus's
        (:func:`~hybrid_asr.data.manifests.normalize_text`).

    Raises:
        InputError: a part folder is missing or holds no transcript.
    """
    from lhotse.recipes import prepare_librispeech as lhotse_prepare

    corpus_dir = Path(corpus_dir)
    for part in parts:
        if not (corpus_dir / part).is_dir():
            raise InputError(corpus_dir / part, "LibriSpeech part folder does not exist")
        if next((corpus_dir / part).rglob("*.trans.txt"), None) is None:
            raise InputError(corpus_dir / part, "holds no *.trans.txt transcript (not a LibriSpeech part?)")
    manifests = lhotse_prepare(corpus_dir, dataset_parts=list(parts), output_dir=None)
    out = {}
    for part in parts:
        recs, sups = manifests[part]["recordings"], manifests[part]["supervisions"]
        sups = SupervisionSet.from_segments(fastcopy(s, text=normalize_text(s.text)) for s in sups)
        log.info("LibriSpeech %s: %d utterances, %d speakers, %.1f hours", part, len(sups),
                 len({s.speaker for s in sups}), sum(s.duration for s in sups) / 3600)
        out[part] = (recs, sups)
    return out


__all__ = ["LM_RESOURCES_URL", "MINI_LIBRISPEECH", "download_librispeech", "download_lm_resources",
           "prepare_librispeech"]
