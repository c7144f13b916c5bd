"""Training examples: fixed-size chunks of aligned frames, read lazily from the feature store.

Every utterance is cut into chunks of C output frames (Kaldi nnet3 "egs": ``frames-per-eg`` 8 for
TDNNs, chunk width 20 for LSTMs, 1 here for the DNN, which is frame-level shuffling). A chunk's
input is its ``C * f`` frames plus the model's left/right context frames, real neighbours inside
the utterance and copies of the edge frame beyond it. Nothing is loaded up front: each batch
reads its chunks' rows from the store's ``feats.npy`` (one ``preadv`` per chunk,
:meth:`FeatureStore.read_into`) and normalizes them with per-utterance CMVN statistics (mean and
inverse standard deviation, ``[U, F]``), so memory does not grow with the corpus beyond the
alignments and two integers per chunk. All chunks have one length
(a short utterance's chunk is padded with its edge frames and those targets ignored), so batches
need no bucketing.

::

    utterance (T frames)  |---- chunk 0 ----|---- chunk 1 ----|-- chunk 2 (last, shifted left) --|
    model input           [l ctx][  C*f frames  ][r ctx]
"""

from typing import Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from hybrid_asr.features.cmvn import CmvnStats
from hybrid_asr.features.storage import FeatureStore

#: Target value of frames that carry no label (padding of short utterances).
IGNORE = -100


class ChunkData:
    """The chunks of a set of aligned utterances, for any acoustic model.

    Args:
        store: feature store (its CMVN mode is applied per batch).
        alignments: ``utt_id -> int [T]`` pdf-ids at the feature frame rate; utterances without
            one are left out.
        utt_ids: utterances to use.
        left, right: model context frames (:attr:`AcousticModel.left_context` / ``right_context``).
        chunk_frames: C, output frames per chunk.
        subsampling: f, the model's frame subsampling factor (targets are taken at every f-th
            frame).
        cmvn_mode: override of the store's CMVN mode.
        global_stats: statistics for ``"global"`` mode (default: the store's own).

    Raises:
        ValueError: an alignment's length differs from its features', or nothing is aligned.
    """

    def __init__(self, store: FeatureStore, alignments: Mapping[str, np.ndarray], utt_ids: Sequence[str],
                 left: int, right: int, chunk_frames: int, subsampling: int = 1, cmvn_mode: Optional[str] = None,
                 global_stats: Optional[CmvnStats] = None):
        if chunk_frames < 1 or subsampling < 1:
            raise ValueError("chunk_frames and subsampling must be >= 1")
        self.store = store
        self.left, self.right, self.chunk, self.f = left, right, chunk_frames, subsampling
        mode = cmvn_mode or store.config.cmvn
        utts = [store.utterance(u) for u in utt_ids if u in alignments and u in store]
        if not utts:
            raise ValueError("no aligned utterances to train on")
        self.utt_ids = [u.id for u in utts]
        self.offsets = np.array([u.offset for u in utts], dtype=np.int64)
        self.frames = np.array([u.frames for u in utts], dtype=np.int64)
        self.targets: List[np.ndarray] = []
        means, inv_stds = [], []
        for u in utts:
            ali = np.asarray(alignments[u.id], dtype=np.int64)
            if len(ali) != u.frames:
                raise ValueError(f"{u.id}: alignment has {len(ali)} frames, features {u.frames}")
            self.targets.append(ali[::subsampling].astype(np.int32))
            mean, inv_std = utterance_cmvn(store, u, mode, global_stats)
            means.append(mean)
            inv_stds.append(inv_std)
        self.mean = torch.stack(means)  # [U, F]
        self.inv_std = torch.stack(inv_stds)  # [U, F]
        chunk_utt, chunk_start = [], []
        for i, tgt in enumerate(self.targets):
            starts = chunk_starts(len(tgt), chunk_frames)
            chunk_utt.append(np.full(len(starts), i, dtype=np.int32))
            chunk_start.append(starts.astype(np.int32))
        self.chunk_utt = np.concatenate(chunk_utt)  # [K] utterance index of each chunk
        self.chunk_start = np.concatenate(chunk_start)  # [K] first output frame of each chunk
        self.num_frames = int(sum(len(t) for t in self.targets))  # output frames with a label

    def __len__(self) -> int:
        """Number of chunks K."""
        return len(self.chunk_utt)

    @property
    def input_frames(self) -> int:
        """Input frames of one chunk: ``(C - 1) * f + 1 + l + r``."""
        return (self.chunk - 1) * self.f + 1 + self.left + self.right

    def batch(self, index: Sequence[int]) -> Tuple[torch.Tensor, torch.Tensor]:
        """The chunks ``index`` as model input and targets.

        Returns:
            ``(x, targets)``: float32 ``[B, input_frames, F]`` normalized features and int64
            ``[B, C]`` pdf-ids, :data:`IGNORE` where a short utterance has no frame.
        """
        index = np.asarray(index, dtype=np.int64)
        utt = self.chunk_utt[index]
        start = self.chunk_start[index].astype(np.int64)
        n_in = self.input_frames
        buf = np.empty((len(index), n_in, self.mean.shape[1]), dtype=np.float32)
        for b, (i, s) in enumerate(zip(utt.tolist(), start.tolist())):
            first = s * self.f - self.left  # relative to the utterance; may lie outside it
            lo, hi = max(first, 0), min(first + n_in, int(self.frames[i]))
            self.store.read_into(buf[b, lo - first : hi - first], int(self.offsets[i]) + lo)
            if lo > first:  # edge frames repeated beyond the utterance
                buf[b, : lo - first] = buf[b, lo - first]
            if hi < first + n_in:
                buf[b, hi - first :] = buf[b, hi - first - 1]
        u = torch.from_numpy(utt.astype(np.int64))
        x = (torch.from_numpy(buf) - self.mean[u].unsqueeze(1)) * self.inv_std[u].unsqueeze(1)
        y = np.full((len(index), self.chunk), IGNORE, dtype=np.int64)
        for b, (i, s) in enumerate(zip(utt, start)):
            tgt = self.targets[i][s : s + self.chunk]
            y[b, : len(tgt)] = tgt
        return x, torch.from_numpy(y)

    def batch_keys(self, chunks_per_batch: int, order: Optional[torch.Tensor] = None, skip: int = 0
                   ) -> List[np.ndarray]:
        """The chunk indices of each batch of ``order`` (default: every chunk in order), from
        batch number ``skip`` on (to resume inside an epoch)."""
        order = torch.arange(len(self)) if order is None else order
        return [order[i : i + chunks_per_batch].numpy() for i in range(skip * chunks_per_batch, len(order),
                                                                         chunks_per_batch)]

    def batches(self, chunks_per_batch: int, order: Optional[torch.Tensor] = None, skip: int = 0
                ) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        """Yield :meth:`batch` for each of :meth:`batch_keys`."""
        for key in self.batch_keys(chunks_per_batch, order, skip):
            yield self.batch(key)


