"""Data-pipeline measurements (issue 18): crop throughput, listing, synthetic people, evaluation memory, threads.

    python -m benchmarks.data crops      # samples/s of 256-px DIV2K-sized crops: decode every time vs photo cache
    python -m benchmarks.data listing    # list_images (os.scandir) vs Path.iterdir + is_file on N files
    python -m benchmarks.data synthetic  # ms per synthetic-people picture (was a wall-clock test in tests/)
    python -m benchmarks.data memory     # peak host memory of notebook 01's evaluation at `gpu` profile sizes
    python -m benchmarks.data threads    # ms/step of 01's model, quiet and beside a busy process, per OMP policy
    python -m benchmarks.data all --json data.json

Each prints a small table; --json writes everything with the machine (usable cores, torch version).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------- crops
def _div2k_like_photo(path: Path, seed: int, size=(1356, 2040)) -> None:
    """A PNG with DIV2K's size and a photo's mix of smooth areas and texture (so decoding costs what it costs)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    h, w = size
    y, x = np.mgrid[:h, :w].astype(np.float32)
    base = np.stack([np.sin(x / (40 + 10 * c) + seed) * np.cos(y / (55 + 7 * c)) for c in range(3)], axis=2)
    pixels = 127 + 80 * base + rng.normal(0, 12, (h, w, 3))
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(path)


def crops(n_photos: int = 4, samples: int = 40, crop: int = 256) -> dict:
    """Samples/s of DenoisingDataset training crops from DIV2K-sized PNGs: no cache, first pass, cached."""
    from utils.data import cache
    from utils.data.natural import DenoisingDataset

    results = {}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        paths = []
        for i in range(n_photos):
            _div2k_like_photo(folder / f"{i:04d}.png", i)
            paths.append(folder / f"{i:04d}.png")
        os.environ[cache.CACHE_VARIABLE] = str(folder / "cache")
        for label, limit in (("decode every crop (before)", "0"), ("photo cache, first pass", None),
                             ("photo cache, warm (after)", None)):
            if limit is None:
                os.environ.pop(cache.LIMIT_VARIABLE, None)
            else:
                os.environ[cache.LIMIT_VARIABLE] = limit
            dataset = DenoisingDataset(paths, crop, samples_per_epoch=samples)
            count = samples if "first" not in label else n_photos  # first pass: one read per photo
            start = time.perf_counter()
            if "first" in label:
                for i in range(n_photos):
                    cache.cached_photo(paths[i])
            else:
                for i in range(count):
                    dataset[i]
            seconds = time.perf_counter() - start
            results[label] = {"samples": count, "seconds": seconds, "samples_per_s": count / seconds,
                              "ms_per_sample": 1e3 * seconds / count}
        os.environ.pop(cache.LIMIT_VARIABLE, None)
    return results


# ---------------------------------------------------------------------------------------------- listing
def listing(n_files: int = 20000) -> dict:
    from utils.data.images import IMAGE_SUFFIXES, list_images

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for i in range(n_files):
            (folder / f"{i:06d}.jpg").touch()
        start = time.perf_counter()
        old = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        before = time.perf_counter() - start
        start = time.perf_counter()
        new = list_images(folder)
        after = time.perf_counter() - start
        assert old == new
    return {"files": n_files, "iterdir_is_file_s (before)": before, "scandir_s (after)": after,
            "note": "local disk, warm metadata cache; network mounts (Colab's /kaggle/input) widen the gap"}


# ---------------------------------------------------------------------------------------------- synthetic
def synthetic(n: int = 20) -> dict:
    from utils.data.synthetic import make_synthetic_person_image

    out = {}
    for size in (64, 128, 256):
        make_synthetic_person_image(0, 0, size)
        start = time.perf_counter()
        for i in range(n):
            make_synthetic_person_image(0, i, size)
        out[f"{size} px"] = {"ms_per_picture": 1e3 * (time.perf_counter() - start) / n}
    return out


# ---------------------------------------------------------------------------------------------- memory
_MEMORY_SCENARIO = r"""
import resource, sys, torch
from torch.utils.data import DataLoader, Dataset
sys.path.insert(0, {root!r})
from utils.metrics import psnr, ssim
from utils.train import evaluate, predict
n, size, batch, mode = {n}, {size}, 16, {mode!r}
torch.set_num_threads(2)

class Crops(Dataset):   # 01's held-out set: (noisy, clean) crops in [-1, 1], made on the fly like DenoisingDataset
    def __len__(self): return n
    def __getitem__(self, i):
        if i >= n: raise IndexError(i)   # iterating the dataset itself (as 01 does for val_clean) stops here
        g = torch.Generator().manual_seed(i)
        clean = torch.rand(3, size, size, generator=g) * 2 - 1
        return (clean + 0.1 * torch.randn(3, size, size, generator=g)).clamp(-1, 1), clean

@torch.no_grad()
def old_predict(model, loader, device=None):   # utils.train.predict before issue 18: lists, then torch.cat
    columns = []
    for b in loader:
        p = model(b[0])
        row = [b[0], p, *b[1:]]
        columns = columns or [[] for _ in row]
        for c, t in zip(columns, row): c.append(t)
    return tuple(torch.cat(c) for c in columns)

models = {{label: torch.nn.Conv2d(3, 3, 3, padding=1) for label in ("with skips", "without skips")}}
loader = DataLoader(Crops(), batch_size=batch)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
p11 = lambda a, b: psnr(a, b, data_range=2.0)
if mode in ("before", "new predict"):   # the notebook's cells as committed (val_clean, predict x3, whole-set metrics)
    run = old_predict if mode == "before" else predict
    val_clean = torch.stack([c for _, c in Crops()])
    noisy, _, clean = run(models["with skips"], loader)
    outputs = {{k: run(m, loader)[1] for k, m in models.items()}}
    rows = [(psnr(o, clean, data_range=2.0), ssim(o, clean, data_range=2.0)) for o in outputs.values()]
else:   # recommended: scores batch by batch, pictures for the 8 shown only
    rows = [evaluate(m, loader, {{"psnr": p11, "ssim": lambda a, b: ssim(a, b, data_range=2.0)}}) for m in models.values()]
    noisy, _, clean = predict(models["with skips"], loader, limit=8)
    outputs = {{k: predict(m, loader, limit=8)[1] for k, m in models.items()}}
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(base / 2**20, peak / 2**20)
"""


