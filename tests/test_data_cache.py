"""The decoded-photo cache (utils.data.cache): decode once, reuse, bounded, safe to turn off."""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from utils.data import cache
from utils.data.natural import DenoisingDataset


@pytest.fixture
def photo_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(cache.CACHE_VARIABLE, str(tmp_path / "cache"))
    monkeypatch.delenv(cache.LIMIT_VARIABLE, raising=False)
    return tmp_path / "cache" / "photos"


def big_photo(path: Path, seed: int = 0, size=(600, 700)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return pixels


def test_a_photo_is_decoded_once_and_reused(photo_cache: Path, tmp_path: Path, monkeypatch) -> None:
    pixels = big_photo(tmp_path / "p.png")
    first = cache.cached_photo(tmp_path / "p.png")
    assert np.array_equal(first, pixels) and len(list(photo_cache.glob("*.npy"))) == 1
    decodes = []
    monkeypatch.setattr(cache, "load_rgb", lambda path: decodes.append(path))
    again = cache.cached_photo(tmp_path / "p.png")
    assert decodes == [] and isinstance(again, np.memmap) and np.array_equal(again, pixels)


def test_a_changed_file_is_decoded_again(photo_cache: Path, tmp_path: Path) -> None:
    big_photo(tmp_path / "p.png", seed=0)
    cache.cached_photo(tmp_path / "p.png")
    new = big_photo(tmp_path / "p.png", seed=1)
    os.utime(tmp_path / "p.png", ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    assert np.array_equal(cache.cached_photo(tmp_path / "p.png"), new)


def test_the_cache_stays_within_its_bound(photo_cache: Path, tmp_path: Path, monkeypatch) -> None:
    one = 600 * 700 * 3
    monkeypatch.setenv(cache.LIMIT_VARIABLE, str(2.5 * one / 2**30))  # room for two photos
    for i in range(4):
        big_photo(tmp_path / f"p{i}.png", seed=i)
        cache.cached_photo(tmp_path / f"p{i}.png")
        time.sleep(0.01)
    sizes = [p.stat().st_size for p in photo_cache.glob("*.npy")]
    assert len(sizes) == 2 and sum(sizes) <= 2.5 * one
    assert np.array_equal(cache.cached_photo(tmp_path / "p3.png"), np.asarray(Image.open(tmp_path / "p3.png")))


def test_zero_turns_it_off_and_small_photos_are_not_stored(photo_cache: Path, tmp_path: Path, monkeypatch) -> None:
    Image.fromarray(np.zeros((64, 64, 3), dtype=np.uint8)).save(tmp_path / "small.png")
    cache.cached_photo(tmp_path / "small.png")
    assert not photo_cache.exists() or not list(photo_cache.glob("*.npy"))
    monkeypatch.setenv(cache.LIMIT_VARIABLE, "0")
    big_photo(tmp_path / "p.png")
    cache.cached_photo(tmp_path / "p.png")
    assert not photo_cache.exists() or not list(photo_cache.glob("*.npy"))


def test_crops_from_the_cache_equal_crops_from_the_file(photo_cache: Path, tmp_path: Path, monkeypatch) -> None:
    paths = []
    for i in range(2):
        big_photo(tmp_path / f"p{i}.png", seed=i)
        paths.append(tmp_path / f"p{i}.png")
    dataset = DenoisingDataset(paths, 64, train=False, crops_per_image=3)
    from_cache = [dataset[i] for i in range(len(dataset))]
    assert len(list(photo_cache.glob("*.npy"))) == 2
    monkeypatch.setenv(cache.LIMIT_VARIABLE, "0")  # the same crops decoded from the files
    for i, cached in enumerate(from_cache):
        for a, b in zip(cached, dataset[i]):
            assert a.equal(b)


def test_missing_file_keeps_the_clear_error(photo_cache: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="gone.png"):
        cache.cached_photo(tmp_path / "gone.png")
