"""Tests for utils/data/natural.py and utils/data/masks.py: photo sources, super-resolution pairs, masks."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.measure import label

from utils.data import kaggle
from utils.data.masks import InpaintingDataset, free_form_mask, random_mask, rectangle_mask, stroke_mask
from utils.data.natural import (
    SKIMAGE_HELDOUT_PHOTOS,
    SKIMAGE_TRAIN_PHOTOS,
    PhotoCrops,
    SuperResolutionDataset,
    downscale,
    from_unit,
    get_natural_images,
    to_unit,
    upscale,
)


@pytest.fixture(autouse=True)
def no_network(monkeypatch, tmp_path):
    """Every test runs offline with an empty kagglehub cache, so a real DIV2K download is never picked up."""
    monkeypatch.setenv("UNET_COURSE_OFFLINE", "1")
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "kagglehub_cache"))


@pytest.fixture(scope="module")
def skimage_photos() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The scikit-image train and held-out photos, loaded once for the whole file."""
    train, val, _ = get_natural_images("skimage", verbose=False)
    return train, val


def _save(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    """Write `array` as an image file, creating folders as needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path)
    return path


def _random_rgb(rng: np.random.Generator, height: int = 40, width: int = 48) -> np.ndarray:
    return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


# ---------------------------------------------------------------------------------------------- sources


def test_offline_auto_uses_skimage_with_disjoint_photos(capsys):
    train, val, info = get_natural_images("auto")
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and "scikit-image" in printed[0] and "UNET_COURSE_OFFLINE" in printed[0]
    assert info["source"] == "skimage"
    assert info["train_names"] == list(SKIMAGE_TRAIN_PHOTOS)
    assert info["val_names"] == list(SKIMAGE_HELDOUT_PHOTOS)
    assert not set(info["train_names"]) & set(info["val_names"])
    assert len(train) == len(SKIMAGE_TRAIN_PHOTOS) and len(val) == len(SKIMAGE_HELDOUT_PHOTOS)
    for photo in train + val:
        assert photo.dtype == np.uint8 and photo.ndim == 3 and photo.shape[2] == 3
    # Disjoint by content too, not only by name.
    for held_out in val:
        assert not any(held_out.shape == seen.shape and np.array_equal(held_out, seen) for seen in train)


def test_folder_source_converts_gray_and_rgba_and_splits(tmp_path, capsys):
    rng = np.random.default_rng(0)
    folder = tmp_path / "photos"
    _save(folder / "a_colour.jpg", _random_rgb(rng))
    _save(folder / "b_gray.png", rng.integers(0, 256, size=(40, 48), dtype=np.uint8))
    rgba = np.dstack([_random_rgb(rng), np.full((40, 48), 255, dtype=np.uint8)])
    rgba[:5, :5, 3] = 0  # a transparent corner
    _save(folder / "c_rgba.png", rgba)
    _save(folder / "d_colour.png", _random_rgb(rng))
    (folder / "notes.txt").write_text("not an image")

    train, val, info = get_natural_images(folder)
    assert len(capsys.readouterr().out.strip().splitlines()) == 1
    assert info["source"] == "folder"
    assert len(train) == 3 and len(val) == 1 and not set(train) & set(val)
    crops = PhotoCrops(train + val, crop_size=32, train=False, crops_per_image=1)
    for index in range(len(crops)):
        crop = crops[index]
        assert crop.dtype == np.uint8 and crop.shape == (32, 32, 3)
    gray = crops.photo([p.name for p in crops.images].index("b_gray.png"))
    assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 1], gray[..., 2])
    assert crops.photo([p.name for p in crops.images].index("c_rgba.png")).shape == (40, 48, 3)


def test_folder_with_train_and_val_subfolders_keeps_that_split(tmp_path):
    rng = np.random.default_rng(1)
    for name in ("train/x1.png", "train/x2.png", "val/y1.png"):
        _save(tmp_path / name, _random_rgb(rng))
    train, val, info = get_natural_images(tmp_path, verbose=False)
    assert [p.name for p in train] == ["x1.png", "x2.png"] and [p.name for p in val] == ["y1.png"]


def test_missing_and_empty_folders_name_the_folder(tmp_path):
    missing = tmp_path / "does_not_exist"
    with pytest.raises(FileNotFoundError, match="does_not_exist"):
        get_natural_images(missing, verbose=False)
    empty = tmp_path / "empty_folder"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    with pytest.raises(FileNotFoundError, match="empty_folder"):
        get_natural_images(empty, verbose=False)


@pytest.fixture
def div2k_folder(tmp_path) -> Path:
    """A tiny folder laid out like the Kaggle download: DIV2K_train_HR/DIV2K_train_HR/0001.png and so on."""
    rng = np.random.default_rng(2)
    root = tmp_path / "div2k" / "versions" / "1"
    for number in (1, 2, 3):
        _save(root / "DIV2K_train_HR" / "DIV2K_train_HR" / f"{number:04d}.png", _random_rgb(rng, 64, 80))
    _save(root / "DIV2K_valid_HR" / "DIV2K_valid_HR" / "0801.png", _random_rgb(rng, 64, 80))
    # Ready-made low-resolution copies, as some uploads carry, must not count as training photos.
    _save(root / "DIV2K_train_LR_bicubic" / "X4" / "0001x4.png", _random_rgb(rng, 16, 20))
    return root


def test_div2k_folder_layout_gives_its_train_valid_split(div2k_folder):
    train, val, info = get_natural_images(div2k_folder, verbose=False)
    assert info["source"] == "div2k"
    assert [p.name for p in train] == ["0001.png", "0002.png", "0003.png"]
    assert [p.name for p in val] == ["0801.png"]


def test_div2k_through_kagglehub(monkeypatch, div2k_folder):
    kagglehub = pytest.importorskip("kagglehub")
    monkeypatch.delenv("UNET_COURSE_OFFLINE")
    monkeypatch.setattr(kaggle, "kaggle_reachable", lambda *args, **kwargs: True)
    monkeypatch.setattr(kagglehub, "dataset_download", lambda handle, *args, **kwargs: str(div2k_folder))
    train, val, info = get_natural_images("div2k", verbose=False)
    assert info["source"] == "div2k" and len(train) == 3 and len(val) == 1


def test_div2k_falls_back_to_skimage_in_one_line_when_kagglehub_fails(monkeypatch, capsys):
    kagglehub = pytest.importorskip("kagglehub")

    def broken_download(handle, *args, **kwargs):
        raise ConnectionError("no route to host")

    monkeypatch.delenv("UNET_COURSE_OFFLINE")
    monkeypatch.setattr(kaggle, "kaggle_reachable", lambda *args, **kwargs: True)
    monkeypatch.setattr(kagglehub, "dataset_download", broken_download)
    train, val, info = get_natural_images("div2k")
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1
    assert "DIV2K not available" in printed[0] and "ConnectionError" in printed[0]
    assert info["source"] == "skimage" and len(train) == len(SKIMAGE_TRAIN_PHOTOS)


# ------------------------------------------------------------------------------------- super-resolution


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("mode", ["reference", "lowres"])
def test_sr_pair_shapes(skimage_photos, scale, mode):
    train, _ = skimage_photos
    inputs, target = SuperResolutionDataset(train, crop_size=64, scale=scale, mode=mode, samples_per_epoch=5)[0]
    assert target.shape == (3, 64, 64) and target.dtype == torch.float32
    expected = 64 if mode == "reference" else 64 // scale
    assert inputs.shape == (3, expected, expected)


@pytest.mark.parametrize("value_range", [(-1.0, 1.0), (0.0, 1.0)])
def test_sr_value_ranges(skimage_photos, value_range):
    train, _ = skimage_photos
    dataset = SuperResolutionDataset(train, crop_size=64, value_range=value_range, samples_per_epoch=8)
    for index in range(len(dataset)):
        for tensor in dataset[index]:
            assert value_range[0] <= tensor.min() and tensor.max() <= value_range[1]
    low, high = value_range
    x = torch.linspace(low, high, 11)
    assert torch.allclose(to_unit(x, value_range), torch.linspace(0, 1, 11))
    assert torch.allclose(from_unit(to_unit(x, value_range), value_range), x, atol=1e-6)
    with pytest.raises(ValueError, match="value_range"):
        to_unit(x, (0, 255))


def test_bicubic_antialias_downscale_keeps_constants_and_removes_aliasing():
    constant = torch.full((3, 64, 64), 0.3)
    for scale in (2, 4):
        assert torch.allclose(downscale(constant, scale), torch.full((3, 64 // scale, 64 // scale), 0.3), atol=1e-6)
        assert torch.allclose(upscale(downscale(constant, scale), scale), constant, atol=1e-6)
    # A one-pixel checkerboard has no detail that survives halving: antialiasing must give flat grey.
    ys, xs = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    checkerboard = ((ys + xs) % 2).float().expand(3, 64, 64)
    small = downscale(checkerboard, 2)
    assert torch.allclose(small[:, 4:-4, 4:-4], torch.full_like(small[:, 4:-4, 4:-4], 0.5), atol=1e-4)


def test_sr_validation_crops_fixed_and_training_crops_random(skimage_photos):
    train, val = skimage_photos
    val_set = SuperResolutionDataset(val, crop_size=64, train=False, crops_per_image=3, seed=7)
    again = SuperResolutionDataset(val, crop_size=64, train=False, crops_per_image=3, seed=7)
    assert len(val_set) == 3 * len(val)
    for index in range(len(val_set)):
        assert torch.equal(val_set[index][1], val_set[index][1])
        assert torch.equal(val_set[index][1], again[index][1])
    assert not torch.equal(val_set[0][1], val_set[1][1])

    train_set = SuperResolutionDataset(train, crop_size=64, samples_per_epoch=4)
    assert not torch.equal(train_set[0][1], train_set[0][1])
    torch.manual_seed(3)
    first = train_set[0][1]
    torch.manual_seed(3)
    assert torch.equal(first, train_set[0][1])


def test_sr_input_checks(skimage_photos, tmp_path):
    train, val = skimage_photos
    with pytest.raises(ValueError, match="scale must be 2 or 4"):
        SuperResolutionDataset(train, crop_size=64, scale=3)
    with pytest.raises(ValueError, match="divisible"):
        SuperResolutionDataset(train, crop_size=66, scale=4)
    with pytest.raises(ValueError, match="mode"):
        SuperResolutionDataset(train, crop_size=64, mode="highres")
    # chelsea is 300 x 451: a 320 crop cannot fit, and the message says both sizes.
    with pytest.raises(ValueError, match=r"300x451.*320x320"):
        SuperResolutionDataset(val, crop_size=320)
    # Files that are too small are skipped with a warning instead.
    rng = np.random.default_rng(4)
    big = _save(tmp_path / "big.png", _random_rgb(rng, 80, 80))
    small = _save(tmp_path / "small.png", _random_rgb(rng, 30, 30))
    with pytest.warns(UserWarning, match="small.png"):
        dataset = SuperResolutionDataset([big, small], crop_size=64)
    assert dataset.images == [big]


# ---------------------------------------------------------------------------------------------- masks


@pytest.mark.parametrize("make", [stroke_mask, rectangle_mask, free_form_mask])
def test_masks_are_binary_and_repeatable(make):
    mask = make(64, 80, np.random.default_rng(5))
    assert mask.shape == (64, 80) and mask.dtype == np.uint8
    assert set(np.unique(mask)) <= {0, 1} and mask.any()
    assert np.array_equal(mask, make(64, 80, np.random.default_rng(5)))
    assert not np.array_equal(mask, make(64, 80, np.random.default_rng(6)))


def test_stroke_count_and_thickness_bounds():
    for seed in range(20):
        thin = stroke_mask(96, 96, np.random.default_rng(seed), min_thickness=1, max_thickness=1)
        thick = stroke_mask(96, 96, np.random.default_rng(seed), min_thickness=14, max_thickness=14)
        # Same seed, same lines: the thick strokes cover the thin ones and more.
        assert np.all(thick >= thin) and thick.sum() > thin.sum()
        # At most 4 straight lines, of at most 14 pixels width plus round ends.
        longest = np.hypot(96, 96)
        assert thick.sum() <= 4 * (longest * 14 + np.pi * 7**2)
        assert 1 <= label(thin, connectivity=2).max() <= 4
        single = stroke_mask(96, 96, np.random.default_rng(seed), max_strokes=1, max_thickness=1)
        assert label(single, connectivity=2).max() == 1 and single.sum() <= 2 * 96
    with pytest.raises(ValueError, match="thickness"):
        stroke_mask(32, 32, np.random.default_rng(0), min_thickness=5, max_thickness=2)


def test_free_form_and_rectangle_shapes():
    for seed in range(10):
        stroke = free_form_mask(96, 96, np.random.default_rng(seed), max_strokes=1)
        assert label(stroke, connectivity=2).max() == 1  # one brush stroke is one connected blob
        box = rectangle_mask(100, 100, np.random.default_rng(seed), max_rectangles=1)
        rows, cols = np.nonzero(box.any(axis=1))[0], np.nonzero(box.any(axis=0))[0]
        height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert box.sum() == height * width and 10 <= height <= 40 and 10 <= width <= 40
    kinds = {random_mask("mixed", 48, 48, np.random.default_rng(seed)).sum() for seed in range(6)}
    assert len(kinds) > 1


# ----------------------------------------------------------------------------------------- inpainting


@pytest.mark.parametrize("value_range", [(-1.0, 1.0), (0.0, 1.0)])
@pytest.mark.parametrize("kind", ["strokes", "rectangles", "free_form", "mixed"])
def test_inpainting_painting_and_mask_channel(skimage_photos, value_range, kind):
    train, _ = skimage_photos
    three = InpaintingDataset(train, 64, kind, input_channels=3, value_range=value_range, train=False)
    four = InpaintingDataset(train, 64, kind, input_channels=4, value_range=value_range, train=False)
    inputs, target, mask = three[0]
    assert inputs.shape == target.shape == (3, 64, 64) and mask.shape == (1, 64, 64)
    holes = mask[0].bool()
    assert holes.any() and set(mask.unique().tolist()) <= {0.0, 1.0}
    assert torch.all(inputs[:, holes] == value_range[1])  # painted white, the top of the range
    assert torch.equal(inputs[:, ~holes], target[:, ~holes])
    assert value_range[0] <= target.min() and target.max() <= value_range[1]
    inputs4, target4, mask4 = four[0]
    assert inputs4.shape == (4, 64, 64)
    assert torch.equal(inputs4[3], mask4[0]) and torch.equal(inputs4[:3], inputs)
    assert torch.equal(target4, target) and torch.equal(mask4, mask)


def test_inpainting_validation_fixed_training_redraws(skimage_photos):
    train, val = skimage_photos
    val_set = InpaintingDataset(val, 64, "strokes", train=False, seed=1)
    again = InpaintingDataset(val, 64, "strokes", train=False, seed=1)
    for index in range(len(val_set)):
        for a, b in zip(val_set[index], again[index]):
            assert torch.equal(a, b)
    train_set = InpaintingDataset(train, 64, "strokes", samples_per_epoch=3)
    assert not torch.equal(train_set[0][2], train_set[0][2])


def test_inpainting_fixed_thickness(skimage_photos):
    _, val = skimage_photos
    areas = []
    for thickness in (2, 12):
        dataset = InpaintingDataset(val, 64, "strokes", train=False, thickness=thickness, crops_per_image=6)
        areas.append(float(torch.stack([dataset[i][2] for i in range(len(dataset))]).mean()))
    assert areas[0] < areas[1]
    with pytest.raises(ValueError, match="rectangles"):
        InpaintingDataset(val, 64, "rectangles", thickness=3)
    with pytest.raises(ValueError, match="input_channels"):
        InpaintingDataset(val, 64, input_channels=5)
    with pytest.raises(ValueError, match="mask_kind"):
        InpaintingDataset(val, 64, mask_kind="circles")


def test_denoising_pairs_are_noisy_copies_and_fixed_for_validation():
    from utils.data.natural import DenoisingDataset, get_natural_images

    train, val, _ = get_natural_images("skimage", verbose=False)
    held_out = DenoisingDataset(val, 32, noise_std=0.1, value_range=(0, 1), train=False)
    noisy, clean = held_out[0]
    assert noisy.shape == clean.shape == (3, 32, 32)
    assert 0 <= noisy.min() and noisy.max() <= 1
    assert 0.05 < (noisy - clean).std() < 0.12  # clamping at 0 and 1 trims the noise a little
    again, _ = held_out[0]
    assert torch.equal(noisy, again)
    silent = DenoisingDataset(train, 32, noise_std=0.0, value_range=(-1, 1))
    noisy, clean = silent[0]
    assert torch.equal(noisy, clean) and clean.min() >= -1
    with pytest.raises(ValueError):
        DenoisingDataset(train, 32, noise_std=-1)


# ---------------------------------------------------------------------------------------------- photo set and grid


def test_offline_photo_set_is_large_and_split_by_photo(skimage_photos):
    train, val = skimage_photos
    assert len(SKIMAGE_TRAIN_PHOTOS) + len(SKIMAGE_HELDOUT_PHOTOS) >= 12 and len(SKIMAGE_HELDOUT_PHOTOS) >= 4
    assert not set(SKIMAGE_TRAIN_PHOTOS) & set(SKIMAGE_HELDOUT_PHOTOS)
    # Every photo is at least 300 px on each side, so any crop up to 300 (the gpu profile's 256) fits.
    assert min(min(photo.shape[:2]) for photo in train + val) >= 300
    assert "grace_hopper" in SKIMAGE_HELDOUT_PHOTOS  # from matplotlib's sample data


@pytest.mark.parametrize("crop_size, per_photo", [(96, 8), (128, 16), (128, 2)])
def test_grid_layout_gives_non_overlapping_fixed_crops(skimage_photos, crop_size, per_photo):
    _, val = skimage_photos
    dataset = PhotoCrops(val, crop_size, train=False, crops_per_image=per_photo, layout="grid")
    distinct, total = dataset.distinct_pixels()
    assert distinct == total == len(dataset) * crop_size**2
    for photo_index in range(len(val)):
        count = sum(1 for tile in dataset.tiles if tile[0] == photo_index)
        height, width = val[photo_index].shape[:2]
        assert 1 <= count == min(per_photo, (height // crop_size) * (width // crop_size))
    again = PhotoCrops(val, crop_size, train=False, crops_per_image=per_photo, layout="grid")
    assert all(np.array_equal(a, b) for a, b in zip(dataset, again))


def test_random_layout_crops_overlap_and_distinct_pixels_says_so(skimage_photos):
    _, val = skimage_photos
    dataset = PhotoCrops(val, 128, train=False, crops_per_image=16)
    distinct, total = dataset.distinct_pixels()
    assert total == 64 * 128**2 and distinct < total


def test_layout_is_checked_and_passed_through_by_the_datasets(skimage_photos):
    _, val = skimage_photos
    with pytest.raises(ValueError, match="layout"):
        PhotoCrops(val, 64, train=False, layout="spiral")
    sr = SuperResolutionDataset(val, 64, 4, train=False, crops_per_image=2, layout="grid")
    inpaint = InpaintingDataset(val, 64, "rectangles", 4, train=False, crops_per_image=2, layout="grid")
    assert sr.tiles == inpaint.tiles and len(sr) == 2 * len(val)
    with pytest.raises(ValueError, match="validation"):
        PhotoCrops(val, 64).distinct_pixels()


def test_cpu_profile_does_not_start_the_div2k_download(monkeypatch, capsys):
    """Issue 18: "auto" in the cpu profile uses DIV2K only when already downloaded, never pulls 3.7 GB by itself."""
    from utils.data import kaggle
    from utils.data.natural import get_natural_images

    monkeypatch.setenv("UNET_COURSE_PROFILE", "cpu")
    monkeypatch.delenv("UNET_COURSE_OFFLINE", raising=False)
    monkeypatch.setattr(kaggle, "find_cached_dataset", lambda handle: None)

    def no_download(*args, **kwargs):
        raise AssertionError("the cpu profile started a multi-GB download")

    monkeypatch.setattr(kaggle, "download_kaggle_dataset", no_download)
    monkeypatch.setattr(kaggle, "kaggle_reachable", no_download)
    _, _, info = get_natural_images("auto")
    assert info["source"] == "skimage" and "cpu profile downloads no multi-GB" in info["note"]
