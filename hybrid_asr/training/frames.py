"""Frame-level training data: normalized frames, their senone targets, spliced mini-batches."""

from typing import Iterator, Mapping, Sequence, Tuple

import numpy as np
import torch

from hybrid_asr.features.storage import FeatureStore


class FrameData:
    """All aligned frames of a set of utterances, for frame cross-entropy training.

    Splicing is done on the fly per mini-batch by gathering neighbour frames, clamped to the
    utterance's own first/last frame (as :func:`hybrid_asr.features.splice` does), so memory
    holds one copy of the ``[N, F]`` features only.

    Args:
        store: feature store (per-speaker CMVN is applied).
        alignments: ``utt_id -> [T]`` pdf-ids; utterances without one are left out.
        utt_ids: utterances to use.
        left, right: splice context in frames.
    """

    def __init__(self, store: FeatureStore, alignments: Mapping[str, np.ndarray], utt_ids: Sequence[str],
                 left: int, right: int):
        feats, targets, starts, ends = [], [], [], []
        offset = 0
        for utt in utt_ids:
            if utt not in alignments:
                continue
            f = store.normalized(utt)
            ali = alignments[utt]
            if len(ali) != f.shape[0]:
                raise ValueError(f"{utt}: alignment has {len(ali)} frames, features {f.shape[0]}")
            feats.append(f)
            targets.append(torch.from_numpy(np.asarray(ali, dtype=np.int64)))
            starts.append(torch.full((len(ali),), offset, dtype=torch.int64))
            ends.append(torch.full((len(ali),), offset + len(ali) - 1, dtype=torch.int64))
            offset += len(ali)
        if not feats:
            raise ValueError("no aligned utterances to train on")
        self.feats = torch.cat(feats)  # [N, F]
        self.targets = torch.cat(targets)  # [N]
        self._start = torch.cat(starts)
        self._end = torch.cat(ends)
        self._offsets = torch.arange(-left, right + 1)

    def __len__(self) -> int:
        return int(self.targets.numel())

    def spliced(self, index: torch.Tensor) -> torch.Tensor:
        """Spliced inputs ``[B, (l+1+r)*F]`` of frames ``index`` ``[B]`` (int64)."""
        idx = index.unsqueeze(1) + self._offsets
        idx = torch.maximum(torch.minimum(idx, self._end[index].unsqueeze(1)), self._start[index].unsqueeze(1))
        return self.feats[idx].reshape(index.numel(), -1)

    def batches(self, batch_size: int, shuffle: bool, generator: torch.Generator = None
                ) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(inputs [B, D] float32, targets [B] int64)`` covering every frame once."""
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        for i in range(0, len(self), batch_size):
            index = order[i : i + batch_size]
            yield self.spliced(index), self.targets[index]
