"""Run profiles, device choice and seeding: the one config object every notebook reads.

``UNET_COURSE_PROFILE`` picks the profile:

* ``smoke``: seconds per notebook, for CI; numbers are meaningless, only the code path is tested.
* ``cpu``: meaningful results in minutes on a 2-core laptop (the default without CUDA).
* ``gpu``: full data sizes and epochs (the default with CUDA).
"""
from __future__ import annotations

import multiprocessing
import os
import random
import sys
from dataclasses import asdict, dataclass, replace

# OpenMP threads that wait for work should spin only briefly, then sleep: on a busy 2-core laptop threads that spin
# made a training step 5x slower, and threads that sleep at once (PASSIVE) made a quiet one up to 1.7x slower
# (measured; see README, "A busy machine"). GOMP_SPINCOUNT is Linux's libgomp and overrides PASSIVE there; other
# OpenMP runtimes honour PASSIVE. OpenMP reads both once, when torch starts, so this only helps when this module is
# imported before torch; the notebooks' setup cell and conftest.py set them earlier still.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

import numpy as np  # noqa: E402
import torch  # noqa: E402

PROFILE_VARIABLE = "UNET_COURSE_PROFILE"
# Set to 1 (or true/yes/on) to skip every network attempt: Kaggle data, ImageNet weights, official checkpoints.
OFFLINE_VARIABLE = "UNET_COURSE_OFFLINE"


def offline_mode() -> bool:
    """True when $UNET_COURSE_OFFLINE asks the course to skip all network access (downloads of data and weights)."""
    return os.environ.get(OFFLINE_VARIABLE, "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Profile:
    """Sizes and budgets for one run profile; notebooks read these instead of hard-coding numbers."""

    name: str
    image_size: int  # square crops for UNet training (segmentation, denoising)
    sr_crop_size: int  # high-resolution crop for super-resolution (the reference uses 256)
    inpaint_size: int  # crop size for inpainting
    u2net_size: int  # input size for U2Net training (the paper uses 320)
    base_channels: int  # width of the course UNet's first level (the reference uses 64)
    batch_size: int
    train_steps: int  # optimisation steps per training run of the course UNet
    denoise_steps: int  # steps per denoising UNet in notebook 01 (six runs: 2 cpu minutes each at 1,200)
    seg_image_size: int  # VGG16-UNet input size (notebook 02)
    seg_steps: int  # steps per VGG16-UNet run (notebook 02): VGG16 costs about 10x the course UNet per step
    seg_lr: float  # Adam learning rate for VGG16-UNet trained from random weights (with BatchNorm, notebook 02)
    seg_pretrained_lr: float  # Adam learning rate for VGG16-UNet fine-tuned from ImageNet weights
    seg_width: float  # encoder width multiplier when VGG16 trains from random weights (1.0: VGG16's 64..512)
    seg_n_train: int  # synthetic training pictures for notebooks 02/03 (drawn once, then cached)
    seg_difficulty: float  # clutter of the synthetic people in notebooks 02/03 (1.0: the standard set)
    u2net_steps: int  # steps per U2NetP run (notebook 03)
    u2net_batch_size: int
    u2net_lr: float  # Adam learning rate for U2NetP (the official script: 1e-3, constant, for 600k+ steps)
    eval_every: int  # steps between validation passes (for curves)
    n_train: int  # training images for datasets that have a fixed size
    n_val: int  # held-out images
    num_workers: int
    sized_for: str = ""  # what the sizes were chosen for, e.g. "GPU with 15 GiB" (printed by setup())

    def to_dict(self) -> dict:
        """Plain dict, handy for printing and logging."""
        return asdict(self)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke", image_size=64, sr_crop_size=64, inpaint_size=64, u2net_size=64, base_channels=8,
        batch_size=4, train_steps=4, denoise_steps=4, seg_image_size=64, seg_steps=2, seg_lr=3e-4, seg_pretrained_lr=1e-4, seg_width=0.25,
        seg_n_train=16, seg_difficulty=0.0, u2net_steps=2, u2net_batch_size=2, u2net_lr=1e-3, eval_every=2, n_train=16, n_val=8,
        num_workers=0,
    ),
    "cpu": Profile(
        name="cpu", image_size=96, sr_crop_size=128, inpaint_size=128, u2net_size=160, base_channels=16,
        batch_size=8, train_steps=600, denoise_steps=1200, seg_image_size=64, seg_steps=2200, seg_lr=4e-3, seg_pretrained_lr=1e-4, seg_width=0.25,
        seg_n_train=4000, seg_difficulty=0.0, u2net_steps=200, u2net_batch_size=4, u2net_lr=3e-3, eval_every=100, n_train=800, n_val=120,
        num_workers=0,
    ),
    "gpu": Profile(
        name="gpu", image_size=256, sr_crop_size=256, inpaint_size=256, u2net_size=320, base_channels=64,
        batch_size=16, train_steps=6000, denoise_steps=6000, seg_image_size=256, seg_steps=4000, seg_lr=1e-3, seg_pretrained_lr=1e-4, seg_width=1.0,
        seg_n_train=5000, seg_difficulty=1.0, u2net_steps=4000, u2net_batch_size=12, u2net_lr=1e-3, eval_every=500, n_train=5000, n_val=500,
        num_workers=4,
    ),
}


