"""Small pieces shared by every model file: input checks and size matching."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def check_image_batch(x: torch.Tensor, in_channels: int, model_name: str) -> None:
    """Raise a ValueError that says what was expected when `x` is not an (N, C, H, W) float batch."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{model_name} expects a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(
            f"{model_name} expects a 4-D batch (N, C, H, W), got a {x.dim()}-D tensor of shape "
            f"{tuple(x.shape)}; for one image use x.unsqueeze(0)"
        )
    if not torch.is_floating_point(x):
        raise ValueError(
            f"{model_name} expects a floating-point tensor, got {x.dtype}; "
            "convert images with x.float() / 255 first"
        )
    if x.shape[1] != in_channels:
        raise ValueError(
            f"{model_name} was built for {in_channels} input channel(s), got {x.shape[1]} "
            f"(input shape {tuple(x.shape)})"
        )


def match_size(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Pad (or crop) `x` so that its height and width equal `size` = (H, W); odd input sizes need this."""
    dh = size[-2] - x.shape[-2]
    dw = size[-1] - x.shape[-1]
    if dh == 0 and dw == 0:
        return x
    # F.pad with negative amounts crops, so one call covers both cases.
    return F.pad(x, [dw // 2, dw - dw // 2, dh // 2, dh - dh // 2])


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters in `model` (optionally only those that require gradients)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


class ResidualDenoiser(nn.Module):
    """A denoiser that returns `noisy - model(noisy)`: the wrapped model predicts the noise (residual learning)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, noisy: torch.Tensor) -> torch.Tensor:
        """The noisy batch minus the predicted noise; the output has the input's shape."""
        # The noise is small, centred on 0 and carries no picture, an easier target than the clean image: a
        # model that outputs about 0 at the start starts as the identity, already at the noisy input's score.
        return noisy - self.model(noisy)
