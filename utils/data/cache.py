"""Decode each large photo once: a bounded on-disk cache of decoded pixels, reused across runs and workers.

A 256-pixel crop of a DIV2K photo used to decode the whole 2040x1356 PNG (about 120 ms of CPU per sample), which
left a GPU waiting on Colab's 2 vCPUs. The first read of a photo here decodes it once and stores its pixels
uncompressed (`.npy`, EXIF rotation applied); every later read maps that file into memory, so a crop reads only
its own rows from the page cache: milliseconds.

    photo = cached_photo(path)     # uint8 (H, W, 3), read-only, memory-mapped

* Where: ``$UNET_COURSE_CACHE`` or ``~/.cache/unet-course``, folder ``photos/``.
* How much: at most ``$UNET_COURSE_PHOTO_CACHE_GB`` (default 10; DIV2K's 900 photos take 7.5 GB decoded); the
  oldest entries go first when it is full. ``UNET_COURSE_PHOTO_CACHE_GB=0`` turns the cache off.
* Safe with DataLoader workers and parallel runs: a photo is written to a temporary file and renamed into place.
* A changed file (size or modification time) gets a new entry; the stale one ages out.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from .images import load_rgb

CACHE_VARIABLE = "UNET_COURSE_CACHE"
LIMIT_VARIABLE = "UNET_COURSE_PHOTO_CACHE_GB"
DEFAULT_LIMIT_GB = 10.0
# Photos smaller than this are decoded directly: their decode is already fast, and caching would only cost disk.
MIN_CACHED_PIXELS = 512 * 512


def cache_dir() -> Path:
    """The folder that holds the decoded photos."""
    base = os.environ.get(CACHE_VARIABLE)
    return (Path(base).expanduser() if base else Path.home() / ".cache" / "unet-course") / "photos"


def limit_bytes() -> int:
    """The cache's size bound in bytes (0: cache off)."""
    try:
        gib = float(os.environ.get(LIMIT_VARIABLE, DEFAULT_LIMIT_GB))
    except ValueError:
        raise ValueError(f"{LIMIT_VARIABLE} must be a number of GB, got {os.environ[LIMIT_VARIABLE]!r}") from None
    return int(max(gib, 0.0) * 2**30)


def _key(path: Path) -> str:
    """Name of the entry for `path`: its absolute location, size and modification time, hashed."""
    stat = path.stat()
    text = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return hashlib.sha1(text.encode()).hexdigest()[:20]


def _evict(folder: Path, limit: int, keep: Path) -> None:
    """Delete the oldest entries until the folder holds at most `limit` bytes (never `keep`, the newest)."""
    entries = []
    with os.scandir(folder) as scan:
        for entry in scan:
            if entry.name.endswith(".npy") and entry.is_file():
                stat = entry.stat()
                entries.append((stat.st_mtime, stat.st_size, Path(entry.path)))
    total = sum(size for _, size, _ in entries)
    for _, size, path in sorted(entries):
        if total <= limit:
            break
        if path != keep:
            path.unlink(missing_ok=True)
            total -= size


def cached_photo(path: str | Path) -> np.ndarray:
    """The photo at `path` as uint8 (H, W, 3), decoded at most once per file version while it stays cached.

    Large photos come back memory-mapped and read-only (crop them, then copy the crop); small ones are decoded.
    """
    path = Path(path)
    limit = limit_bytes()
    if limit == 0:
        return load_rgb(path)
    folder = cache_dir()
    try:
        entry = folder / f"{_key(path)}.npy"
    except FileNotFoundError:
        return load_rgb(path)  # load_rgb raises the course's clear "image file not found" error
    if entry.is_file():
        try:
            return np.load(entry, mmap_mode="r")
        except (OSError, ValueError):
            entry.unlink(missing_ok=True)  # a damaged entry (disk full, killed mid-write elsewhere): decode again
    photo = load_rgb(path)
    if photo.shape[0] * photo.shape[1] < MIN_CACHED_PIXELS or photo.nbytes > limit:
        return photo
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{entry.stem}.{os.getpid()}.tmp.npy"
        np.save(temporary, photo)
        os.replace(temporary, entry)
        _evict(folder, limit, keep=entry)
    except OSError:
        pass  # a read-only or full disk only costs speed
    return photo


def clear_cache() -> int:
    """Delete every cached photo; returns the bytes freed."""
    folder = cache_dir()
    if not folder.is_dir():
        return 0
    freed = 0
    for path in folder.glob("*.npy"):
        freed += path.stat().st_size
        path.unlink(missing_ok=True)
    return freed
