"""Data-parallel training with ``torch.distributed``: what a rank knows about its process group.

Launched by ``torchrun`` (which sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous
variables), every rank trains a replica wrapped in
:class:`torch.nn.parallel.DistributedDataParallel`, which averages the gradients over ranks after
each backward pass; each rank reads its own shard of every epoch's chunk order
(:func:`hybrid_asr.training.chunks.epoch_order`). Backend: gloo on CPU, NCCL on GPUs.
Without ``torchrun`` (no ``WORLD_SIZE``), the context is a single process and changes nothing.
"""

import os
from typing import List, Optional, Sequence

import torch
import torch.distributed as torch_dist


class DistributedContext:
    """Rank, world size and helpers of this process (a one-process group by default)."""

    def __init__(self, rank: int = 0, world_size: int = 1, local_rank: int = 0):
        self.rank, self.world_size, self.local_rank = rank, world_size, local_rank

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, metrics and the model."""
        return self.rank == 0

    @classmethod
    def from_environment(cls, device: str = "cpu") -> "DistributedContext":
        """Join the process group ``torchrun`` set up (gloo for ``device="cpu"``, NCCL for
        ``"cuda"``), or return a one-process context when not launched by it."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        if not torch_dist.is_initialized():
            torch_dist.init_process_group("nccl" if device == "cuda" else "gloo")
        return cls(torch_dist.get_rank(), torch_dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))

    def device(self, kind: str) -> torch.device:
        """This rank's device: the CPU, or GPU ``LOCAL_RANK``."""
        if kind == "cuda":
            if not torch.cuda.is_available():
                raise RuntimeError("--device cuda was asked for, but torch sees no CUDA device")
            torch.cuda.set_device(self.local_rank)
            return torch.device("cuda", self.local_rank)
        return torch.device("cpu")

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` in DistributedDataParallel when there are several ranks, else itself."""
        if self.world_size == 1:
            return model
        device_ids: Optional[List[int]] = None
        if next(model.parameters()).is_cuda:
            device_ids = [self.local_rank]
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)

    def all_reduce_sum(self, values: Sequence[float]) -> List[float]:
        """Sum of ``values`` over all ranks (float64; the values themselves on one rank)."""
        if self.world_size == 1:
            return [float(v) for v in values]
        t = torch.tensor([float(v) for v in values], dtype=torch.float64)
        if torch_dist.get_backend() == "nccl":
            t = t.cuda()
        torch_dist.all_reduce(t)
        return t.cpu().tolist()

    def barrier(self) -> None:
        """Wait for every rank (no-op in one process)."""
        if self.world_size > 1:
            torch_dist.barrier()
