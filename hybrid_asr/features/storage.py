"""Feature storage: one float32 array per split plus a JSON index and per-speaker CMVN stats.

Layout of a store directory (written once per split by :func:`compute_feature_store`, or by
:func:`merge_feature_stores` from the stores of several jobs)::

    feats.npy      float32 [total_frames, F]   raw (un-normalized) features, utterances back to back
                   (or float16: ``StoreConfig.dtype``, half the disk and page cache; read back as
                   float32, rounded to 11 significant bits, about 3 decimal digits)
    index.json     {"config": FeatureConfig, "utterances": [{id, speaker, text, offset, frames}, ...]}
    cmvn.json      {speaker: CmvnStats}        per-speaker statistics of the raw features
    utt_cmvn.npy   float64 [U, 1 + 2F]         per-utterance statistics (count, sum, sum of squares)
                                               in index order, so per-utterance CMVN at training
                                               start-up reads no features (stores written before
                                               it existed compute them from the frames instead)
    failed.txt     one line per utterance that could not be read (only if any)

``index.json`` is written last, so a directory without it is an incomplete store.
"""

import json
import logging
import os
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from hybrid_asr.errors import ConfigError, HybridAsrError, InputError
from hybrid_asr.features.cmvn import CmvnStats
from hybrid_asr.features.config import FeatureConfig
from hybrid_asr.features.extract import compute_features
from hybrid_asr.utils import atomic_path, progress, write_text_atomic

log = logging.getLogger(__name__)

#: Per-utterance CMVN statistics of a store (see the module docstring).
UTT_CMVN_FILE = "utt_cmvn.npy"
#: numpy type of each storage precision of ``feats.npy``.
STORE_DTYPES = {"float32": np.float32, "float16": np.float16}


@dataclass(frozen=True)
class StoreConfig:
    """How a feature store keeps its frames (not what they are: that is the ``FeatureConfig``).

    Attributes:
        dtype: ``float32``, or ``float16`` (half the disk, half the page cache at 1,000 hours;
            frames are read back as float32).
    """

    dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.dtype not in STORE_DTYPES:
            raise ConfigError(f"dtype must be one of {', '.join(STORE_DTYPES)}, not {self.dtype!r}")


@dataclass(frozen=True)
class Utterance:
    """One utterance of a store: where its frames are and what was said.

    Attributes:
        id: utterance (supervision) id.
        speaker: speaker id (CMVN statistics are per speaker).
        text: reference transcript, words separated by single spaces.
        offset: index of its first frame in ``feats.npy``.
        frames: number of 10 ms frames T.
    """

    id: str
    speaker: str
    text: str
    offset: int
    frames: int


