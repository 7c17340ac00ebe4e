"""Tests for background_removal/recipe.py: rembg's pre- and post-processing, image reading and the cut-out."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from background_removal import recipe
from benchmarks.background_removal import rembg_finish, rembg_normalize
from utils.data.images import IMAGE_SUFFIXES
from utils.data.transforms import IMAGENET_MEAN, IMAGENET_STD


def test_suffixes_are_the_course_loaders():
    assert recipe.IMAGE_SUFFIXES == IMAGE_SUFFIXES


def test_prepare_is_rembgs_normalize_to_the_bit():
    image = np.random.default_rng(0).integers(0, 200, size=(37, 53, 3), dtype=np.uint8)  # max 199, not 255
    expected = rembg_normalize(Image.fromarray(image), 64)
    np.testing.assert_array_equal(recipe.prepare(image, 64)[None], expected)
    np.testing.assert_array_equal(recipe.prepare_batch([image, image], 64), np.concatenate([expected, expected]))


def test_finish_is_rembgs_mask_to_the_bit():
    pred = np.random.default_rng(1).random((1, 1, 32, 32), dtype=np.float32) * 0.3 + 0.2
    for height, width in ((32, 32), (45, 29), (17, 70)):
        levels = recipe.mask_levels(recipe.finish(pred, (height, width)))
        np.testing.assert_array_equal(levels, np.asarray(rembg_finish(pred[:, 0], (width, height))))


def test_black_image_and_constant_map_stay_finite():
    x = recipe.prepare(np.zeros((5, 7, 3), dtype=np.uint8), 32)
    assert np.isfinite(x).all()
    np.testing.assert_allclose(x[:, 0, 0], -np.array(IMAGENET_MEAN) / np.array(IMAGENET_STD), atol=1e-6)
    assert np.isfinite(recipe.finish(np.full((8, 8), 0.5, np.float32), (4, 4))).all()


def test_rgba_files_keep_their_alpha_and_the_network_sees_the_colours(tmp_path):
    rgba = np.zeros((6, 8, 4), dtype=np.uint8)
    rgba[..., 0] = 200  # red under every pixel, transparent or not (rembg's convert("RGB") keeps it)
    rgba[:3, :, 3] = 255
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    rgb, alpha = recipe.read_image(tmp_path / "a.png")
    np.testing.assert_array_equal(rgb, rgba[..., :3])
    np.testing.assert_array_equal(alpha, rgba[..., 3])

    cut = recipe.cutout(rgb, np.full((6, 8), 0.5, np.float32), alpha)
    np.testing.assert_array_equal(cut[..., :3], rgb)  # straight alpha: colours are not darkened
    assert set(np.unique(cut[:3, :, 3])) == {128} and set(np.unique(cut[3:, :, 3])) == {0}

    Image.fromarray(rgba[..., :3]).save(tmp_path / "b.jpg")
    assert recipe.read_image(tmp_path / "b.jpg")[1] is None


def test_cutout_threshold_and_unreadable_files(tmp_path):
    rgb = np.full((2, 2, 3), 9, np.uint8)
    hard = recipe.cutout(rgb, np.array([[0.2, 0.5], [0.7, 1.0]], np.float32), threshold=0.5)
    np.testing.assert_array_equal(hard[..., 3], [[0, 255], [255, 255]])
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot read image"):
        recipe.read_image(tmp_path / "bad.png")
    with pytest.raises(FileNotFoundError):
        recipe.read_image(tmp_path / "missing.png")
