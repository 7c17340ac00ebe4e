"""Inpainting as a correction of a classical fill: the network changes only the missing pixels, starting from zero."""
from __future__ import annotations

import torch
from torch import nn

from utils.models.sr import zero_init_


class FillCorrector(nn.Module):
    """Output = fill + mask * network(input): a network corrects a classical fill inside the holes.

    Input (N, 4, H, W): the fill (3 channels) and the mask (1 = missing). The network sees both (4 input channels),
    or with `use_mask=False` the fill alone (3). Its last layer, `head`, starts at zero, so that before training
    the output is the fill itself; known pixels always pass through unchanged.
    """

    def __init__(self, network: nn.Module, use_mask: bool = True) -> None:
        super().__init__()
        self.network, self.use_mask = network, use_mask
        zero_init_(network.head)  # start at the classical fill, a strong baseline, and learn only what it misses

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 4, H, W) fill + mask -> (N, 3, H, W) filled image."""
        if x.dim() != 4 or x.shape[1] != 4:
            raise ValueError(f"FillCorrector expects (N, 4, H, W): the fill and the mask, got {tuple(x.shape)}")
        fill, mask = x[:, :3], x[:, 3:]
        correction = self.network(x if self.use_mask else fill)
        return fill + mask * correction  # composite: only the missing pixels change


def hole_l1_loss(output: torch.Tensor, target_and_mask: torch.Tensor) -> torch.Tensor:
    """Absolute error averaged over the missing pixels only; the target carries the mask as a 4th channel."""
    # Known pixels are copied back by the composite, so their error is always 0; averaging over them as well
    # would only shrink the gradient by the fraction of the image that is missing.
    target, mask = target_and_mask[:, :3], target_and_mask[:, 3:]
    return ((output - target).abs() * mask).sum() / (3 * mask.sum()).clamp_min(1)
