"""Where and how a training step runs: memory layout and mixed precision, chosen per device.

Kept apart from the loop (utils.train.loop) so that the loop shows only the lesson; the choices here are
about speed, not about what the network learns.
"""
from __future__ import annotations

import contextlib
from typing import Iterable

import torch


def channels_last_default(device: torch.device, dtype: torch.dtype | None = None) -> bool:
    """Use channels_last (NHWC) by default on CUDA and on the CPU in full precision, where it measured faster for
    every course model; not for bf16 on a CPU (`dtype`), where it measured slower for VGG16-UNet."""
    # Measured train steps (python -m benchmarks.models --passes train_step): 15-25 % faster on a 2-core CPU,
    # and the layout cuDNN's convolutions prefer on GPUs. MPS is left alone (not measured). bf16 on a 2-core Zen 4:
    # VGG16-UNet (width 0.25, 64 px, batch 8) 66 ms per step in the default layout vs 198 ms in channels_last;
    # U2NetP (160 px, batch 4) 688 vs 556 ms, so notebook 03 asks for channels_last itself.
    if device.type == "cpu" and dtype is not None:
        return False
    return device.type in ("cuda", "cpu")


# bf16 runs natively (tensor cores, cuDNN kernels) from Ampere on: compute capability 8.0 (A100, RTX 30xx) and up.
BF16_MIN_CAPABILITY = (8, 0)


def cpu_has_native_bf16() -> bool:
    """True where the CPU computes bf16 in hardware (AVX512-BF16 or AMX), which oneDNN's convolutions then use."""
    return torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def autocast_dtype(device: torch.device, cpu: bool = False) -> torch.dtype | None:
    """bf16 on GPUs that run it natively (compute capability >= 8), fp16 (with loss scaling) on older ones.

    On a CPU: bf16 only when asked (`cpu=True`) and the CPU has bf16 in hardware, else None (full precision).
    It is opt-in there because a CPU without it would run bf16 several times slower, so the same notebook
    would compute different numbers on different laptops. (Measured on a 2-core Zen 4: train steps 1.6-1.7x
    faster for VGG16-UNet and U2NetP.) `torch.cuda.is_bf16_supported()` is not the GPU test: it says True on a
    T4 (7.5), where bf16 is emulated and its convolutions leave cuDNN for a path several times slower than fp16.
    """
    if device.type == "cpu":
        return torch.bfloat16 if cpu and cpu_has_native_bf16() else None
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
