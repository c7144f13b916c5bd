"""Reading training batches ahead of the optimizer: a :class:`torch.utils.data.DataLoader` over
the batches of one epoch.

Both kinds of training data (:class:`~hybrid_asr.training.chunks.ChunkData` for frame
cross-entropy, :class:`~hybrid_asr.training.sequence.UtteranceData` for sequence training) say
which batches an epoch has (``batch_keys``: the chunk indices of each batch, or the minibatch
numbers) and build one batch from its key (``batch``). With ``num_workers = 0`` the batches are
built in the training process, one after another, as before; with ``N`` workers, ``N`` processes
build them (reading the feature store with their own ``preadv`` calls) while the model trains,
``prefetch_factor`` batches each ahead, and hand them over in order through shared memory (pinned
host memory when training on a GPU). Batches do not depend on which process built them, so
training gives the same weights with any number of workers, and an exact resume stays exact.
"""

from typing import Any, Iterable, Protocol, Sequence

import torch
from torch.utils.data import DataLoader, Dataset


class BatchedData(Protocol):
    """What :func:`epoch_batches` needs of the training data."""

    def batch_keys(self, per_batch: int, order: torch.Tensor, skip: int) -> Sequence[Any]:
        """The keys of the batches of ``order`` from batch number ``skip`` on."""

    def batch(self, key: Any) -> Any:
        """The batch of one key."""


class _EpochBatches(Dataset):
    """The batches of one epoch as a map-style dataset: item ``i`` is ``data.batch(keys[i])``."""

    def __init__(self, data: BatchedData, keys: Sequence[Any]):
        self.data, self.keys = data, keys

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, i: int) -> Any:
        return self.data.batch(self.keys[i])


def _as_built(batch: Any) -> Any:
    """The batch as ``batch()`` built it (the default collation would turn NumPy arrays inside it
    into tensors)."""
    return batch


def epoch_batches(data: BatchedData, per_batch: int, order: torch.Tensor, skip: int = 0, num_workers: int = 0,
                  prefetch_factor: int = 2, pin_memory: bool = False) -> Iterable[Any]:
    """The batches of one epoch in order, built in ``num_workers`` processes (0: in this one).

    Args:
        data: the training or held-out data.
        per_batch: items (chunks or minibatches) per batch, as ``data.batch_keys`` takes it.
        order: the epoch's item order (int64 ``[K]``).
        skip: batches already done (resuming inside an epoch).
        num_workers: processes that build batches ahead (:class:`torch.utils.data.DataLoader`).
        prefetch_factor: batches each worker builds ahead.
        pin_memory: hand the batches over in pinned host memory (for copies to a GPU).

    Returns:
        An iterable of batches (what ``data.batch`` returns), ``len()`` of which is the number left.
    """
    keys = data.batch_keys(per_batch, order, skip)
    dataset = _EpochBatches(data, keys)
    if num_workers == 0:
        return (dataset[i] for i in range(len(dataset)))
    # its own generator: a DataLoader otherwise draws its workers' seed from the global RNG, which
    # would shift the dropout and SpecAugment draws of the training process (and exact resume)
    return DataLoader(dataset, batch_size=None, shuffle=False, num_workers=num_workers, collate_fn=_as_built,
                      pin_memory=pin_memory, prefetch_factor=prefetch_factor, generator=torch.Generator())


__all__ = ["BatchedData", "epoch_batches"]
