"""Run profiles, device choice and seeding: the one config object every notebook reads.

``UNET_COURSE_PROFILE`` picks the profile:

* ``smoke``: seconds per notebook, for CI; numbers are meaningless, only the code path is tested.
* ``cpu``: meaningful results in minutes on a 2-core laptop (the default without CUDA).
* ``gpu``: full data sizes and epochs (the default with CUDA).
"""
from __future__ import annotations

import os
import random
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

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
    seg_image_size: int  # VGG16-UNet input size (notebook 02)
    seg_steps: int  # steps per VGG16-UNet run (notebook 02): VGG16 costs about 10x the course UNet per step
    seg_lr: float  # Adam learning rate for VGG16-UNet
    eval_every: int  # steps between validation passes (for curves)
    n_train: int  # training images for datasets that have a fixed size
    n_val: int  # held-out images
    num_workers: int

    def to_dict(self) -> dict:
        """Plain dict, handy for printing and logging."""
        return asdict(self)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke", image_size=64, sr_crop_size=64, inpaint_size=64, u2net_size=64, base_channels=8,
        batch_size=4, train_steps=4, seg_image_size=64, seg_steps=2, seg_lr=3e-4, eval_every=2, n_train=16, n_val=8, num_workers=0,
    ),
    "cpu": Profile(
        name="cpu", image_size=96, sr_crop_size=128, inpaint_size=128, u2net_size=160, base_channels=16,
        batch_size=8, train_steps=600, seg_image_size=64, seg_steps=500, seg_lr=1e-3, eval_every=100, n_train=800, n_val=120, num_workers=0,
    ),
    "gpu": Profile(
        name="gpu", image_size=256, sr_crop_size=256, inpaint_size=256, u2net_size=320, base_channels=64,
        batch_size=16, train_steps=6000, seg_image_size=256, seg_steps=4000, seg_lr=1e-4, eval_every=500, n_train=5000, n_val=500, num_workers=4,
    ),
}


def get_device() -> torch.device:
    """CUDA when present, else Apple's MPS, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def get_profile(name: str | None = None, **overrides) -> Profile:
    """The profile named, else $UNET_COURSE_PROFILE, else `gpu` with CUDA and `cpu` without."""
    name = name or os.environ.get(PROFILE_VARIABLE) or ("gpu" if torch.cuda.is_available() else "cpu")
    if name not in PROFILES:
        raise ValueError(f"{PROFILE_VARIABLE} must be one of {sorted(PROFILES)}, got {name!r}")
    return replace(PROFILES[name], **overrides)


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
    if verbose:
        threads = torch.get_num_threads()
        print(f"profile: {config.name} | device: {device} | torch {torch.__version__} | CPU threads: {threads}")
    return config, device
