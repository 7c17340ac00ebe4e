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

from utils.config import OFFLINE_VARIABLE, get_profile, offline_mode

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


def _http_status(err: BaseException) -> int | None:
    """The HTTP status code carried by a requests/kagglehub error, if any."""
    response = getattr(err, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def _what_to_do(status: int | None, err: BaseException) -> str:
    if status in (401, 403):
        return ("sign in to Kaggle (kagglehub.login(), or KAGGLE_USERNAME and KAGGLE_KEY from kaggle.com > Settings > "
                "API) and accept the dataset's terms on its page")
    if status == 404:
        return "check the handle on kaggle.com: the dataset may have been renamed or removed"
    if status == 429 or (status is not None and status >= 500):
        return "Kaggle is busy: try again in a few minutes"
    if isinstance(err, OSError):
        return f"check the internet connection, or set {OFFLINE_VARIABLE}=1 to skip downloads"
    return "see the error above; the course carries on without this dataset"


def describe_download_error(handle: str, err: BaseException) -> str:
    """'HTTP 403 Forbidden ... ; what to do: ...' for a failed download of `handle`, in one line."""
    status = _http_status(err)
    text = " ".join(str(err).split())[:200] or type(err).__name__
    what = f"HTTP {status}: {text}" if status is not None else f"{type(err).__name__}: {text}"
    return f"{handle}: {what}; what to do: {_what_to_do(status, err)}"


def download_kaggle_dataset(handle: str) -> tuple[Path | None, str]:
    """Ask kagglehub for `handle`; return (folder, "") on success or (None, reason), never raising.

    The reason names the handle, the HTTP status or error text, and what to do.
    """
    try:
        import kagglehub
    except ImportError:
        return None, f"{handle}: kagglehub is not installed; what to do: pip install kagglehub"
    try:
        folder = kagglehub.dataset_download(handle)
    except Exception as err:  # noqa: BLE001 - any kagglehub failure means "use the fallback", with the reason said
        return None, describe_download_error(handle, err)
    return Path(folder), ""


def locate_kaggle_dataset(handle: str, download: bool = True) -> tuple[Path | None, str]:
    """Cached copy, else download; returns (folder or None, reason for None). Never raises for network trouble.

    download=False: the cache only (the cpu profile never starts a multi-GB download by itself).
    """
    cached = find_cached_dataset(handle)
    if cached is not None:
        return cached, ""
    if offline_mode():
        return None, f"{OFFLINE_VARIABLE}=1 and not in the kagglehub cache"
    if not download:
        return None, (f"{handle} is not in the kagglehub cache, and the {get_profile().name} profile downloads no "
                      "multi-GB data set by itself; ask for it by name (e.g. source=\"div2k\") to download it")
    if not kaggle_reachable():
        return None, f"no connection to {KAGGLE_HOST}"
    return download_kaggle_dataset(handle)


def fetch_kaggle_dataset(
    handle: str, *, verbose: bool = True, fallback: str = "the synthetic fallback"
) -> Path | None:
    """Local folder of Kaggle dataset `handle` (from the cache or downloaded), or None if it cannot be had."""
    folder, reason = locate_kaggle_dataset(handle)
    if folder is None and verbose:
        detail = reason if reason.startswith(handle) else f"{handle}: {reason}"
        print(f"Kaggle dataset not available ({detail}); using {fallback} instead.")
    return folder