def utterance_cmvn(store: FeatureStore, utt, mode: str, global_stats: Optional[CmvnStats] = None
                   ) -> Tuple[torch.Tensor, torch.Tensor]:
    """The CMVN of one utterance of ``store`` in ``mode``: its own statistics (``"utterance"``),
    its speaker's (``"speaker"``) or ``global_stats`` (default the store's global ones).

    Args:
        utt: the store's :class:`~hybrid_asr.features.storage.Utterance`.

    Returns:
        ``(mean, 1 / std)``, float32 ``[F]`` each; normalized features are ``(x - mean) * inv_std``.
    """
    if mode == "utterance":
        stats = store.utterance_cmvn(utt.id)  # stored at extraction: no frames read
    elif mode == "speaker":
        stats = store.cmvn[utt.speaker]
    else:
        stats = global_stats if global_stats is not None else store.global_cmvn
    mean, std = stats.mean_std()
    return mean, 1.0 / std


def chunk_starts(num_frames: int, chunk: int) -> np.ndarray:
    """First output frame of each chunk covering ``num_frames`` frames: every C frames, the last
    chunk shifted left to end on the last frame (overlapping its neighbour) when it would run
    past it; one chunk if the utterance is shorter than C.

    Returns:
        int64 ``[ceil(T / C)]``.
    """
    if num_frames <= chunk:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, num_frames, chunk, dtype=np.int64)
    starts[-1] = min(starts[-1], num_frames - chunk)
    return starts


def epoch_order(num_chunks: int, seed: int, epoch: int, rank: int = 0, world_size: int = 1,
                block_chunks: int = 0, window_chunks: int = 0) -> torch.Tensor:
    """The shuffled chunk order of one epoch on one rank: a permutation seeded by
    ``(seed, epoch)`` alone (so a resumed run and every rank of a distributed run agree on it),
    then every ``world_size``-th entry from ``rank`` (data sharded per rank), truncated so that all
    ranks get the same number of chunks.

    With ``block_chunks`` B > 0 the permutation reads the store nearly sequentially, as Kaldi's
    training archives with ``nnet3-shuffle-egs --buffer-size`` or lhotse Shar shards with a
    shuffle buffer do: the chunks (in store order, i.e. file order) are cut into blocks of B
    consecutive chunks, the blocks are taken in a random order, and the resulting sequence is
    shuffled within consecutive windows of ``window_chunks`` W chunks (default ``4 B``). A batch
    then reads from a few blocks of the feature file instead of anywhere in it (from a cold page
    cache or a network disk: long sequential reads and working readahead instead of one seek per
    chunk), at the cost of less mixing: a batch's chunks come from W consecutive chunks of that
    sequence, i.e. from about W / B blocks (utterances of a few speakers, where the store is in
    speaker order).

    Returns:
        int64 ``[num_chunks // world_size]`` chunk indices.
    """
    gen = torch.Generator().manual_seed(seed * 100003 + epoch)
    if block_chunks > 0:
        num_blocks = -(-num_chunks // block_chunks)
        blocks = torch.randperm(num_blocks, generator=gen)
        starts = blocks * block_chunks
        sizes = torch.clamp(num_chunks - starts, max=block_chunks)
        sequence = torch.repeat_interleave(starts - torch.cumsum(sizes, 0) + sizes, sizes) + torch.arange(num_chunks)
        window = window_chunks or 4 * block_chunks
        keys = (torch.arange(num_chunks) // window).double() + torch.rand(num_chunks, generator=gen, dtype=torch.float64)
        perm = sequence[torch.argsort(keys)]
    else:
        perm = torch.randperm(num_chunks, generator=gen)
    per_rank = num_chunks // world_size
    return perm[rank : per_rank * world_size : world_size]
