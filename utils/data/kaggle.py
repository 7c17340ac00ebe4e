"""Fetch a Kaggle dataset when we can, and say so in one line when we cannot.

Course notebooks must run on a laptop on a train, in Colab, and in CI without internet.
So nothing here raises for network trouble: `fetch_kaggle_dataset` returns None and the
caller switches to an offline fallback.
"""
from __future__ import annotations

import os
import re
import socket
import threading
from pathlib import Path

from utils.config import OFFLINE_VARIABLE, offline_mode

KAGGLE_HOST = "www.kaggle.com"
# Long enough for a slow but working connection to answer, short enough that a student
# without internet waits only a moment before the fallback kicks in.
REACHABILITY_TIMEOUT_S = 4.0

_HANDLE_PATTERN = re.compile(r"^(?P<owner>[^/\s]+)/(?P<name>[^/\s]+)(?:/versions/(?P<version>\d+))?$")


def kagglehub_cache_dir() -> Path:
    """The folder where kagglehub keeps its downloads (KAGGLEHUB_CACHE or ~/.cache/kagglehub)."""
    # Same rule as kagglehub itself, repeated here so we can look without importing it.
    custom = os.environ.get("KAGGLEHUB_CACHE")
    return Path(custom) if custom else Path.home() / ".cache" / "kagglehub"


def parse_handle(handle: str) -> tuple[str, str, int | None]:
    """Split 'owner/name' or 'owner/name/versions/N' into (owner, name, version or None)."""
    match = _HANDLE_PATTERN.match(handle.strip())
    if match is None:
        raise ValueError(
            f"not a Kaggle dataset handle: {handle!r} (expected 'owner/name' or 'owner/name/versions/N')"
        )
    version = match.group("version")
    return match.group("owner"), match.group("name"), int(version) if version else None


def find_cached_dataset(handle: str) -> Path | None:
    """Folder of a fully downloaded copy of `handle` in the kagglehub cache, or None; never uses the network.

    For an unversioned handle the newest complete version wins.
    """
    owner, name, version = parse_handle(handle)
    dataset_dir = kagglehub_cache_dir() / "datasets" / owner / name
    versions_dir = dataset_dir / "versions"
    if version is not None:
        candidates = [version]
    elif versions_dir.is_dir():
        candidates = sorted((int(p.name) for p in versions_dir.iterdir() if p.name.isdigit()), reverse=True)
    else:
        candidates = []
    for number in candidates:
        folder = versions_dir / str(number)
        # kagglehub writes the marker `<N>.complete` next to `versions/` only after extraction
        # succeeded; a folder without it is an interrupted download and may be missing files.
        if folder.is_dir() and (dataset_dir / f"{number}.complete").is_file():
            return folder
    return None


def kaggle_reachable(timeout: float = REACHABILITY_TIMEOUT_S) -> bool:
    """Quick check that Kaggle's server accepts a connection, giving up after `timeout` seconds."""
    outcome: list[bool] = []

    def try_connect() -> None:
        try:
            with socket.create_connection((KAGGLE_HOST, 443), timeout=timeout):
                outcome.append(True)
        except OSError:
            outcome.append(False)

    # Name lookup ignores socket timeouts and can hang for a long time on a broken network,
    # so the attempt runs in a daemon thread that we simply stop waiting for.
    worker = threading.Thread(target=try_connect, daemon=True)
    worker.start()
    worker.join(timeout)
    return bool(outcome and outcome[0])


def download_kaggle_dataset(handle: str) -> tuple[Path | None, str]:
    """Ask kagglehub for `handle`; return (folder, "") on success or (None, short reason), never raising."""
    try:
        import kagglehub
    except ImportError:
        return None, "kagglehub is not installed"
    try:
        folder = kagglehub.dataset_download(handle)
    except OSError as err:
        # requests' ConnectionError and Timeout are OSError subclasses, so this is "no network".
        return None, type(err).__name__
    except Exception as err:  # noqa: BLE001 - any kagglehub failure means "use the fallback"
        return None, type(err).__name__
    return Path(folder), ""


def locate_kaggle_dataset(handle: str) -> tuple[Path | None, str]:
    """Cached copy, else download; returns (folder or None, reason for None). Never raises for network trouble."""
    cached = find_cached_dataset(handle)
    if cached is not None:
        return cached, ""
    if offline_mode():
        return None, f"{OFFLINE_VARIABLE}=1 and not in the kagglehub cache"
    if not kaggle_reachable():
        return None, f"no connection to {KAGGLE_HOST}"
    return download_kaggle_dataset(handle)


def fetch_kaggle_dataset(
    handle: str, *, verbose: bool = True, fallback: str = "the synthetic fallback"
) -> Path | None:
    """Local folder of Kaggle dataset `handle` (from the cache or downloaded), or None if it cannot be had."""
    folder, reason = locate_kaggle_dataset(handle)
    if folder is None and verbose:
        print(f"Kaggle dataset {handle} not reachable ({reason}); using {fallback} instead.")
    return folder
