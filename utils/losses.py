"""Training losses for models whose outputs are probabilities (the last layer is a sigmoid).

Why every loss here casts to float32 and switches autocast off: `F.binary_cross_entropy`
is on PyTorch's "unsafe to autocast" list. In half precision log(p) and its gradient 1/p
are badly rounded near 0 and 1, and on CUDA calling it inside an autocast region raises an
error. So the model may run in bf16/fp16, but the loss is always computed in float32.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["dice_loss", "BCEDiceLoss", "deep_supervision_loss", "fused_only_loss"]


def _check_shapes(pred: torch.Tensor, target: torch.Tensor, name: str) -> None:
    """Raise a ValueError naming both shapes when `pred` and `target` differ in shape."""
    if pred.shape != target.shape:
        raise ValueError(
            f"{name}: prediction and target must have the same shape, got prediction "
            f"{tuple(pred.shape)} and target {tuple(target.shape)}"
        )


def _bce_float32(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy computed in float32 with autocast disabled."""
    with torch.autocast(device_type=pred.device.type, enabled=False):
        return F.binary_cross_entropy(pred.float(), target.float())


def dice_loss(pred: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """1 - soft Dice per image, averaged over the batch (pred are probabilities)."""
    _check_shapes(pred, target, "dice_loss")
    # Soft Dice keeps the probabilities (no threshold), otherwise there is no gradient.
    # `smooth` is added to numerator and denominator: an image where both prediction and
    # target are empty gets loss 0 instead of 0/0, and the loss of tiny objects is less
    # jumpy. With ~100k pixels per image it barely changes the value otherwise.
    p = pred.float().flatten(1)
    t = target.float().flatten(1)
    intersection = (p * t).sum(dim=1)
    total = p.sum(dim=1) + t.sum(dim=1)
    soft_dice = (2 * intersection + smooth) / (total + smooth)
    return 1 - soft_dice.mean()


class BCEDiceLoss(nn.Module):
    """bce_weight * BCE + (1 - bce_weight) * (1 - soft Dice), for probability outputs."""

    def __init__(self, bce_weight: float = 0.5, smooth: float = 1.0) -> None:
        super().__init__()
        if not 0.0 <= bce_weight <= 1.0:
            raise ValueError(f"bce_weight must be between 0 and 1, got {bce_weight}")
        self.bce_weight = bce_weight
        self.smooth = smooth

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Weighted sum of BCE (pixel-wise accuracy) and Dice loss (overlap with the object)."""
        _check_shapes(pred, target, "BCEDiceLoss")
        bce = _bce_float32(pred, target)
        overlap = dice_loss(pred, target, smooth=self.smooth)
        return self.bce_weight * bce + (1 - self.bce_weight) * overlap

    def extra_repr(self) -> str:
        return f"bce_weight={self.bce_weight}, smooth={self.smooth}"


def _as_output_list(outputs: Sequence[torch.Tensor] | torch.Tensor) -> list[torch.Tensor]:
    """Accept the tuple a U2-Net returns (or a single tensor) as a non-empty list."""
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    outputs = list(outputs)
    if not outputs:
        raise ValueError("expected at least one model output, got an empty sequence")
    return outputs


def deep_supervision_loss(
    outputs: Sequence[torch.Tensor] | torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    """U2-Net's loss: the sum of the BCE of every output (fused d0 plus the 6 side maps).

    This is what the official U2-Net training script optimises (7 BCELoss terms added with
    equal weights). Every side map has already been upsampled to the target's size by the
    model, so each must have the target's shape. Each side output gets its own gradient
    signal, which helps the deep stages learn early in training.
    """
    outputs = _as_output_list(outputs)
    total = torch.zeros((), device=target.device, dtype=torch.float32)
    for index, output in enumerate(outputs):
        _check_shapes(output, target, f"deep_supervision_loss (output {index})")
        total = total + _bce_float32(output, target)
    return total


def fused_only_loss(
    outputs: Sequence[torch.Tensor] | torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    """BCE of the fused output d0 only: the ablation without deep supervision."""
    fused = _as_output_list(outputs)[0]
    _check_shapes(fused, target, "fused_only_loss")
    return _bce_float32(fused, target)
