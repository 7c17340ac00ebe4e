"""Plots the notebooks share: training curves, image grids with error maps, mask overlays."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from utils.train import History

# Notebooks are committed with their figures and read on GitHub: a modest resolution keeps them small.
plt.rcParams.update({"figure.dpi": 72, "savefig.dpi": 72})


def to_image(tensor: torch.Tensor | np.ndarray, value_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """A (C, H, W) or (H, W) tensor in `value_range` as an (H, W, 3) or (H, W) float array in [0, 1]."""
    array = tensor.detach().float().cpu().numpy() if isinstance(tensor, torch.Tensor) else np.asarray(tensor, float)
    low, high = value_range
    array = (array - low) / (high - low)
    if array.ndim == 3:
        array = array[0] if array.shape[0] == 1 else np.moveaxis(array[:3], 0, -1)
    return np.clip(array, 0.0, 1.0)


def show_grid(
    columns: dict[str, Sequence],
    value_range: tuple[float, float] = (0.0, 1.0),
    cmap: dict[str, str] | None = None,
    size: float = 1.8,
    suptitle: str | None = None,
) -> plt.Figure:
    """One column per named list of images (rows are examples): inputs, predictions, targets, errors."""
    cmap = cmap or {}
    names = list(columns)
    rows = len(columns[names[0]])
    fig, axes = plt.subplots(rows, len(names), figsize=(size * len(names), size * rows), squeeze=False)
    for col, name in enumerate(names):
        for row, image in enumerate(columns[name]):
            ax = axes[row, col]
            picture = to_image(image, (0.0, 1.0) if name in cmap else value_range)
            ax.imshow(picture, cmap=cmap.get(name, "gray"), vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(name, fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def error_map(prediction: torch.Tensor, target: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Per-pixel absolute error averaged over channels, divided by `scale` so it fits in [0, 1]."""
    return ((prediction.float() - target.float()).abs().mean(dim=-3) / scale).clamp(0, 1)


def plot_histories(histories: dict[str, History], metrics: Sequence[str] = (), size: float = 3.6) -> plt.Figure:
    """Training loss (smoothed) and validation metrics of several runs, one panel each, runs overlaid."""
    panels = ["train loss", *metrics]
    fig, axes = plt.subplots(1, len(panels), figsize=(size * len(panels), size * 0.8), squeeze=False)
    for label, history in histories.items():
        window = max(1, len(history.train_loss) // 25)
        smooth = np.convolve(history.train_loss, np.ones(window) / window, mode="valid")
        axes[0, 0].plot(history.train_steps[window - 1 :], smooth, label=label)
        for ax, name in zip(axes[0, 1:], metrics):
            ax.plot(history.val_steps, history.val[name], marker="o", markersize=3, label=label)
    for ax, name in zip(axes[0], panels):
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0, 0].set_yscale("log")
    axes[0, -1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def overlay_mask(image: torch.Tensor, mask: torch.Tensor, color: tuple[float, float, float] = (1.0, 0.2, 0.2),
                 alpha: float = 0.45) -> np.ndarray:
    """Tint the pixels of `image` (3, H, W in [0, 1]) where `mask` (1, H, W) is on."""
    picture = to_image(image)
    weight = alpha * to_image(mask)[..., None]
    return picture * (1 - weight) + np.asarray(color) * weight


def format_table(rows: Sequence[Sequence], header: Sequence[str], floats: str = "{:.4f}") -> str:
    """A small aligned text table: first column left, the others right; floats with `floats`, ints with commas."""
    def cell(value) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return floats.format(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:,}"
        return str(value)

    text = [[cell(v) for v in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in text) for i in range(len(header))]
    lines = []
    for index, row in enumerate(text):
        cells = [row[0].ljust(widths[0])] + [c.rjust(width) for c, width in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells))
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def print_table(rows: Sequence[Sequence], header: Sequence[str], floats: str = "{:.4f}") -> None:
    """Print `format_table(rows, header, floats)`: the one table format of the notebooks and the benchmarks."""
    print(format_table(rows, header, floats))
