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


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 on GPUs that support it (no loss scaling needed), fp16 on older GPUs, None on CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


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
