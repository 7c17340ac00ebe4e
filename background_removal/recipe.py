"""rembg's U^2-Net recipe in NumPy and Pillow: image loading, pre-processing, post-processing, cut-out.

Both engines (PyTorch in ``background_removal.weights``, ONNX Runtime in ``background_removal.fast``) run
these functions, so they differ only in the network arithmetic. The recipe is rembg's ``u2net_custom``
session (rembg 2.0.86, ``sessions/base.py`` ``normalize`` and ``sessions/u2net_custom.py`` ``predict``):

* pre-processing: ``PIL.Image.convert("RGB")`` (an alpha channel is dropped, not composited), resize to
  320 x 320 with Lanczos, divide by the image's own maximum (at least 1e-6), subtract the ImageNet mean and
  divide by the ImageNet standard deviation (computed in float64, handed over as float32);
* post-processing: keep the fused map d0, stretch it to [0, 1] (min-max), resize it back to the image's
  size with Lanczos.

It is also the official test script's recipe (xuebinqin/U-2-Net ``u2net_test.py``) except for the two
resampling filters: the official script resizes the input with scikit-image (bilinear) and the mask with
Pillow's bilinear filter. We follow rembg, the tool most people run these weights with, and measure the
difference against it (README, "Background removal").

The mask is rembg's to the bit when the network's output is (``finish`` returns it as levels / 255). One
deliberate difference, in what is done with the mask:

* rembg's default cut-out (``naive_cutout``) multiplies the colours by the mask (a premultiplied image
  written to a PNG, which is read as straight alpha, so soft edges come out darker); we keep the colours
  and put the mask in the alpha channel. For an input with an alpha channel both multiply the mask by the
  input's alpha, so transparent pixels stay transparent.

Nothing here imports torch except the ImageNet constants' module (see ``_imagenet``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# rembg's u2net_custom session always feeds 320 x 320, the size the official weights were trained at.
REMBG_SIZE = 320
# Same list as utils.data.images.IMAGE_SUFFIXES (importing that package imports torch, which the command's
# --help must not wait for); tests/test_background_removal_recipe.py checks that they stay equal.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def _imagenet() -> tuple[np.ndarray, np.ndarray]:
    """ImageNet mean and std as float64 arrays (the one definition lives in utils.data.transforms)."""
    from utils.data.transforms import IMAGENET_MEAN, IMAGENET_STD

    return np.asarray(IMAGENET_MEAN, dtype=np.float64), np.asarray(IMAGENET_STD, dtype=np.float64)


def list_images(folder: Path) -> list[Path]:
    """Sorted image files directly inside `folder` (no torch import); raises FileNotFoundError if none."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder: {folder}")
    return files


def read_image(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(RGB uint8 (H, W, 3), alpha uint8 (H, W) or None) of an image file, upright as its EXIF says.

    Like rembg: EXIF orientation applied, ``convert("RGB")`` for the colours (alpha dropped, so colours
    under transparent pixels are what the network sees). Raises ValueError for a file that is not a
    readable image, FileNotFoundError for a missing one.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()  # decode now: a truncated file fails here, not halfway through the cut-out
            img = ImageOps.exif_transpose(img)
            alpha = None
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                alpha = np.asarray(img.convert("RGBA"), dtype=np.uint8)[..., 3].copy()
            rgb = np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
    except FileNotFoundError:
        raise FileNotFoundError(f"image file not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"cannot read image file {path}: {err}") from err
    return rgb, alpha


def _check_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB image of shape (H, W, 3), got {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 RGB image, got {image.dtype}")
    return image


def prepare(image: np.ndarray, size: int = REMBG_SIZE) -> np.ndarray:
    """rembg's network input for one RGB uint8 image: float32 (3, size, size)."""
    image = _check_rgb(image)
    if image.shape[:2] != (size, size):
        # Pillow returns a plain copy when the size already matches, exactly as rembg's resize does.
        image = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.LANCZOS))
    x = image / max(float(image.max()), 1e-6)  # float64, like rembg; an all-black image stays 0
    mean, std = _imagenet()
    return ((x - mean) / std).transpose(2, 0, 1).astype(np.float32)


def prepare_batch(images: list[np.ndarray], size: int = REMBG_SIZE) -> np.ndarray:
    """(N, 3, size, size) float32 network input for a list of RGB uint8 images."""
    return np.stack([prepare(image, size) for image in images])


def finish(fused_map: np.ndarray, original_hw: tuple[int, int]) -> np.ndarray:
    """rembg's mask from the fused map d0: min-max stretch, uint8 (truncated), Lanczos to (H, W).

    Returned as float32 in [0, 1] (levels / 255), so ``mask_levels`` gives back rembg's uint8 mask exactly.
    """
    pred = np.asarray(fused_map, dtype=np.float32)
    pred = pred.reshape(pred.shape[-2:])
    low, high = float(pred.min()), float(pred.max())
    # rembg divides by (max - min) unconditionally; a constant map would become NaN. It is already a
    # probability, so it is kept as it is.
    if high - low > 1e-12:
        pred = (pred - low) / (high - low)
    levels = Image.fromarray((np.clip(pred, 0.0, 1.0) * 255).astype(np.uint8), mode="L")  # truncates, as rembg
    height, width = (int(v) for v in original_hw)
    if (height, width) != pred.shape:
        levels = levels.resize((width, height), Image.Resampling.LANCZOS)  # Pillow clips the overshoot to 0..255
    return np.asarray(levels, dtype=np.float32) / 255


def mask_levels(mask: np.ndarray) -> np.ndarray:
    """A [0, 1] mask as uint8 levels 0..255 (rounded), the alpha a cut-out gets."""
    return np.rint(np.clip(np.asarray(mask, dtype=np.float32), 0.0, 1.0) * 255).astype(np.uint8)


def cutout(
    rgb: np.ndarray, mask: np.ndarray, alpha: np.ndarray | None = None, threshold: float | None = None
) -> np.ndarray:
    """RGBA uint8: the colours unchanged, alpha = mask levels (times the input's own alpha, if any).

    With `threshold`, the mask is made hard first (probability >= threshold is foreground).
    """
    rgb = _check_rgb(rgb)
    mask = np.asarray(mask, dtype=np.float32)
    if mask.shape != rgb.shape[:2]:
        raise ValueError(f"mask {mask.shape} and image {rgb.shape[:2]} differ in size")
    if threshold is not None:
        mask = (mask >= threshold).astype(np.float32)
    levels = mask_levels(mask)
    if alpha is not None:
        # As rembg: a pixel transparent in the input stays transparent in the cut-out.
        levels = ((levels.astype(np.uint16) * alpha + 127) // 255).astype(np.uint8)
    return np.dstack([rgb, levels])