class FeatureStore:
    """Read access to a feature store directory (see the module docstring for its layout).

    Args:
        path: the store directory.

    Raises:
        InputError: the directory is not a complete store.
    """

    def __init__(self, path: Union[str, Path]):
        self.path = Path(path)
        index_file = self.path / "index.json"
        if not index_file.is_file():
            raise InputError(self.path, "not a feature store (index.json missing: run compute-features)")
        index = json.loads(index_file.read_text())
        self.config = FeatureConfig.from_dict(index["config"])
        self.utterances: List[Utterance] = [Utterance(**u) for u in index["utterances"]]
        self._by_id = {u.id: u for u in self.utterances}
        self._position = {u.id: i for i, u in enumerate(self.utterances)}
        self.cmvn: Dict[str, CmvnStats] = {
            spk: CmvnStats.from_dict(d) for spk, d in json.loads((self.path / "cmvn.json").read_text()).items()
        }
        self._feats_path = self.path / "feats.npy"
        with open(self._feats_path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(f)
            self._data_offset = f.tell()
        if fortran or dtype not in (np.dtype("<f4"), np.dtype("<f2")) or len(shape) != 2:
            raise InputError(self._feats_path, f"expected a C-order float32 or float16 [frames, F] array, got "
                             f"{dtype} {shape}")
        self.dtype = np.dtype(dtype)
        self.num_frames, self.dim = int(shape[0]), int(shape[1])
        self._fd = os.open(self._feats_path, os.O_RDONLY)

    def __getstate__(self) -> dict:
        """Pickled (e.g. for a spawned data-loader worker) without its file descriptor."""
        state = dict(self.__dict__)
        del state["_fd"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._fd = os.open(self._feats_path, os.O_RDONLY)

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)

    def read_into(self, out: np.ndarray, start: int) -> None:
        """Fill ``out`` (a C-contiguous float32 ``[n, F]`` array or view) with frames
        ``[start, start + n)`` of ``feats.npy`` (one ``preadv``, no copy in between; a float16
        store is read into a buffer and converted).

        Training reads its chunks this way: the data passes through the page cache only, so
        reading a whole corpus in random order does not grow this process's resident memory (a
        memory map's touched pages would, and the kernel maps them in 64 KB runs).

        Raises:
            IndexError: the rows lie outside the file.
            InputError: the file is shorter than its header says (truncated).
        """
        n = out.shape[0]
        if not 0 <= start <= start + n <= self.num_frames:
            raise IndexError(f"rows {start}:{start + n} outside 0:{self.num_frames}")
        row_bytes = self.dtype.itemsize * self.dim
        target = out if self.dtype == np.float32 else np.empty((n, self.dim), dtype=self.dtype)
        got = os.preadv(self._fd, [memoryview(target).cast("B")], self._data_offset + start * row_bytes)
        if target is not out:
            out[...] = target
        if got != n * row_bytes:
            raise InputError(self._feats_path, f"short read at row {start} (file truncated?)")

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Frames ``[start, stop)`` of ``feats.npy`` (all utterances back to back), float32
        ``[stop - start, F]`` (see :meth:`read_into`)."""
        out = np.empty((stop - start, self.dim), dtype=np.float32)
        self.read_into(out, start)
        return out

    def __len__(self) -> int:
        return len(self.utterances)

    def __contains__(self, utt_id: str) -> bool:
        return utt_id in self._by_id

    def utterance(self, utt_id: str) -> Utterance:
        """Index entry of ``utt_id``; raises ``KeyError`` if absent."""
        return self._by_id[utt_id]

    def raw(self, utt_id: str) -> torch.Tensor:
        """Raw features of one utterance, float32 ``[T, F]``."""
        u = self._by_id[utt_id]
        return torch.from_numpy(self.rows(u.offset, u.offset + u.frames))

    @cached_property
    def _utterance_stats(self) -> Optional[np.ndarray]:
        """``utt_cmvn.npy`` (float64 ``[U, 1 + 2F]``), or None for a store written without it."""
        path = self.path / UTT_CMVN_FILE
        if not path.is_file():
            return None
        try:
            stats = np.load(path, allow_pickle=False)
        except ValueError as e:
            raise InputError(path, f"not a numeric array ({e})") from None
        if stats.shape != (len(self.utterances), 1 + 2 * self.dim) or stats.dtype != np.float64:
            raise InputError(path, f"expected float64 [{len(self.utterances)}, {1 + 2 * self.dim}], "
                             f"got {stats.dtype} {list(stats.shape)}")
        return stats

    def utterance_cmvn(self, utt_id: str) -> CmvnStats:
        """CMVN statistics of one utterance's raw features: from ``utt_cmvn.npy`` when the store
        has it (no frames read), else computed from its frames. Both give the same numbers: the
        stored ones were computed from the float32 rows as written."""
        stats = self._utterance_stats
        if stats is None:
            return CmvnStats.from_features(self.raw(utt_id))
        row = stats[self._position[utt_id]]
        return CmvnStats(float(row[0]), row[1 : 1 + self.dim].copy(), row[1 + self.dim :].copy())

    @cached_property
    def global_cmvn(self) -> CmvnStats:
        """Statistics over all speakers of the store (merged once, on first use)."""
        return CmvnStats.merge(self.cmvn.values())

    def normalized(self, utt_id: str, mode: Optional[str] = None,
                   global_stats: Optional[CmvnStats] = None) -> torch.Tensor:
        """CMVN-normalized features ``[T, F]`` of one utterance.

        Args:
            utt_id: utterance id.
            mode: ``"utterance"``, ``"speaker"`` or ``"global"``; default the store's
                ``config.cmvn``.
            global_stats: statistics for ``"global"`` (e.g. a model's training statistics);
                default the statistics of this whole store.
        """
        raw = self.raw(utt_id)
        mode = mode or self.config.cmvn
        if mode == "utterance":
            stats = CmvnStats.from_features(raw)
        elif mode == "speaker":
            stats = self.cmvn[self._by_id[utt_id].speaker]
        elif mode == "global":
            stats = global_stats if global_stats is not None else self.global_cmvn
        else:
            raise ValueError(f"unknown CMVN mode {mode!r}")
        return stats.apply(raw)



AudioLoader = Callable[[int], torch.Tensor]
"""Returns an utterance's mono waveform at the given rate (Hz), int16 range, float32 ``[num_samples]``;
raises :class:`InputError` if the audio cannot be read."""


class UtteranceAudio(NamedTuple):
    """One utterance to compute features for: ids, transcript and how to read its audio."""

    utt_id: str
    speaker: str
    text: str
    load: AudioLoader


def _stats_row(stats: CmvnStats) -> np.ndarray:
    """One row of ``utt_cmvn.npy``: float64 ``[1 + 2F]`` (count, sum, sum of squares)."""
    return np.concatenate([[stats.count], stats.sum, stats.sumsq]).astype(np.float64)


def _save_utterance_stats(out_dir: Path, stats: np.ndarray) -> None:
    with atomic_path(out_dir / UTT_CMVN_FILE) as tmp, open(tmp, "wb") as f:
        np.save(f, stats, allow_pickle=False)


_COPY_BLOCK = 64 << 20  # bytes per read when concatenating feature files


def _write_npy(dst: Path, parts: Sequence[Tuple[Path, int, int]], rows: int, dim: int,
               dtype: np.dtype = np.dtype("<f4")) -> None:
    """Write a ``[rows, dim]`` ``.npy`` file of ``dtype`` atomically from raw row bytes held in
    other files: ``(file, byte offset, byte count)`` each, copied in order in blocks (memory stays
    flat)."""
    with atomic_path(dst) as tmp, open(tmp, "wb") as out:
        np.lib.format.write_array_header_1_0(out, {"descr": np.dtype(dtype).str, "fortran_order": False,
                                                   "shape": (rows, dim)})
        for path, offset, count in parts:
            with open(path, "rb") as src:
                src.seek(offset)
                while count > 0:
                    block = src.read(min(count, _COPY_BLOCK))
                    if not block:
                        raise InputError(path, "feature data shorter than its index says (file truncated?)")
                    out.write(block)
                    count -= len(block)


def compute_feature_store(
    segments: Sequence[UtteranceAudio],
    config: FeatureConfig,
    out_dir: Union[str, Path],
    store: StoreConfig = StoreConfig(),
) -> Tuple[int, List[str]]:
    """Compute features for a list of utterances and write a store to ``out_dir``.

    Rows are written to disk as each utterance is computed, so memory does not grow with the
    corpus. A file that cannot be read is logged, listed in ``failed.txt`` and skipped; the rest
    continue.

    Args:
        segments: one :class:`UtteranceAudio` per utterance (plain 4-tuples in that order work too).
        config: front-end settings.
        out_dir: store directory to create.
        store: storage precision.

    Returns:
        ``(number of utterances stored, ids of the failed ones)``.

    Raises:
        HybridAsrError: no utterance could be processed.
    """
    def compute(loader):
        return lambda: compute_features(loader(config.sample_rate), config)

    return write_feature_store([(u, spk, text, compute(loader)) for u, spk, text, loader in segments], config, out_dir,
                               store)


def write_feature_store(
    utterances: Sequence[Tuple[str, str, str, Callable[[], torch.Tensor]]],
    config: FeatureConfig,
    out_dir: Union[str, Path],
    store: StoreConfig = StoreConfig(),
) -> Tuple[int, List[str]]:
    """Write a store of features made one utterance at a time (from audio, or from another
    store, e.g. speaker-adapted frames).

    Args:
        utterances: ``(utt_id, speaker, text, make)``; ``make()`` gives float ``[T, config.dim]``
            or raises :class:`InputError` / ``ValueError`` (the utterance is then logged, listed
            in ``failed.txt`` and skipped).
        config: what the features are.
        out_dir: store directory to create.
        store: storage precision (the CMVN statistics are those of the frames as stored).

    Returns:
        ``(number of utterances stored, ids of the failed ones)``.

    Raises:
        HybridAsrError: no utterance could be processed.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "index.json").unlink(missing_ok=True)  # incomplete until the new index is written
    segments = utterances
    entries, failed = [], []
    per_speaker: Dict[str, CmvnStats] = {}
    per_utterance: List[np.ndarray] = []
    dtype = np.dtype(STORE_DTYPES[store.dtype])
    offset = 0
    raw_path = out_dir / ".feats.raw"
    try:
        with open(raw_path, "wb") as raw:
            for utt_id, speaker, text, make in progress(segments, desc=f"features {out_dir.name}", unit="utt"):
                try:
                    feats = make()
                except (InputError, ValueError) as e:
                    log.error("skipping %s: %s", utt_id, e)
                    failed.append(f"{utt_id} {e}")
                    continue
                rows = np.ascontiguousarray(feats.numpy(), dtype=dtype)
                raw.write(rows.tobytes())
                entries.append(asdict(Utterance(utt_id, speaker, text, offset, int(feats.shape[0]))))
                stats = CmvnStats.from_features(torch.from_numpy(rows.astype(np.float32)))  # of the rows as stored
                per_utterance.append(_stats_row(stats))
                per_speaker[speaker] = CmvnStats.merge([per_speaker[speaker], stats]) if speaker in per_speaker else stats
                offset += int(feats.shape[0])
        if not entries:
            raise HybridAsrError(f"{out_dir}: no utterance could be processed ({len(failed)} failed)")
        if failed:
            write_text_atomic(out_dir / "failed.txt", "\n".join(failed) + "\n")
            log.warning("%d of %d utterances failed; see %s", len(failed), len(segments), out_dir / "failed.txt")
        _write_npy(out_dir / "feats.npy", [(raw_path, 0, offset * dtype.itemsize * config.dim)], offset, config.dim,
                   dtype)
    finally:
        raw_path.unlink(missing_ok=True)
    write_text_atomic(out_dir / "cmvn.json", json.dumps({spk: st.to_dict() for spk, st in per_speaker.items()}))
    _save_utterance_stats(out_dir, np.stack(per_utterance))
    index = {"config": asdict(config), "utterances": entries}
    write_text_atomic(out_dir / "index.json", json.dumps(index, indent=0))
    log.info("wrote %d utterances, %d frames to %s", len(entries), offset, out_dir)
    return len(entries), [f.split()[0] for f in failed]


def merge_feature_stores(shard_dirs: Sequence[Union[str, Path]], out_dir: Union[str, Path]) -> int:
    """Concatenate feature stores (the shards of one ``compute-features``) into one store.

    Utterances keep the order of ``shard_dirs`` and, within each, their own; per-speaker CMVN
    statistics of a speaker found in several shards are summed; ``failed.txt`` files are joined.

    Returns:
        The number of utterances of the merged store.

    Raises:
        HybridAsrError: no shard directory given.
        InputError: a shard is not a complete store, or the shards' feature configs differ, or an
            utterance id appears in two shards.
    """
    stores = [FeatureStore(d) for d in shard_dirs]
    if not stores:
        raise HybridAsrError("merge-feature-stores: no shard directories given")
    for st in stores[1:]:
        if st.config != stores[0].config:
            raise InputError(st.path, f"feature config differs from that of {stores[0].path}")
        if st.dtype != stores[0].dtype:
            raise InputError(st.path, f"stores its frames as {st.dtype.name}, {stores[0].path} as {stores[0].dtype.name}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "index.json").unlink(missing_ok=True)  # incomplete until the new index is written
    entries, seen, cmvn, failed, offset, utt_stats = [], set(), {}, [], 0, []
    for st in stores:
        for u in st.utterances:
            if u.id in seen:
                raise InputError(st.path, f"utterance {u.id} is in two shards")
            seen.add(u.id)
            entries.append(asdict(replace(u, offset=u.offset + offset)))
        for spk, stats in st.cmvn.items():
            cmvn[spk] = CmvnStats.merge([cmvn[spk], stats]) if spk in cmvn else stats
        shard_stats = st._utterance_stats
        utt_stats.append(shard_stats if shard_stats is not None
                         else np.stack([_stats_row(st.utterance_cmvn(u.id)) for u in st.utterances]))
        if (st.path / "failed.txt").is_file():
            failed.append((st.path / "failed.txt").read_text())
        offset += st.num_frames
    dim = stores[0].dim
    itemsize = stores[0].dtype.itemsize
    _write_npy(out / "feats.npy", [(st._feats_path, st._data_offset, st.num_frames * itemsize * dim)
                                   for st in stores], offset, dim, stores[0].dtype)
    if failed:
        write_text_atomic(out / "failed.txt", "".join(failed))
    write_text_atomic(out / "cmvn.json", json.dumps({spk: st.to_dict() for spk, st in cmvn.items()}))
    _save_utterance_stats(out, np.concatenate(utt_stats))
    index = {"config": asdict(stores[0].config), "utterances": entries}
    write_text_atomic(out / "index.json", json.dumps(index, indent=0))
    log.info("merged %d stores: %d utterances, %d frames -> %s", len(stores), len(entries), offset, out)
    return len(entries)
