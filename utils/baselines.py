"""Classical baselines that need no training: what every learned model in the course has to beat.

    denoised = tv_denoise(noisy, weight=0.08)              # 01: total-variation denoising (scikit-image)
    enlarged = bicubic(small, scale=4)                     # 04: bicubic interpolation
    filled = biharmonic_fill(painted, mask)                # 05: biharmonic inpainting (scikit-image)
    filled = diffusion_fill(painted, mask)                 # 05: a fast smooth fill in torch, for training

Every function takes and returns float batches (N, C, H, W) in the value range they were given, so a
baseline's output can be scored with the same PSNR/SSIM calls as a model's. Masks are (N, 1, H, W) with
1 marking a missing pixel.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["bicubic", "tv_denoise", "biharmonic_fill", "diffusion_fill"]


def _check_batch(images: torch.Tensor, name: str) -> None:
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise ValueError(f"{name} expects a float batch (N, C, H, W), got {getattr(images, 'shape', type(images))}")


def _check_mask(images: torch.Tensor, mask: torch.Tensor) -> None:
    _check_batch(images, "inpainting")
    if mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[0] != images.shape[0] or mask.shape[-2:] != images.shape[-2:]:
        raise ValueError(f"mask must be (N, 1, H, W) matching images {tuple(images.shape)}, got {tuple(mask.shape)}")


def bicubic(small: torch.Tensor, scale: int) -> torch.Tensor:
    """Enlarge a batch by `scale` with bicubic interpolation (the classic super-resolution baseline)."""
    _check_batch(small, "bicubic")
    return F.interpolate(small, scale_factor=scale, mode="bicubic", align_corners=False)


def _per_image(function, images: torch.Tensor, value_range: Sequence[float]) -> torch.Tensor:
    """Apply a scikit-image function to each image of a batch, on the [0, 1] scale it expects."""
    low, high = (float(v) for v in value_range)
    unit = ((images.detach().float().cpu() - low) / (high - low)).numpy()
    out = np.stack([np.moveaxis(function(np.moveaxis(image, 0, -1)), -1, 0) for image in unit])
    return torch.from_numpy(out.astype(np.float32)) * (high - low) + low


def tv_denoise(noisy: torch.Tensor, weight: float = 0.08, value_range: Sequence[float] = (-1.0, 1.0)) -> torch.Tensor:
    """Total-variation denoising (Chambolle), image by image; `weight` is on the [0, 1] scale."""
    from skimage.restoration import denoise_tv_chambolle

    _check_batch(noisy, "tv_denoise")
    return _per_image(lambda image: denoise_tv_chambolle(image, weight=weight, channel_axis=-1), noisy, value_range)


def biharmonic_fill(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """scikit-image's biharmonic inpainting, image by image: the smoothest surface that matches each hole's border.

    Known pixels come back unchanged. Takes about 0.1-1 s per 128x128 image on one core.
    """
    from skimage.restoration import inpaint_biharmonic

    _check_mask(images, mask)
    filled = [inpaint_biharmonic(image.permute(1, 2, 0).double().numpy(), hole[0].bool().numpy(), channel_axis=-1)
              for image, hole in zip(images.detach().cpu(), mask.detach().cpu())]
    return torch.stack([torch.from_numpy(image).permute(2, 0, 1).float() for image in filled])


def diffusion_fill(images: torch.Tensor, mask: torch.Tensor, iterations: int = 20) -> torch.Tensor:
    """Fill holes with a smooth guess in milliseconds, on any device: a pull-push pyramid, then heat diffusion.

    Pull: halve the image repeatedly, averaging only known pixels, until every coarse pixel has some known
    pixel below it. Push: fill each level's holes from the level below, upsampled bilinearly. Then
    `iterations` Jacobi steps of the heat equation inside the holes smooth the blocky coarse values
    (a harmonic fill is its limit). Known pixels come back unchanged. Works with gradients, so a network
    can be trained on top of it.
    """
    _check_mask(images, mask)
    known = 1.0 - mask.to(images.dtype)
    filled = _pull_push(images * known, known)
    kernel = images.new_tensor([[0.0, 0.25, 0.0], [0.25, 0.0, 0.25], [0.0, 0.25, 0.0]]).expand(images.shape[1], 1, 3, 3)
    for _ in range(iterations):
        neighbours = F.conv2d(F.pad(filled, (1, 1, 1, 1), mode="replicate"), kernel, groups=images.shape[1])
        filled = known * images + (1.0 - known) * neighbours
    return known * images + (1.0 - known) * filled


def _pull_push(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """`values` (already multiplied by `weights`) normalised where weights > 0, holes filled from coarser levels."""
    average = values / weights.clamp_min(1e-8)
    if bool((weights > 0).all()) or min(values.shape[-2:]) < 2:
        return average
    coarse = _pull_push(F.avg_pool2d(values, 2, ceil_mode=True), F.avg_pool2d(weights, 2, ceil_mode=True))
    up = F.interpolate(coarse, size=values.shape[-2:], mode="bilinear", align_corners=False)
    has_known = (weights > 0).to(values.dtype)
    return has_known * average + (1.0 - has_known) * up
