"""Check the course on a CUDA machine in under 8 minutes and write a report.

    python -m tools.verify_cuda                       # on a machine with an NVIDIA GPU
    python -m tools.verify_cuda --report cuda.md      # where the report goes (also cuda.json beside it)

Three parts, each with its own time limit (they add up to `--budget`, 480 s by default):

1. the device unit tests (mixed precision, profiles, training loop) on the real GPU;
2. nbval over every notebook (notebooks/, solutions/, exercises/) on the CUDA kernel, in the `smoke` profile;
3. a `gpu`-profile probe: ms per training step and peak GPU memory of the course models at the sizes the
   profile picks for this GPU, the autocast dtype chosen, and the samples/s of the data loaders.

Paste the report's table into README ("Measured run times") and commit it. Without CUDA it stops and says so
(`--allow-cpu` runs the same plan on the CPU with tiny sizes: what the tests do).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BUDGET_S = 480
# Shares of the budget: unit tests, nbval, probe (the rest is start-up and slack).
SHARES = {"unit tests": 0.15, "nbval": 0.6, "probe": 0.2}
DEVICE_TESTS = ["tests/test_train_devices.py", "tests/test_train.py", "tests/test_config.py"]
NOTEBOOK_FOLDERS = ["notebooks", "solutions", "exercises"]


@dataclass
class Step:
    name: str
    command: list[str]
    timeout_s: int
    env: dict = field(default_factory=dict)


@dataclass
class Outcome:
    name: str
    returncode: int | None
    seconds: float
    passed: bool
    timed_out: bool
    tail: str


def plan(budget_s: int = DEFAULT_BUDGET_S, python: str = sys.executable, probe_args: tuple[str, ...] = ()) -> list[Step]:
    """The three steps with their time limits, which together stay within `budget_s`."""
    env = {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "10000",
           "UNET_COURSE_OFFLINE": os.environ.get("UNET_COURSE_OFFLINE", "1")}
    return [
        Step("unit tests", [python, "-m", "pytest", "-q", "-p", "no:nbval", "-o", "addopts=", *DEVICE_TESTS],
             int(budget_s * SHARES["unit tests"]), env),
        Step("nbval", [python, "-m", "pytest", "-q", "--nbval-lax", "--nbval-cell-timeout=120", "-o",
                       "addopts=-p no:cacheprovider", *NOTEBOOK_FOLDERS], int(budget_s * SHARES["nbval"]), env),
        Step("probe", [python, "-m", "tools.verify_cuda", "--probe-only", *probe_args],
             int(budget_s * SHARES["probe"]), {**env, "UNET_COURSE_PROFILE": "gpu"}),
    ]


def run_step(step: Step) -> Outcome:
    start = time.perf_counter()
    try:
        done = subprocess.run(step.command, cwd=ROOT, env={**os.environ, **step.env}, capture_output=True,
                              text=True, timeout=step.timeout_s)
        code, text, timed_out = done.returncode, done.stdout + done.stderr, False
    except subprocess.TimeoutExpired as err:
        out = err.stdout.decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
        code, text, timed_out = None, out + f"\n[stopped after {step.timeout_s} s]", True
    return Outcome(step.name, code, time.perf_counter() - start, code == 0, timed_out, text[-4000:])


# ---------------------------------------------------------------------------------------------- the probe
def probe(device_name: str | None = None, steps: int = 10, quick: bool = False) -> dict:
    """ms/step and peak memory of the course models at the gpu profile's sizes, dtype, loader samples/s."""
    import torch
    from torch.utils.data import DataLoader

    from utils.config import get_profile, loader_workers, usable_cpus
    from utils.data.natural import DenoisingDataset, get_natural_images
    from utils.data.person import SyntheticPeopleDataset
    from utils.models import U2NetP, UNet, VGG16UNet
    from utils.train.devices import autocast_context, autocast_dtype

    device = torch.device(device_name or ("cuda" if torch.cuda.is_available() else "cpu"))
    config = get_profile("gpu")
    if quick:  # the CPU check of this code path: tiny sizes
        config = get_profile("smoke", num_workers=0)
        steps = 2
    dtype = autocast_dtype(device)
    info = {"device": str(device), "profile": config.to_dict(), "autocast_dtype": str(dtype), "usable_cpus": usable_cpus(),
            "loader_workers": config.num_workers if not quick else 0, "torch": torch.__version__}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, capability=list(torch.cuda.get_device_capability(device)),
                    gpu_memory_gib=round(props.total_memory / 2**30, 1))
    b = config.batch_size
    models = {
        "01 UNet": (lambda: UNet(3, 3, base_channels=config.base_channels, final_activation="tanh"), 3, config.image_size),
        "02 VGG16UNet": (lambda: VGG16UNet(pretrained=False), 3, config.seg_image_size),
        "03 U2NetP": (lambda: U2NetP(), 3, config.u2net_size),
    }
    timings = {}
    for label, (make, channels, size) in models.items():
        model = make().to(device).to(memory_format=torch.channels_last)
        optimizer = torch.optim.Adam(model.parameters(), 1e-4)
        scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
        x = torch.rand(b, channels, size, size, device=device).contiguous(memory_format=torch.channels_last)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times = []
        for step in range(steps + 2):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            with autocast_context(device, dtype):
                out = model(x)
            out = out[0] if isinstance(out, (tuple, list)) else out
            loss = out.float().mean()
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - start)
        times = sorted(times[2:])
        timings[label] = {"batch": b, "size": size, "ms_per_step": round(1e3 * times[len(times) // 2], 1)}
        if device.type == "cuda":
            timings[label]["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        del model, optimizer, x
    info["train_steps"] = timings
    workers = info["loader_workers"]
    train_photos, _, _ = get_natural_images("skimage", verbose=False)
    loaders = {
        "01 denoising crops": DenoisingDataset(train_photos, config.image_size, samples_per_epoch=b * 8),
        "02 synthetic people": SyntheticPeopleDataset(b * 8, config.seg_image_size, augment=True),
    }
    rates = {}
    for label, dataset in loaders.items():
        loader = DataLoader(dataset, batch_size=b, num_workers=workers)
        start = time.perf_counter()
        n = sum(batch[0].shape[0] for batch in loader)
        rates[label] = {"samples_per_s": round(n / (time.perf_counter() - start), 1), "workers": workers}
    info["loaders"] = rates
    return info


# ---------------------------------------------------------------------------------------------- report
def write_report(outcomes: list[Outcome], probe_result: dict | None, path: Path) -> Path:
    """Markdown for people (README-ready table) and JSON beside it for tools."""
    lines = [f"# CUDA verification ({time.strftime('%Y-%m-%d %H:%M')}, {platform.node()})", ""]
    lines += ["| part | result | seconds |", "|---|---|---:|"]
    for o in outcomes:
        result = "passed" if o.passed else ("TIMED OUT" if o.timed_out else f"FAILED (exit {o.returncode})")
        lines.append(f"| {o.name} | {result} | {o.seconds:.0f} |")
    if probe_result:
        lines += ["", f"Device: {probe_result.get('gpu', probe_result['device'])}, capability "
                      f"{probe_result.get('capability')}, {probe_result.get('gpu_memory_gib')} GiB; autocast dtype "
                      f"{probe_result['autocast_dtype']}; gpu profile: {probe_result['profile'].get('sized_for')}", ""]
        lines += ["| model | batch | size | ms/step | peak GPU memory (GiB) |", "|---|---:|---:|---:|---:|"]
        for label, t in probe_result["train_steps"].items():
            lines.append(f"| {label} | {t['batch']} | {t['size']} | {t['ms_per_step']} | {t.get('peak_gpu_memory_gib', '')} |")
        lines += ["", "| loader | samples/s | workers |", "|---|---:|---:|"]
        for label, r in probe_result["loaders"].items():
            lines.append(f"| {label} | {r['samples_per_s']} | {r['workers']} |")
    failed = [o for o in outcomes if not o.passed]
    for o in failed:
        lines += ["", f"## {o.name}: last lines", "```", o.tail[-2000:], "```"]
    path.write_text("\n".join(lines) + "\n")
    path.with_suffix(".json").write_text(json.dumps(
        {"steps": [asdict(o) for o in outcomes], "probe": probe_result}, indent=1))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.verify_cuda", description=__doc__.split("\n")[0])
    parser.add_argument("--report", type=Path, default=ROOT / "cuda_report.md")
    parser.add_argument("--budget", type=int, default=DEFAULT_BUDGET_S, help="seconds for all three parts")
    parser.add_argument("--allow-cpu", action="store_true", help="run without CUDA (tiny sizes; for testing)")
    parser.add_argument("--probe-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--only", choices=list(SHARES), action="append", help="run only these parts")
    args = parser.parse_args(argv)
    if args.probe_only:
        print(json.dumps(probe(quick=args.quick)))
        return 0
    import torch

    if not torch.cuda.is_available() and not args.allow_cpu:
        print("No CUDA device: this check needs an NVIDIA GPU and a CUDA build of PyTorch "
              f"(torch {torch.__version__}, torch.version.cuda={torch.version.cuda}). Nothing was run.", file=sys.stderr)
        return 2
    probe_args = ("--quick",) if args.allow_cpu and not torch.cuda.is_available() else ()
    outcomes, probe_result = [], None
    for step in plan(args.budget, probe_args=probe_args):
        if args.only and step.name not in args.only:
            continue
        print(f"{step.name}: up to {step.timeout_s} s ...", flush=True)
        outcome = run_step(step)
        outcomes.append(outcome)
        print(f"  {'passed' if outcome.passed else 'FAILED'} in {outcome.seconds:.0f} s", flush=True)
        if step.name == "probe" and outcome.passed:
            probe_result = json.loads(outcome.tail.strip().splitlines()[-1])
    path = write_report(outcomes, probe_result, args.report)
    print(f"report: {path} (and {path.with_suffix('.json').name})")
    return 0 if all(o.passed for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
