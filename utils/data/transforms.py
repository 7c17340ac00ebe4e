"""Tensors and augmentation shared by every image dataset of the course, and the ImageNet statistics."""
from __future__ import annotations

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

ImageSize = int | tuple[int, int]

# The per-channel mean and standard deviation of ImageNet's training images (RGB, values in [0, 1]).
# Networks pretrained on ImageNet (VGG16, and U^2-Net's official preprocessing) expect inputs normalised with them.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def imagenet_normalise(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) images in [0, 1] -> ImageNet-normalised (subtract the mean, divide by the std per channel)."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def u2net_normalise(images: torch.Tensor) -> torch.Tensor:
    """U^2-Net's official input scaling of (N, 3, H, W) images: divide each by its own maximum, then ImageNet-normalise."""
    # Dividing by the image's own max (not by 255 or 1) is what the official code does; an all-black
    # image would divide by zero, so its peak is taken as 1 and it stays at zero before normalising.
    peak = images.amax(dim=(1, 2, 3), keepdim=True)
    peak = torch.where(peak > 0, peak, torch.ones_like(peak))
    return imagenet_normalise(images / peak)


def as_height_width(image_size: ImageSize) -> tuple[int, int]:
    """Turn 128 or (96, 128) into (height, width), checking the numbers are usable."""
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(size) != 2 or not all(isinstance(s, int) and s >= 8 for s in size):
        raise ValueError(f"image_size must be an int or (height, width) of ints >= 8, got {image_size!r}")
    return size


def build_transform(image_size: ImageSize, augment: bool) -> v2.Transform:
    """Resize (and optionally augment) an image together with its mask; masks always resize nearest-neighbour."""
    size = list(as_height_width(image_size))
    if not augment:
        return v2.Resize(size, antialias=True)
    # Wrapping the pair as tv_tensors.Image / tv_tensors.Mask is what keeps them aligned: geometric
    # transforms move both the same way, Mask is resized with nearest neighbour (stays 0/1), and
    # colour jitter leaves the Mask alone.
    return v2.Compose([
        v2.RandomResizedCrop(size, scale=(0.5, 1.0), ratio=(0.75, 4 / 3), antialias=True),
        v2.RandomHorizontalFlip(p=0.5),
        v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.03),
    ])


def to_tensors(image: np.ndarray, mask: np.ndarray, transform: v2.Transform) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 image (H, W, 3) and {0, 1} mask (H, W) -> transformed float tensors (3, h, w) and (1, h, w)."""
    # torch wants contiguous, writable memory; arrays straight from PIL are read-only.
    image = np.require(image, np.uint8, ["C", "W"])
    mask = np.require(mask, np.uint8, ["C", "W"])
    image_tv = tv_tensors.Image(torch.from_numpy(image).permute(2, 0, 1))
    mask_tv = tv_tensors.Mask(torch.from_numpy(mask)[None])
    image_tv, mask_tv = transform(image_tv, mask_tv)
    # Plain tensors out: students should not meet tv_tensor subclasses in their training loop.
    image_out = image_tv.as_subclass(torch.Tensor).float().div_(255)
    mask_out = mask_tv.as_subclass(torch.Tensor).float()
    return image_out, mask_out
