"""SpecAugment-style masking of training features (Park et al. 2019, "SpecAugment: A Simple Data
Augmentation Method for Automatic Speech Recognition", Interspeech; sections 2 and 3: frequency
and time masking, without time warping). Kaldi's nnet3 ``spec-augment-layer`` does the same for
hybrid TDNN-F models.

Masks are applied to CMVN-normalized features, so a masked value of 0 is the utterance's mean.
Only training batches are masked; held-out evaluation, alignment and decoding never are. The
random numbers come from torch's global generator, whose state the training engine checkpoints,
so a resumed run draws the same masks as an uninterrupted one.
"""

from dataclasses import dataclass

import torch

from hybrid_asr.bounds import bounded, check_bounds


@dataclass(frozen=True)
class SpecAugmentConfig:
    """How many bands to mask and how wide they may be.

    Attributes:
        freq_masks: frequency bands per example (0: none).
        freq_width: largest band width in feature bins; each band's width is uniform in
            ``[0, freq_width]`` and its start uniform over the bins where it fits.
        time_masks: time bands per example (0: none).
        time_width: largest band width in input frames (10 ms each for the default front end).
    """

    freq_masks: int = bounded(0, ge=0)
    freq_width: int = bounded(0, ge=0)
    time_masks: int = bounded(0, ge=0)
    time_width: int = bounded(0, ge=0)

    def __post_init__(self) -> None:
        check_bounds(self)

    @property
    def active(self) -> bool:
        """Whether any band can be masked."""
        return (self.freq_masks > 0 and self.freq_width > 0) or (self.time_masks > 0 and self.time_width > 0)


def _bands(batch: int, size: int, count: int, width: int) -> torch.Tensor:
    """``bool [batch, size]``: True inside any of ``count`` random bands of width ``<= width``."""
    positions = torch.arange(size)
    inside = torch.zeros(batch, size, dtype=torch.bool)
    width = min(width, size)
    for _ in range(count):
        w = torch.randint(0, width + 1, (batch, 1))
        start = (torch.rand(batch, 1) * (size - w + 1).to(torch.float32)).long()
        inside |= (positions >= start) & (positions < start + w)
    return inside


def spec_augment(x: torch.Tensor, config: SpecAugmentConfig) -> torch.Tensor:
    """Zero random frequency bands and time bands of each example.

    Args:
        x: ``float [B, T, F]`` normalized features of a training batch.
        config: the masks.

    Returns:
        ``float [B, T, F]``, a new tensor (``x`` is not changed); ``x`` itself when
        ``config`` masks nothing.
    """
    if not config.active:
        return x
    batch, frames, bins = x.shape
    keep = torch.ones(batch, frames, bins, dtype=torch.bool)
    if config.freq_masks and config.freq_width:
        keep &= ~_bands(batch, bins, config.freq_masks, config.freq_width)[:, None, :]
    if config.time_masks and config.time_width:
        keep &= ~_bands(batch, frames, config.time_masks, config.time_width)[:, :, None]
    return x * keep.to(x.device, x.dtype)
