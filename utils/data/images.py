"""Reading images and masks from disk with clear errors: shared by every dataset in the course."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def list_images(folder: str | Path) -> list[Path]:
    """Sorted image files directly inside `folder`; raises if the folder is missing or holds none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    # os.scandir reads each entry's type with the name: 64k files list in ~0.1 s, where Path.iterdir + is_file
    # asks the file system once per file (~10 s, worse on network mounts such as Colab's /kaggle/input).
    with os.scandir(folder) as entries:
        files = sorted(
            Path(entry.path) for entry in entries
            if os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES and entry.is_file()
        )
    if not files:
        raise FileNotFoundError(
            f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder: {folder}"
        )
    return files


# EXIF orientations 5 to 8 turn the picture by 90 degrees: the stored width is the shown height.
_TRANSPOSING_ORIENTATIONS = {5, 6, 7, 8}
_EXIF_ORIENTATION_TAG = 0x0112


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation (1 = upright) from the header; PNG keeps EXIF after the pixels at times: not read then."""
    if img.format == "PNG" and "exif" not in img.info:
        return 1  # PIL would decode the whole picture to look further
    try:
        return int(img.getexif().get(_EXIF_ORIENTATION_TAG, 1))
    except (OSError, SyntaxError, ValueError, TypeError):
        return 1


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of an image as shown (EXIF rotation applied), read from its header without decoding pixels."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            width, height = img.size
            orientation = _orientation(img)
    except FileNotFoundError:
        raise FileNotFoundError(f"image file not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"cannot read image file {path}: {err}") from err
    return (height, width) if orientation in _TRANSPOSING_ORIENTATIONS else (width, height)


def _open_fully(path: Path) -> Image.Image:
    """Open and decode the whole file now, so a truncated file fails here and not mid-training.

    Photos from phones store "rotate me" in EXIF instead of rotating the pixels; the image is turned upright here.
    """
    try:
        with Image.open(path) as img:
            img.load()
            upright = ImageOps.exif_transpose(img)
            return upright if upright is not img else img.copy()
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
    """Load a mask stored as 0/1, 0/255, JPEG-compressed or palette as a uint8 array of {0, 1}, shape (H, W).

    Values above `threshold` count as foreground. By default the threshold follows the file's scale: masks whose
    values stay small (0/1, also after JPEG ringing has made some of them 2 or 3) are cut at 0.5, 8-bit masks
    (0/255, noisy or not) at 127.5. A palette mask (mode P) stores class indices: every colour but black is
    foreground, whatever the index numbers are.
    """
    img = _open_fully(Path(path))
    if img.mode == "P" and threshold is None:
        palette = np.asarray(img.convert("RGB"), dtype=np.uint8)
        return (palette.max(axis=2) > 0).astype(np.uint8)
    values = np.asarray(img.convert("L"), dtype=np.uint8)
    if threshold is None:
        # A 0/1 mask saved as JPEG comes back with values up to ~4; an 8-bit mask has its foreground near 255.
        threshold = 0.5 if values.max() < SMALL_SCALE_MAX else 127.5
    return (values > threshold).astype(np.uint8)


# Largest value a 0/1 mask can reach after lossy compression is a few units; anything at or above this is 8-bit.
SMALL_SCALE_MAX = 32
