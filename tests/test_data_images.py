"""Reading images and masks (utils.data.images): every mask encoding, EXIF rotation, header sizes, fast listing.

Fixtures are generated here: a person-like blob saved as 0/1 and 0/255 PNG, as JPEG (0/1 and 0/255), as palette.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from utils.data.images import image_size, list_images, load_mask, load_rgb


def blob(height: int = 48, width: int = 40, seed: int = 0) -> np.ndarray:
    """A 0/1 mask: an ellipse (a 'body') and a disc (a 'head'), off centre, different per seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:height, :width]
    cy, cx = rng.uniform(0.45, 0.6) * height, rng.uniform(0.35, 0.65) * width
    body = ((y - cy) / (0.3 * height)) ** 2 + ((x - cx) / (0.2 * width)) ** 2 < 1
    head = (y - cy + 0.4 * height) ** 2 + (x - cx) ** 2 < (0.12 * width) ** 2
    return (body | head).astype(np.uint8)


@pytest.mark.parametrize("scale, suffix, quality", [
    (1, ".png", None), (255, ".png", None), (1, ".jpg", 95), (1, ".jpg", 75),
    (255, ".jpg", 95), (255, ".jpg", 75), (255, ".jpg", 30),
    # (1, ".jpg", 30) is left out: at that quality the encoder itself rounds a 0/1 mask to all zeros.
])
def test_mask_scales_and_compression_load_as_the_truth(tmp_path: Path, scale: int, suffix: str, quality) -> None:
    # A 0/1 mask has one grey level of contrast, so JPEG at 75 moves ~8 % of its pixels (measured on these
    # fixtures at the best possible cut, 0.5); 8-bit masks lose at most a few edge pixels.
    bound = 1.0 if suffix == ".png" else (0.97 if scale == 255 or quality >= 95 else 0.88)
    failures = 0
    for seed in range(10):
        truth = blob(seed=seed)
        path = tmp_path / f"m{seed}{suffix}"
        Image.fromarray(truth * scale).save(path, **({"quality": quality} if quality else {}))
        mask = load_mask(path)
        assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1}
        agreement = (mask == truth).mean()
        failures += agreement < bound
    assert failures == 0, f"{failures} of 10 masks ({scale=}, {suffix}, {quality=}) load wrong"


def test_jpeg_01_mask_is_not_all_background(tmp_path: Path) -> None:
    """The silent failure of issue 18: JPEG ringing lifts a 0/1 mask's maximum to 2, and a 127.5 cut empties it."""
    truth = blob()
    Image.fromarray(truth).save(tmp_path / "m.jpg", quality=95)
    stored = np.asarray(Image.open(tmp_path / "m.jpg"))
    assert stored.max() > 1  # the trap is real in this fixture
    assert load_mask(tmp_path / "m.jpg").sum() > 0.9 * truth.sum()


@pytest.mark.parametrize("person_index, colour", [(1, (255, 255, 255)), (15, (192, 128, 128)), (1, (1, 1, 1))])
def test_palette_masks_foreground_is_every_non_black_colour(tmp_path: Path, person_index: int, colour) -> None:
    truth = blob()
    mask = Image.fromarray(truth * person_index, mode="L").convert("P")
    palette = [0, 0, 0] * 256
    palette[3 * person_index:3 * person_index + 3] = colour
    mask.putpalette(palette)
    mask.save(tmp_path / "m.png")
    assert Image.open(tmp_path / "m.png").mode == "P"
    assert (load_mask(tmp_path / "m.png") == truth).all()


def test_explicit_threshold_still_wins(tmp_path: Path) -> None:
    Image.fromarray(np.array([[0, 100, 200]], dtype=np.uint8)).save(tmp_path / "m.png")
    assert load_mask(tmp_path / "m.png", threshold=150).tolist() == [[0, 0, 1]]


def _exif_rotated(path: Path, upright: np.ndarray, orientation: int) -> None:
    """Store `upright` the way a phone does: pixels turned, plus an EXIF tag saying how to turn them back."""
    stored = {6: np.rot90(upright, 1), 8: np.rot90(upright, -1), 3: np.rot90(upright, 2)}[orientation]
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(np.ascontiguousarray(stored)).save(path, exif=exif, quality=95)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_rotated_photo_loads_upright(tmp_path: Path, orientation: int) -> None:
    upright = np.zeros((30, 50, 3), dtype=np.uint8)
    upright[:10, :, 0] = 255  # red band along the top
    path = tmp_path / "phone.jpg"
    _exif_rotated(path, upright, orientation)
    image = load_rgb(path)
    assert image.shape == (30, 50, 3)
    assert image[:8, :, 0].mean() > 200 and image[-8:, :, 0].mean() < 50
    assert image_size(path) == (50, 30)  # (width, height) as shown, from the header


def test_image_size_reads_only_the_header(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.fromarray(np.zeros((300, 200, 3), dtype=np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[:200])  # pixels cut off: decoding would fail, the header is intact
    assert image_size(path) == (200, 300)
    with pytest.raises(ValueError, match="big.png"):
        load_rgb(path)


def test_list_images_is_sorted_filtered_and_fast(tmp_path: Path) -> None:
    for i in range(2000):
        (tmp_path / f"{i:05d}.jpg").touch()
    (tmp_path / "notes.txt").touch()
    (tmp_path / "sub.png").mkdir()  # a folder named like an image is not an image
    start = time.perf_counter()
    files = list_images(tmp_path)
    seconds = time.perf_counter() - start
    assert len(files) == 2000 and files[0].name == "00000.jpg" and files == sorted(files)
    print(f"listed 2,000 files in {seconds * 1e3:.1f} ms")  # measured in benchmarks/data.py, not asserted