def memory(n_full: int = 1600, size: int = 256, scaled: int = 200) -> dict:
    """Peak host memory (ru_maxrss, GiB) of notebook 01's held-out evaluation, each scenario in a fresh process.

    Every scenario runs at `scaled` crops (the recommended one also at 4x that, to show it does not grow), and the
    committed code ("before") is extrapolated linearly to `n_full` (1,600 crops of 256 px is 01 in the gpu profile:
    100 DIV2K held-out photos x 16 crops), so that the measurement itself does not take the machine's memory.
    """
    results = {}
    for mode, n in (("before", scaled), ("new predict", scaled), ("recommended", scaled), ("recommended", 4 * scaled)):
        code = _MEMORY_SCENARIO.format(root=str(ROOT), n=n, size=size, mode=mode)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        base, peak = map(float, done.stdout.split())
        results[f"{mode}, {n} crops"] = {"start_gib": base, "peak_gib": peak, "data_gib": peak - base}
    b = results[f"before, {scaled} crops"]
    results[f"before, {n_full} crops (extrapolated)"] = {
        "peak_gib": b["start_gib"] + b["data_gib"] * n_full / scaled, "extrapolated": True}
    return results


# ---------------------------------------------------------------------------------------------- threads
_STEP_SCENARIO = r"""
import sys, time, torch
sys.path.insert(0, {root!r})
from utils.models import UNet
torch.manual_seed(0)
model = UNet(3, 3, base_channels=16, final_activation="tanh").to(memory_format=torch.channels_last)
opt = torch.optim.Adam(model.parameters(), 1e-3)
x = torch.rand(8, 3, 96, 96).contiguous(memory_format=torch.channels_last)
times = []
for step in range({steps} + 2):
    start = time.perf_counter()
    loss = (model(x) - x).abs().mean()
    opt.zero_grad(); loss.backward(); opt.step()
    times.append(time.perf_counter() - start)
times = sorted(times[2:])
print(1e3 * times[len(times) // 2], torch.get_num_threads())
"""


def threads(steps: int = 8) -> dict:
    """ms/step (median) of notebook 01's `cpu`-profile model (UNet width 16, 96 px, batch 8), 2 threads.

    Quiet, and beside `python -c 'while True: pass'` pinned to core 0; with OpenMP's default wait policy (before)
    and OMP_WAIT_POLICY=PASSIVE (after). Each run is a fresh process (the policy is read when torch starts).
    """
    results = {}
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    for load in ("quiet", "busy"):
        hog = None
        if load == "busy":
            hog = subprocess.Popen(["taskset", "-c", str(cores[0]), sys.executable, "-c", "while True: pass"])
            time.sleep(0.5)
        try:
            for policy in ("default (before)", "PASSIVE (after)"):
                env = dict(os.environ)
                env.pop("OMP_WAIT_POLICY", None)
                if policy.startswith("PASSIVE"):
                    env["OMP_WAIT_POLICY"] = "PASSIVE"
                code = _STEP_SCENARIO.format(root=str(ROOT), steps=steps)
                done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
                ms, n_threads = done.stdout.split()
                results[f"{load}, {policy}"] = {"ms_per_step": float(ms), "threads": int(n_threads)}
        finally:
            if hog is not None:
                hog.kill()
                hog.wait()
    return results


# ---------------------------------------------------------------------------------------------- main
MEASUREMENTS = {"crops": crops, "listing": listing, "synthetic": synthetic, "memory": memory, "threads": threads}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.data", description=__doc__.split("\n")[0])
    parser.add_argument("what", nargs="+", choices=[*MEASUREMENTS, "all"])
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    import torch

    from utils.config import loader_workers, usable_cpus

    chosen = list(MEASUREMENTS) if "all" in args.what else args.what
    report = {"machine": {"usable_cpus": usable_cpus(), "loader_workers": loader_workers(),
                          "torch": torch.__version__, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY")}}
    for name in chosen:
        report[name] = MEASUREMENTS[name]()
        print(f"== {name}")
        print(json.dumps(report[name], indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