def get_device() -> torch.device:
    """CUDA when present, else Apple's MPS, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def usable_cpus() -> int:
    """CPU cores this process may run on (its affinity: a container's or `taskset`'s share, not the host's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS and Windows have no sched_getaffinity
        return max(1, os.cpu_count() or 1)


def loader_workers(limit: int = 4) -> int:
    """DataLoader worker processes that fit the machine: one core stays with the training process.

    2 vCPUs (Colab) give 1 worker, never 4. 0 (load in the main process) where new processes are spawned (Windows,
    macOS): a spawned worker must re-import the dataset class, which fails for one defined inside a notebook.
    """
    start_method = multiprocessing.get_start_method(allow_none=True)
    if start_method is None:  # not chosen yet: Python's default for this platform
        start_method = "spawn" if sys.platform in ("win32", "darwin") else "fork"
    if start_method == "spawn":
        return 0
    return max(0, min(limit, usable_cpus() - 1))


def gpu_memory_gib(device_index: int = 0) -> float | None:
    """Total memory of CUDA device `device_index` in GiB, or None without CUDA."""
    if not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_properties(device_index).total_memory / 2**30


# The `gpu` profile by the GPU's memory (GiB, upper bound exclusive): a 4-6 GB laptop GPU gets smaller pictures and
# batches (estimated peak under 3 GiB for notebooks 01/03/05, against 5-5.5 GiB for the 16 GB setting), a 16 GB T4
# the standard setting, 40-80 GB cards larger batches. Steps stay the same, so results stay comparable.
GPU_TIERS: tuple[tuple[float, dict], ...] = (
    (10.0, dict(image_size=192, sr_crop_size=192, inpaint_size=192, u2net_size=256, base_channels=32, batch_size=8,
                seg_image_size=192, u2net_batch_size=8)),
    (32.0, {}),
    (float("inf"), dict(batch_size=32)),
)


def gpu_profile(memory_gib: float | None) -> Profile:
    """The `gpu` profile sized for a GPU with `memory_gib` GiB (None: no GPU seen, the standard 16 GB setting)."""
    memory = 15.0 if memory_gib is None else memory_gib
    changes = next(changes for bound, changes in GPU_TIERS if memory < bound)
    sized_for = f"GPU with {memory_gib:.0f} GiB" if memory_gib is not None else "a 16 GB GPU (no GPU seen)"
    return replace(PROFILES["gpu"], **changes, num_workers=loader_workers(), sized_for=sized_for)


def get_profile(name: str | None = None, **overrides) -> Profile:
    """The profile named, else $UNET_COURSE_PROFILE, else `gpu` with CUDA and `cpu` without.

    `gpu` is sized from the GPU's memory (`GPU_TIERS`) and its loader workers from the usable cores.
    """
    name = name or os.environ.get(PROFILE_VARIABLE) or ("gpu" if torch.cuda.is_available() else "cpu")
    if name not in PROFILES:
        raise ValueError(f"{PROFILE_VARIABLE} must be one of {sorted(PROFILES)}, got {name!r}")
    profile = gpu_profile(gpu_memory_gib()) if name == "gpu" else PROFILES[name]
    return replace(profile, **overrides)


def large_downloads_allowed() -> bool:
    """Whether "auto" data sources may start a multi-GB download: in the `gpu` profile only.

    The `cpu` and `smoke` profiles use such a data set when it is already downloaded and otherwise the small data
    the course ships; asking for it by name (e.g. get_natural_images("div2k")) downloads it in any profile.
    """
    return get_profile().name == "gpu"


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and torch so that a notebook run is repeatable on the same machine."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def setup(seed: int = 0, profile: str | None = None, verbose: bool = True) -> tuple[Profile, torch.device]:
    """What every notebook's setup cell calls: seeds, profile and device, printed in one line."""
    seed_everything(seed)
    config = get_profile(profile)
    device = get_device()
    if torch.get_num_threads() > usable_cpus():
        torch.set_num_threads(usable_cpus())  # more threads than usable cores only wait on each other
    if verbose:
        threads = torch.get_num_threads()
        sized = f" ({config.sized_for}: {config.image_size} px, batch {config.batch_size})" if config.sized_for else ""
        print(f"profile: {config.name}{sized} | device: {device} | torch {torch.__version__} | CPU threads: {threads}"
              f" | loader workers: {config.num_workers}")
    return config, device
