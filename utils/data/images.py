"""Reading images and masks from disk with clear errors: shared by every dataset in the course."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def list_images(folder: str | Path) -> list[Path]:
    """Sorted image files directly inside `folder`; raises if the folder is missing or holds none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(
            f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder: {folder}"
        )
    return files


def _open_fully(path: Path) -> Image.Image:
    """Open and decode the whole file now, so a truncated file fails here and not mid-training."""
    try:
        with Image.open(path) as img:
            img.load()
            return img.copy()
    except FileNotFoundError:
        raise FileNotFoundError(f"image file not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"cannot read image file {path}: {err}") from err


def load_rgb(path: str | Path) -> np.ndarray:
    """Load any image (grayscale, RGBA, palette, ...) as an RGB uint8 array of shape (H, W, 3)."""
    img = _open_fully(Path(path))
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        # Composite on white: dropping alpha would reveal whatever colour hides under transparent pixels.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def load_mask(path: str | Path, threshold: float | None = None) -> np.ndarray:
    """Load a mask stored as 0/1, 0/255 or noisy JPEG as a uint8 array of {0, 1}, shape (H, W).

    Values above `threshold` count as foreground. By default the threshold adapts to the file:
    a mask whose maximum is 1 is already binary; otherwise we cut at half the 8-bit range, which also
    cleans JPEG ringing around the edges.
    """
    img = _open_fully(Path(path))
    # A palette mask stores class indices; converting it to grey would map them through arbitrary colours.
    values = np.asarray(img if img.mode == "P" else img.convert("L"), dtype=np.uint8)
    if threshold is None:
        threshold = 0.5 if values.max() <= 1 else 127.5
    return (values > threshold).astype(np.uint8)
