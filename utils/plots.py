"""Plots the notebooks share: training curves, image grids with error maps, mask overlays, tables, and
architecture diagrams drawn from the model objects themselves (`draw_architecture`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from torch import nn

from utils.analysis import output_shapes, receptive_field
from utils.train import History

# Notebooks are committed with their figures and read on GitHub: 100 dpi is sharp there and keeps files small.
plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 100})


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


def show_as_jpeg(fig: plt.Figure, quality: int = 85) -> None:
    """Show a figure of photographs in the notebook as a JPEG and close it.

    Notebooks are committed with their figures; a panel of photo content is several times smaller as JPEG than as
    PNG (the inline default) at the same size, which keeps photo-heavy notebooks under the course's 2 MB.
    """
    import io

    from IPython.display import Image, display

    buffer = io.BytesIO()
    fig.savefig(buffer, format="jpeg", dpi=fig.dpi, pil_kwargs={"quality": quality})
    plt.close(fig)
    display(Image(data=buffer.getvalue(), format="jpeg"))


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


# ---------------------------------------------------------------------------------------------
# Architecture diagrams
# ---------------------------------------------------------------------------------------------
@dataclass
class Block:
    """One box of a U-shaped diagram: a name and the lines of text under it (shape, receptive field, ...)."""

    name: str
    lines: tuple[str, ...] = ()


def _shape_text(shape: tuple[int, ...]) -> str:
    """(1, C, H, W) -> 'C x H x W'."""
    return " x ".join(str(s) for s in shape[1:])


def draw_u(
    encoder: Sequence[Block],
    bridge: Block,
    decoder: Sequence[Block],
    skip: bool,
    title: str,
    inputs: Block | None = None,
    outputs: Block | None = None,
    residual: bool = False,
    side_outputs: Sequence[str] = (),
    down_label: str = "max-pool 2x2",
    up_label: str = "upsample x2",
    width: float = 11.0,
) -> plt.Figure:
    """Draw a U: encoder blocks down the left, the bridge at the bottom, decoder blocks up the right.

    `encoder[i]` and `decoder[i]` sit at level i (0 = full resolution); a dashed arrow joins them when
    `skip` (the skip connection). `residual` adds the RSU's "+ input" arrow; `side_outputs` names one
    output per decoder level plus the bridge (U^2-Net's S_1..S_6), fused into `outputs`.
    """
    depth = len(encoder)
    if len(decoder) != depth:
        raise ValueError(f"need one decoder block per encoder level, got {len(encoder)} and {len(decoder)}")
    fig, ax = plt.subplots(figsize=(width, 6))
    # Boxes as wide as their longest text line (bold names are wider per character than the small lines).
    every = [*encoder, bridge, *decoder, *(b for b in (inputs, outputs) if b is not None)]
    box_w = max(2.3, *(0.105 * len(b.name) + 0.3 for b in every), *(0.095 * len(line) + 0.3 for b in every for line in b.lines))
    box_h, dx, dy = 0.95, 0.55 * box_w, 1.35
    centre = depth * dx + box_w
    positions: dict[str, tuple[float, float]] = {}

    def box(block: Block, x: float, y: float, colour: str) -> None:
        ax.add_patch(FancyBboxPatch((x - box_w / 2, y - box_h / 2), box_w, box_h, boxstyle="round,pad=0.04",
                                    facecolor=colour, edgecolor="0.3", linewidth=0.8))
        ax.text(x, y + 0.2, block.name, ha="center", va="center", fontsize=8, fontweight="bold")
        ax.text(x, y - 0.15, "\n".join(block.lines), ha="center", va="center", fontsize=6.5, linespacing=1.2)

    def arrow(a: tuple[float, float], b: tuple[float, float], text: str = "", style: str = "-", colour: str = "0.25",
              text_offset: tuple[float, float] = (0.0, 0.0), rad: float = 0.0) -> None:
        ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=9, linestyle=style, color=colour,
                                     linewidth=1.0, connectionstyle=f"arc3,rad={rad}", shrinkA=0, shrinkB=0))
        if text:
            ax.text((a[0] + b[0]) / 2 + text_offset[0], (a[1] + b[1]) / 2 + text_offset[1], text, fontsize=6.5,
                    ha="center", va="center", color=colour, backgroundcolor="white")

    for level, block in enumerate(encoder):
        positions[f"e{level}"] = (box_w / 2 + level * dx, -level * dy)
        box(block, *positions[f"e{level}"], "#dbe9f6")
    positions["bridge"] = (centre, -depth * dy)
    box(bridge, *positions["bridge"], "#fde2c4")
    for level, block in enumerate(decoder):
        positions[f"d{level}"] = (2 * centre - box_w / 2 - level * dx, -level * dy)
        box(block, *positions[f"d{level}"], "#dff2d8")

    for level in range(depth):
        below = positions[f"e{level + 1}"] if level + 1 < depth else positions["bridge"]
        x, y = positions[f"e{level}"]
        arrow((x, y - box_h / 2), (below[0] - box_w / 4, below[1] + box_h / 2),
              down_label if level == 0 else "", text_offset=(-0.25 * box_w - 0.6, 0))
        above = positions[f"d{level}"]
        source = positions[f"d{level + 1}"] if level + 1 < depth else positions["bridge"]
        arrow((source[0] + box_w / 4, source[1] + box_h / 2), (above[0], above[1] - box_h / 2),
              up_label if level == 0 else "", text_offset=(0.25 * box_w + 0.6, 0))
        if skip:
            ex, ey = positions[f"e{level}"]
            dxx, _ = positions[f"d{level}"]
            arrow((ex + box_w / 2, ey), (dxx - box_w / 2, ey), "skip: concatenate" if level == 0 else "", style="--",
                  colour="#c0392b", text_offset=(0, 0.12))

    left, right = -0.3, 2 * centre + 0.3
    if inputs is not None:
        x, y = positions["e0"]
        positions["in"] = (x, y + dy)
        box(inputs, *positions["in"], "#eeeeee")
        arrow((x, y + dy - box_h / 2), (x, y + box_h / 2))
    if outputs is not None:
        x, y = positions["d0"]
        positions["out"] = (x, y + dy)
        box(outputs, *positions["out"], "#eeeeee")
        if not side_outputs:
            arrow((x, y + box_h / 2), (x, y + dy - box_h / 2))
    if residual and inputs is not None and outputs is not None:
        arrow((positions["in"][0] + box_w / 2, positions["in"][1]), (positions["out"][0] - box_w / 2, positions["out"][1]),
              "residual: + input features", colour="#8e44ad", text_offset=(0, 0.15))
    if side_outputs:
        sources = [positions[f"d{level}"] for level in range(depth)] + [positions["bridge"]]
        for name, (x, y) in zip(side_outputs, sources):
            target = (right + 0.9, y)
            arrow((x + box_w / 2, y), target, style=":", colour="#2c7fb8")
            ax.text(target[0] + 0.1, y, name, fontsize=7, va="center", color="#2c7fb8")
        if outputs is not None:
            ox, oy = positions["out"]
            ax.text(right + 1.0, oy, "fuse: 1x1 conv\nof all side maps", fontsize=6.5, va="center", color="#2c7fb8")
            arrow((right + 1.0, oy), (ox + box_w / 2, oy), colour="#2c7fb8")
        right += 2.6
    top = (positions.get("in") or positions.get("out") or positions["e0"])[1] + box_h
    left, right = left - 1.2, right + (0 if side_outputs else 1.2)  # room for the down and up labels
    ax.set_xlim(left, right)
    ax.set_ylim(-depth * dy - box_h, top)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=10)
    # Height follows the drawing's aspect ratio, so no empty band above or below it.
    fig.set_size_inches(width, width * (top + depth * dy + box_h) / (right - left) + 0.5)
    fig.tight_layout()
    return fig


def _unet_blocks(model: nn.Module, height: int, width: int) -> dict:
    """Blocks of the course UNet (utils.models.UNet) with shapes and encoder receptive fields."""
    layers = {"enc0": model.enc0, **{f"down{i + 1}": d for i, d in enumerate(model.downs)},
              **{f"up{i}": up for i, up in enumerate(reversed(model.ups))}, "head": model.head}
    shapes = output_shapes(model, layers, torch.zeros(1, model.in_channels, height, width))
    chain = [model.stem, model.enc0, *model.downs]
    encoder = [Block(f"level {i}: {'enc0' if i == 0 else f'down{i}'}",
                     (_shape_text(shapes["enc0" if i == 0 else f"down{i}"]), f"receptive field {receptive_field(chain[:i + 2])} px"))
               for i in range(model.depth)]
    bridge = Block(f"bottom: down{model.depth}", (_shape_text(shapes[f"down{model.depth}"]),
                                                  f"receptive field {receptive_field(chain)} px"))
    decoder = [Block(f"level {i}: ups[{model.depth - 1 - i}]", (_shape_text(shapes[f"up{i}"]),)) for i in range(model.depth)]
    head = getattr(model, "final_activation", None)
    return dict(encoder=encoder, bridge=bridge, decoder=decoder, skip=model.skip,
                inputs=Block("input", (f"{model.in_channels} x {height} x {width}",)),
                outputs=Block(f"head: 1x1 conv{f' + {head}' if head else ''}", (_shape_text(shapes["head"]),)),
                up_label=f"upsample x2 ({model.up_method})", title=f"UNet, depth {model.depth}, "
                f"{'with' if model.skip else 'without'} skip connections, for a {height}x{width} input")


def _vgg16_unet_blocks(model: nn.Module, height: int, width: int) -> dict:
    """Blocks of VGG16UNet: the five VGG16 stages (taps), four decoder blocks, the head."""
    layers = {**{f"stage{i + 1}": s for i, s in enumerate(model.encoder)},
              **{f"dec{i}": d for i, d in enumerate(reversed(model.decoder))}, "head": model.head}
    shapes = output_shapes(model, layers, torch.zeros(1, 3, height, width))
    depth = len(model.encoder) - 1
    variant = ", ".join((["BatchNorm"] if model.batch_norm else []) + ([f"width x{model.width:g}"] if model.width != 1 else []))
    encoder = [Block(f"VGG16 block{i + 1}", (_shape_text(shapes[f"stage{i + 1}"]),
                                             f"receptive field {receptive_field(model.encoder[:i + 1])} px"))
               for i in range(depth)]
    bridge = Block("VGG16 block5 (bridge)", (_shape_text(shapes[f"stage{depth + 1}"]),
                                             f"receptive field {receptive_field(model.encoder)} px"))
    decoder = [Block(f"decoder[{depth - 1 - i}]", (_shape_text(shapes[f"dec{i}"]),)) for i in range(depth)]
    return dict(encoder=encoder, bridge=bridge, decoder=decoder, skip=model.skip,
                inputs=Block("RGB image", (f"3 x {height} x {width}",)),
                outputs=Block("head: 1x1 conv + sigmoid", (_shape_text(shapes["head"]),)),
                up_label=("transposed conv 2x2, stride 2" if isinstance(model.decoder[0].up, nn.ConvTranspose2d)
                          else "bilinear x2 + 1x1 conv"),
                title=f"VGG16-UNet{f' ({variant})' if variant else ''}, {'with' if model.skip else 'without'} skip "
                      f"connections, for a {height}x{width} input")


def _u2net_blocks(model: nn.Module, height: int, width: int) -> dict:
    """Blocks of U2Net / U2NetP: En_i = stage{i}, De_i = stage{i}d, S_i = side{i}, with the paper's RSU-L names."""
    depth = model.depth
    names = [f"stage{i}" for i in range(1, depth + 1)] + [f"stage{i}d" for i in range(depth - 1, 0, -1)]
    shapes = output_shapes(model, {name: getattr(model, name) for name in names},
                           torch.zeros(1, model.in_ch, height, width))
    specs = dict(zip(names, model.stages))

    def block(name: str, paper: str) -> Block:
        spec = specs[name]
        kind = f"RSU-{spec.height}{'F' if spec.dilated else ''}({spec.in_ch}, {spec.mid_ch}, {spec.out_ch})"
        return Block(f"{paper} = {name}", (kind, _shape_text(shapes[name])))

    encoder = [block(f"stage{i}", f"En_{i}") for i in range(1, depth)]
    decoder = [block(f"stage{i}d", f"De_{i}") for i in range(1, depth)]
    return dict(encoder=encoder, bridge=block(f"stage{depth}", f"En_{depth}"), decoder=decoder, skip=True,
                inputs=Block("RGB image", (f"{model.in_ch} x {height} x {width}",)),
                outputs=Block("d0 (fused map)", (f"{model.out_ch} x {height} x {width}",)),
                side_outputs=[f"S_{i} = side{i} -> d{i}" for i in range(1, depth + 1)],
                title=f"{type(model).__name__}: an outer U of RSU blocks (paper names = code names), "
                f"for a {height}x{width} input")


def _rsu_blocks(block: nn.Module, height: int, width: int) -> dict:
    """Blocks of one RSU-L: rebnconv1..L-1 down, rebnconvL at the bottom, rebnconv{L-1}d..1d up, plus the residual."""
    L = block.height
    names = ["rebnconvin"] + [f"rebnconv{i}" for i in range(1, L + 1)] + [f"rebnconv{i}d" for i in range(L - 1, 0, -1)]
    in_ch = block.rebnconvin.conv_s1.in_channels
    shapes = output_shapes(block, {n: getattr(block, n) for n in names}, torch.zeros(1, in_ch, height, width))

    def conv(name: str) -> Block:
        dilation = getattr(block, name).conv_s1.dilation[0]
        return Block(name, (_shape_text(shapes[name]),) + ((f"dilation {dilation}",) if dilation > 1 else ()))

    residual = getattr(block, "residual", block.skip)
    kind = f"RSU-{L}{'F' if block.dilated else ''}"
    return dict(encoder=[conv(f"rebnconv{i}") for i in range(1, L)], bridge=conv(f"rebnconv{L}"),
                decoder=[conv(f"rebnconv{i}d") for i in range(1, L)], skip=getattr(block, "inner_skip", block.skip),
                inputs=Block("rebnconvin", ("input conv: " + _shape_text(shapes["rebnconvin"]),)),
                outputs=Block("output", ("rebnconv1d" + (" + rebnconvin" if residual else ""), _shape_text(shapes["rebnconv1d"]))),
                residual=residual, down_label="no pooling (dilation instead)" if block.dilated else "max-pool 2x2",
                up_label="" if block.dilated else "bilinear x2",
                title=f"{kind}: a small UNet inside one block, for a {in_ch} x {height} x {width} input")


def draw_architecture(model: nn.Module, height: int = 256, width: int | None = None) -> plt.Figure:
    """The U-shaped diagram of a course model (UNet, VGG16UNet, U2Net/U2NetP or one RSU block), with the shapes
    measured by running the model once on a zero image of the given size."""
    from utils.models import RSU, UNet, VGG16UNet
    from utils.models.u2net import U2NetBase

    width = width or height
    builders = {UNet: _unet_blocks, VGG16UNet: _vgg16_unet_blocks, U2NetBase: _u2net_blocks, RSU: _rsu_blocks}
    for kind, build in builders.items():
        if isinstance(model, kind):
            with torch.device("cpu"):
                spec = build(model, height, width)
            return draw_u(**spec)
    raise ValueError(f"no diagram for {type(model).__name__}; known: {', '.join(k.__name__ for k in builders)}")
