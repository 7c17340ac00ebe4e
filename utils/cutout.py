"""Background removal: from a person-probability map to an RGBA cut-out, and onto a new background."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def _as_hwc_uint8(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """(3, H, W) float tensor in [0, 1] or (H, W, 3) uint8 array to (H, W, 3) uint8."""
    if isinstance(image, torch.Tensor):
        image = image.detach().float().cpu().clamp(0, 1).permute(1, 2, 0).numpy()
        return (image * 255).round().astype(np.uint8)
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"array images must be uint8 (H, W, 3), got {image.dtype}")
    return image


def _as_hw_float(probability: torch.Tensor | np.ndarray) -> np.ndarray:
    """(1, H, W) or (H, W) probabilities to an (H, W) float array in [0, 1]."""
    if isinstance(probability, torch.Tensor):
        probability = probability.detach().float().cpu().numpy()
    probability = np.asarray(probability, dtype=np.float32)
    return np.clip(probability.reshape(probability.shape[-2:]), 0.0, 1.0)


def make_cutout(
    image: torch.Tensor | np.ndarray, probability: torch.Tensor | np.ndarray, threshold: float | None = None
) -> np.ndarray:
    """RGBA uint8 (H, W, 4): the image with alpha = probability (soft) or probability >= threshold (hard).

    A soft alpha keeps hair and blurred edges semi-transparent; a hard threshold gives crisp but jagged edges.
    """
    rgb = _as_hwc_uint8(image)
    alpha = _as_hw_float(probability)
    if alpha.shape != rgb.shape[:2]:
        raise ValueError(f"probability map {alpha.shape} and image {rgb.shape[:2]} differ in size")
    if threshold is not None:
        alpha = (alpha >= threshold).astype(np.float32)
    return np.dstack([rgb, (alpha * 255).round().astype(np.uint8)])


def composite(cutout: np.ndarray, background: torch.Tensor | np.ndarray) -> np.ndarray:
    """Alpha-blend an RGBA cut-out over a background of the same size; returns RGB uint8."""
    back = _as_hwc_uint8(background).astype(np.float32)
    if back.shape[:2] != cutout.shape[:2]:
        raise ValueError(f"background {back.shape[:2]} and cut-out {cutout.shape[:2]} differ in size")
    alpha = cutout[..., 3:4].astype(np.float32) / 255
    return (cutout[..., :3] * alpha + back * (1 - alpha)).round().astype(np.uint8)


def checkerboard(height: int, width: int, cell: int = 32, dark: int = 150, light: int = 210) -> np.ndarray:
    """A grey checkerboard (H, W, 3) uint8, the usual picture of "transparent" behind a cut-out."""
    if min(height, width, cell) < 1:
        raise ValueError(f"height, width and cell must be positive, got {height}, {width}, {cell}")
    squares = (np.indices((height, width)) // cell).sum(axis=0) % 2
    return np.repeat(np.where(squares == 1, light, dark).astype(np.uint8)[..., None], 3, axis=2)


def save_png(rgba_or_rgb: np.ndarray, path: str | Path) -> Path:
    """Write a PNG atomically (a temporary file renamed into place), creating the folder if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial")
    try:
        Image.fromarray(rgba_or_rgb).save(temporary, format="PNG")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path
