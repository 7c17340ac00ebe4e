"""Where and how a training step runs: memory layout and mixed precision, chosen per device.

Kept apart from the loop (utils.train.loop) so that the loop shows only the lesson; the choices here are
about speed, not about what the network learns.
"""
from __future__ import annotations

import contextlib
from typing import Iterable

import torch


def channels_last_default(device: torch.device) -> bool:
    """Use channels_last (NHWC) by default on CUDA and on the CPU, where it measured faster for every course model."""
    # Measured train steps (python -m benchmarks.models --passes train_step): 15-25 % faster on a 2-core CPU,
    # and the layout cuDNN's convolutions prefer on GPUs. MPS is left alone (not measured).
    return device.type in ("cuda", "cpu")


# bf16 runs natively (tensor cores, cuDNN kernels) from Ampere on: compute capability 8.0 (A100, RTX 30xx) and up.
BF16_MIN_CAPABILITY = (8, 0)


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 on GPUs that run it natively (compute capability >= 8), fp16 (with loss scaling) on older ones, None on CPU.

    `torch.cuda.is_bf16_supported()` is not the test: it says True on a T4 (7.5), where bf16 is emulated and its
    convolutions leave cuDNN for a path several times slower than fp16.
    """
    if device.type != "cuda":
        return None
    index = device.index if device.index is not None else torch.cuda.current_device()
    native_bf16 = tuple(torch.cuda.get_device_capability(index)) >= BF16_MIN_CAPABILITY
    return torch.bfloat16 if native_bf16 else torch.float16


def autocast_context(device: torch.device, dtype: torch.dtype | None):
    """Mixed precision in `dtype` on `device`; plain full precision when dtype is None."""
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def to_device(batch: Iterable[torch.Tensor], device: torch.device, channels_last: bool = False) -> list[torch.Tensor]:
    """Move every tensor of a batch to `device`; 4-D image batches also to channels_last when asked."""
    # non_blocking overlaps the copy with compute when the loader uses pinned memory.
    moved = [t.to(device, non_blocking=True) for t in batch]
    if channels_last:
        moved = [t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t for t in moved]
    return moved
