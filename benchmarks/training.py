"""Training speed of `utils.train.fit` as the notebooks use it: ms per step, channels_last off vs on.

    python -m benchmarks.training                       # the cpu profile's sizes, 2 rounds
    python -m benchmarks.training --profile gpu --steps 20 --json training.json

For each model (the course UNet, VGG16-UNet and U2NetP at the sizes and batch of the run profile) the two
memory layouts are timed in alternation, round after round, so that a change in machine load hits both
alike. Each timing is one `fit` call of `--steps` steps after a warm-up call; the first step's extra cost
(layout conversion, allocator warm-up) is part of the warm-up.
"""
from __future__ import annotations

import argparse
import statistics
from typing import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from benchmarks.common import machine_info, write_json
from utils.config import get_device, get_profile
from utils.losses import BCEDiceLoss, deep_supervision_loss
from utils.models import U2NetP, UNet, VGG16UNet
from utils.plots import format_table
from utils.train import fit

LAYOUTS = {"contiguous": False, "channels_last": True}


def course_models(profile_name: str | None) -> dict[str, tuple[Callable[[], nn.Module], int, int, Callable, int]]:
    """name -> (builder, image size, output channels, loss, batch) as the notebooks train them in the profile."""
    config = get_profile(profile_name)
    return {
        "UNet (01)": (lambda: UNet(3, 3, base_channels=config.base_channels), config.image_size, 3, nn.L1Loss(),
                      config.batch_size),
        "VGG16-UNet (02)": (lambda: VGG16UNet(pretrained=False), config.seg_image_size, 1, BCEDiceLoss(),
                            config.batch_size),
        "U2NetP (03)": (U2NetP, config.u2net_size, 1, deep_supervision_loss, config.batch_size),
    }


def time_fit(build: Callable[[], nn.Module], size: int, out_channels: int, loss_fn: Callable, batch: int,
             channels_last: bool, steps: int, device: torch.device) -> float:
    """Milliseconds per step of `fit` (after one warm-up call) for a freshly built model."""
    torch.manual_seed(0)
    model = build()
    inputs = torch.rand(batch * 2, 3, size, size)
    targets = (torch.rand(batch * 2, out_channels, size, size) > 0.5).float()
    loader = DataLoader(TensorDataset(inputs, targets), batch_size=batch)
    fit(model, loader, loss_fn, steps=2, device=device, channels_last=channels_last, progress=False)
    history = fit(model, loader, loss_fn, steps=steps, device=device, channels_last=channels_last, progress=False)
    return 1000 * history.seconds / steps


def main(argv: list[str] | None = None) -> int:
    """Measure, print the table, optionally write JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.training", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=None, help="run profile whose sizes to use (default: as setup() picks)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per fit call (default 5)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per layout (default 2)")
    parser.add_argument("--models", default=None, help="comma-separated subset of the model names' first word")
    parser.add_argument("--json", dest="json_path", default=None, help="write the report to this JSON file")
    args = parser.parse_args(argv)
    device = get_device()
    models = course_models(args.profile)
    if args.models:
        wanted = {name.strip().lower() for name in args.models.split(",")}
        models = {name: spec for name, spec in models.items() if name.split()[0].lower() in wanted}
    results = []
    for name, (build, size, out_channels, loss_fn, batch) in models.items():
        times: dict[str, list[float]] = {layout: [] for layout in LAYOUTS}
        for _ in range(args.rounds):
            for layout, channels_last in LAYOUTS.items():
                times[layout].append(time_fit(build, size, out_channels, loss_fn, batch, channels_last, args.steps, device))
        before, after = statistics.median(times["contiguous"]), statistics.median(times["channels_last"])
        results.append({"model": name, "size": size, "batch": batch, "contiguous_ms": before, "channels_last_ms": after,
                        "speedup": before / after, "all_ms": times})
        print(f"{name}: {before:.0f} -> {after:.0f} ms/step", flush=True)
    print(format_table([[r["model"], f"{r['size']}x{r['size']}", r["batch"], r["contiguous_ms"], r["channels_last_ms"],
                         f"{r['speedup']:.2f}x"] for r in results],
                       ["model", "size", "batch", "contiguous ms/step", "channels_last ms/step", "speed-up"],
                       floats="{:,.0f}"))
    if args.json_path:
        write_json(args.json_path, {"machine": machine_info(device), "steps": args.steps, "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
