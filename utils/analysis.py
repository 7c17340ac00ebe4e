"""Measuring networks: receptive fields, FLOPs, latency. Used by the notebooks and the benchmarks."""
from __future__ import annotations

import statistics
import time
from typing import Callable, Iterable, Mapping

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def _pair(value: int | tuple[int, ...]) -> int:
    return value[0] if isinstance(value, tuple) else value


def receptive_field(layers: Iterable[nn.Module]) -> int:
    """Theoretical receptive field (pixels) of a chain of layers applied one after the other.

    Each k x k layer with dilation d widens the field by (k - 1) * d input-pixel steps of the
    current stride; each stride-s layer multiplies that step by s.
    """
    field, step = 1, 1
    for layer in layers:
        for leaf in layer.modules():
            if isinstance(leaf, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
                kernel, stride = _pair(leaf.kernel_size), _pair(leaf.stride)
                dilation = _pair(getattr(leaf, "dilation", 1))
                field += (kernel - 1) * dilation * step
                step *= stride
    return field


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Floating-point operations of one forward pass (a multiply-add counts as 2), measured by torch."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(input_shape, device=device))
    model.train(was_training)
    return counter.get_total_flops()


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work: without it a timer measures only how long launching the kernels took."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def time_calls(step: Callable[[], object], device: torch.device, repeats: int = 5, warmup: int = 1) -> dict[str, float]:
    """Median, spread and mean (ms) of `repeats` calls of `step` after `warmup` untimed ones.

    The first warm-up call is reported apart as `first_call_ms`: it pays for compilation, cuDNN autotuning
    and allocator growth.
    """
    stats = {}
    for index in range(warmup):
        synchronize(device)
        start = time.perf_counter()
        step()
        synchronize(device)
        if index == 0:
            stats["first_call_ms"] = (time.perf_counter() - start) * 1000
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        step()
        synchronize(device)
        times.append((time.perf_counter() - start) * 1000)
    return {
        "median_ms": statistics.median(times),
        "min_ms": min(times),
        "max_ms": max(times),
        "mean_ms": statistics.fmean(times),
        "std_ms": statistics.stdev(times) if len(times) > 1 else 0.0,
        **stats,
    }


def output_shapes(model: nn.Module, modules: Mapping[str, nn.Module], inputs: torch.Tensor) -> dict[str, tuple[int, ...]]:
    """Run `model(inputs)` once (eval mode, no gradients) and record the output shape of each named module.

    A module returning a tuple (e.g. features and pooling indices) is recorded by its first element.
    Works on the "meta" device too, where shapes are computed without any arithmetic.
    """
    shapes: dict[str, tuple[int, ...]] = {}

    def recorder(name: str):
        def hook(_module, _inputs, output):
            first = output[0] if isinstance(output, (tuple, list)) else output
            shapes[name] = tuple(first.shape)
        return hook

    hooks = [module.register_forward_hook(recorder(name)) for name, module in modules.items()]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(inputs)
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return shapes


def measure_latency(model: nn.Module, input_shape: tuple[int, ...], repeats: int = 5, warmup: int = 1) -> dict[str, float]:
    """Median and spread (min, max) of the forward time in milliseconds, in eval mode without gradients."""
    device = next(model.parameters()).device
    x = torch.rand(input_shape, device=device)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        stats = time_calls(lambda: model(x), device, repeats, warmup)
    model.train(was_training)
    return stats


def checkpoint_megabytes(model: nn.Module) -> float:
    """Size of the saved state_dict in MB (10^6 bytes), as a .pth file on disk would be."""
    return sum(t.numel() * t.element_size() for t in model.state_dict().values()) / 1e6


def grid_strength(maps: torch.Tensor, period: int = 2) -> float:
    """How much of a map's pixel-to-pixel variation repeats with a `period`-pixel grid (0: none, 1: all of it).

    Each map (N, C, H, W) is cut into period x period cells and each cell's mean is subtracted; what is left is
    averaged over all cells, position by position. A stride-2 transposed convolution that treats the four
    positions of a 2x2 cell differently leaves the same offsets in every cell, so they survive the averaging;
    real image content does not repeat every 2 pixels and averages out. Returns the RMS of the averaged offsets
    divided by the RMS of all offsets, averaged over maps.
    """
    if maps.dim() != 4:
        raise ValueError(f"grid_strength expects (N, C, H, W) maps, got shape {tuple(maps.shape)}")
    n, c, h, w = maps.shape
    h, w = h - h % period, w - w % period
    if h == 0 or w == 0:
        raise ValueError(f"maps of {tuple(maps.shape[-2:])} pixels are smaller than one {period}x{period} cell")
    cells = maps[..., :h, :w].double().reshape(n, c, h // period, period, w // period, period)
    offsets = cells - cells.mean(dim=(3, 5), keepdim=True)
    periodic = offsets.mean(dim=(2, 4))  # (N, C, period, period): the offset each cell position has on average
    total = offsets.pow(2).mean(dim=(2, 3, 4, 5)).sqrt()
    ratio = periodic.pow(2).mean(dim=(2, 3)).sqrt() / total.clamp_min(1e-12)
    return ratio.mean().item()
