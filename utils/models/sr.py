"""Super-resolution models: learned upsampling inside the network, and residual learning around a UNet.

The course reference enlarges the photo first (bilinear) and lets a UNet sharpen it at full size.

* ``PixelShuffleUNet`` does the opposite, as ESPCN (Shi et al., 2016) proposed: every convolution runs on the
  small image, and only the last layer makes ``scale**2`` values per pixel and output channel, which
  ``PixelShuffle`` rearranges into a ``scale x scale`` block of the large image. Convolutions on a grid
  ``scale**2`` times smaller cost ``scale**2`` times less.
* ``ResidualSR`` wraps a same-size model so that it predicts only what interpolation missed, as VDSR
  (Kim et al., 2016) does: output = enlarged input + correction.

    model = PixelShuffleUNet(3, 3, scale=4, base_channels=16, residual=True)   # input: the small image
    model = PixelShuffleUNet(3, 3, scale=4, residual=True, base="bicubic")     # start from bicubic instead
    model = ResidualSR(UNet(3, 3, base_channels=16))                           # input: the enlarged image
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from utils.models.common import check_image_batch
from utils.models.unet import UNet, make_activation

__all__ = ["PixelShuffleUNet", "ResidualSR", "zero_init_"]


def zero_init_(layer: nn.Conv2d) -> nn.Conv2d:
    """Set a layer's weights and bias to zero, so that a residual model starts as plain interpolation."""
    nn.init.zeros_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


class PixelShuffleUNet(nn.Module):
    """The course UNet run on the small image; its head makes scale² channels per colour for a pixel shuffle."""

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        scale: int = 4,
        base_channels: int = 64,
        depth: int = 3,
        skip: bool = True,
        final_activation: str | None = "tanh",
        residual: bool = False,
        base: str = "bilinear",
    ) -> None:
        super().__init__()
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise ValueError(f"scale must be a positive integer, got {scale!r}")
        activation = make_activation(final_activation)
        if base not in ("bilinear", "bicubic"):
            raise ValueError(f"base must be 'bilinear' or 'bicubic', got {base!r}")
        if residual and in_channels != out_channels:
            raise ValueError(f"residual=True adds the input to the output, so in_channels ({in_channels}) "
                             f"must equal out_channels ({out_channels})")
        self.in_channels, self.out_channels, self.scale, self.residual = in_channels, out_channels, scale, residual
        self.base = base  # the interpolation a residual model starts from and corrects
        # The UNet's own 1x1 head becomes the sub-pixel layer. The activation comes after the shuffle, so the
        # output range is the same as a resize-then-UNet model's.
        self.unet = UNet(in_channels, out_channels * scale**2, base_channels, depth, skip, "bilinear", None)
        self.shuffle = nn.PixelShuffle(scale)
        self.activation = activation
        if residual:
            zero_init_(self.unet.head)  # start exactly at the interpolation, then learn the missing detail

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, in_channels, h, w) to (N, out_channels, scale * h, scale * w)."""
        check_image_batch(x, self.in_channels, "PixelShuffleUNet")
        out = self.activation(self.shuffle(self.unet(x)))
        if self.residual:
            out = out + F.interpolate(x, scale_factor=self.scale, mode=self.base, align_corners=False)
        return out


class ResidualSR(nn.Module):
    """Wrap a same-size model so that it predicts only the correction to its (already enlarged) input."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return x + model(x): the wrapped model starts from the interpolated image, not from nothing."""
        return x + self.model(x)
