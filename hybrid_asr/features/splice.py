"""Frame splicing: stack each frame with its neighbours (Kaldi ``splice-feats``)."""

import torch


def splice(feats: torch.Tensor, left: int, right: int) -> torch.Tensor:
    """Concatenate every frame with ``left`` previous and ``right`` following frames.

    Frames beyond the edges repeat the first/last frame, as Kaldi's ``splice-feats`` does.

    Args:
        feats: ``[T, F]`` features of one utterance.
        left: frames of left context (>= 0).
        right: frames of right context (>= 0).

    Returns:
        ``[T, (left + 1 + right) * F]``, same dtype; row t is frames t-left .. t+right in order.
    """
    if left < 0 or right < 0:
        raise ValueError(f"context must be non-negative, got left={left} right={right}")
    num = feats.shape[0]
    offsets = torch.arange(-left, right + 1)
    index = (torch.arange(num).unsqueeze(1) + offsets).clamp_(0, num - 1)  # [T, K]
    return feats[index].reshape(num, -1)
