"""Model speed: forward and forward+backward time of the course's models, as a table and as JSON.

    python -m benchmarks.models                                   # every model, default sizes and variants
    python -m benchmarks.models --models u2netp --size 64 --batch 1,2 --repeats 3 --json out.json
    python -m benchmarks.models --reference-size --json reference.json   # like-for-like with the reference figures

Sizes default to the standard ones (320x320 for U2Net/U2NetP, 256x256 otherwise). Each configuration is
warmed up, then timed `--repeats` times; the report gives the median, min, max and standard deviation in
milliseconds, images per second, parameters and forward FLOPs per image.

A variant is "eager" or a "+"-joined set of: channels_last, bf16, fp16 (autocast), compile (torch.compile).
bf16, fp16 and compile are timed on CUDA only; on other devices they are skipped with a note.
"""
from __future__ import annotations

import argparse
import copy
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch import nn

from benchmarks.common import machine_info, usable_cores, write_json
from utils.analysis import count_flops, time_calls
from utils.config import get_device, get_profile
from utils.models import U2Net, U2NetP, UNet, VGG16UNet, count_parameters
from utils.plots import format_table
from utils.train import autocast_context


@dataclass(frozen=True)
class ModelSpec:
    """How to build one benchmarked model and the input size it is usually run at."""

    build: Callable[[], nn.Module]
    size: int
    description: str


MODELS: dict[str, ModelSpec] = {
    "unet": ModelSpec(lambda: UNet(3, 3), 256, "UNet(3, 3): reference design, 64 to 1024 channels, depth 4"),
    # Random weights: loading ImageNet weights changes nothing about speed and may need the network.
    "vgg16unet": ModelSpec(lambda: VGG16UNet(pretrained=False), 256, "VGG16UNet(): VGG16 encoder, UNet decoder"),
    "u2net": ModelSpec(U2Net, 320, "U2Net(): the full U^2-Net"),
    "u2netp": ModelSpec(U2NetP, 320, "U2NetP(): the small U^2-Net-p"),
}

TIMING_KEYS = ("median_ms", "min_ms", "max_ms", "mean_ms", "std_ms", "first_call_ms", "images_per_s")
PASSES = ("forward", "forward_backward", "train_step")
PASS_HELP = {
    "forward": "eval mode, no gradients",
    "forward_backward": "train mode, forward + loss + backward",
    "train_step": "forward_backward + Adam step, as one step of utils.train.fit",
}
VARIANT_FEATURES = ("channels_last", "bf16", "fp16", "compile")
CPU_VARIANTS = ("eager", "channels_last")
CUDA_VARIANTS = (
    "eager", "channels_last", "bf16", "channels_last+bf16", "channels_last+fp16", "compile",
    "compile+channels_last+bf16",
)

# Forward at 1x3x320x320, torch 2.14.1, 2 threads, median, measured on the course's 2-core CPU machine.
REFERENCE_THREADS = 2
REFERENCE_SIZE = 320
REFERENCE_VARIANTS = ("eager", "channels_last")
REFERENCE_CPU_MS: dict[str, dict[str, Any]] = {
    "u2net": {"ms": 967.0, "model": "official U2NET (xuebinqin/U-2-Net)", "params": 44_009_869},
    "u2netp": {"ms": 453.0, "model": "official U2NETP (xuebinqin/U-2-Net)", "params": 1_131_181},
    "vgg16unet": {"ms": 530.0, "model": 'segmentation_models_pytorch Unet("vgg16")', "params": 23_748_241},
}


@dataclass(frozen=True)
class Variant:
    """One way of running a model: memory layout, autocast dtype and whether it is compiled."""

    name: str
    channels_last: bool = False
    dtype: torch.dtype | None = None
    compile: bool = False

    @property
    def needs_cuda(self) -> bool:
        """Autocast and compile are only timed on CUDA (see `skip_reason`)."""
        return self.dtype is not None or self.compile


def parse_variant(name: str) -> Variant:
    """'eager', or a '+'-joined set of channels_last, bf16, fp16 and compile, e.g. 'compile+channels_last+bf16'."""
    features = set() if name == "eager" else set(name.split("+"))
    unknown = features - set(VARIANT_FEATURES)
    if unknown or not features and name != "eager":
        raise ValueError(f"unknown variant {name!r}: use 'eager' or a '+'-joined set of {VARIANT_FEATURES}")
    if {"bf16", "fp16"} <= features:
        raise ValueError(f"variant {name!r} asks for both bf16 and fp16")
    dtype = torch.bfloat16 if "bf16" in features else torch.float16 if "fp16" in features else None
    return Variant(name, "channels_last" in features, dtype, "compile" in features)


def skip_reason(variant: Variant, device: torch.device) -> str | None:
    """Why `variant` is not timed on `device`, or None when it is."""
    if variant.needs_cuda and device.type != "cuda":
        return (
            f"{variant.name}: autocast and torch.compile are timed on CUDA only (CPU autocast is rarely faster "
            "in fp32-tuned kernels, and CPU compile needs a C++ toolchain and minutes per model)"
        )
    if variant.dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        return f"{variant.name}: this GPU has no bf16 support"
    return None


def parse_size(text: str) -> tuple[int, int]:
    """'256' -> (256, 256); '256x192' -> (256, 192) as (height, width)."""
    parts = text.lower().split("x")
    if len(parts) not in (1, 2) or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"size must be N or HxW with positive integers, got {text!r}")
    height = int(parts[0])
    return height, int(parts[-1])


def _scalar_loss(output: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """A cheap loss touching every output (all seven U2Net maps), in float32 like the course's losses."""
    outputs = [output] if isinstance(output, torch.Tensor) else list(output)
    return sum(o.float().mean() for o in outputs)


def make_step(model: nn.Module, x: torch.Tensor, variant: Variant, pass_name: str) -> Callable[[], None]:
    """A closure running one timed unit of work (`pass_name`) on `model` (already prepared for `variant`)."""
    device = x.device
    runner = torch.compile(model, dynamic=False) if variant.compile else model
    if pass_name == "forward":
        model.eval()

        def forward() -> None:
            with torch.no_grad(), autocast_context(device, variant.dtype):
                runner(x)

        return forward

    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4) if pass_name == "train_step" else None
    # As in fit(): fp16 needs loss scaling so that small gradients do not flush to zero.
    scaler = torch.amp.GradScaler(device.type, enabled=variant.dtype == torch.float16 and optimizer is not None)

    def forward_backward() -> None:
        model.zero_grad(set_to_none=True)
        with autocast_context(device, variant.dtype):
            output = runner(x)
        scaler.scale(_scalar_loss(output)).backward()
        if optimizer is not None:
            scaler.step(optimizer)
            scaler.update()

    return forward_backward


def prepare(base: nn.Module, variant: Variant, device: torch.device) -> nn.Module:
    """A fresh copy of `base` on `device` in the variant's memory layout, so variants never see each other's state."""
    model = copy.deepcopy(base).to(device)
    if variant.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def benchmark(
    models: Sequence[str],
    *,
    size: tuple[int, int] | None = None,
    batches: Sequence[int] = (1,),
    variants: Sequence[str] = ("eager",),
    passes: Sequence[str] = ("forward", "forward_backward"),
    repeats: int = 10,
    warmup: int = 2,
    device: torch.device | None = None,
    flops: bool = True,
    log: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Time every (model, variant, pass, batch) combination; return rows, skipped variants and settings."""
    if repeats < 1 or warmup < 1:
        raise ValueError(f"repeats and warmup must be at least 1, got {repeats} and {warmup}")
    unknown = [m for m in models if m not in MODELS] + [p for p in passes if p not in PASSES]
    if unknown:
        raise ValueError(f"unknown model or pass {unknown}: models are {list(MODELS)}, passes {list(PASSES)}")
    device = device or get_device()
    parsed = [parse_variant(v) for v in variants]
    skipped = [{"variant": v.name, "reason": r} for v in parsed if (r := skip_reason(v, device))]
    runnable = [v for v in parsed if not skip_reason(v, device)]
    rows: list[dict[str, Any]] = []
    for model_name in models:
        spec = MODELS[model_name]
        height, width = size or (spec.size, spec.size)
        torch.manual_seed(0)
        base = spec.build()
        params = count_parameters(base)
        gflops = count_flops(base.to(device), (1, 3, height, width)) / 1e9 if flops else None
        for variant in runnable:
            for pass_name in passes:
                for batch in batches:
                    if variant.compile:
                        torch._dynamo.reset()  # one compiled graph per configuration, never the recompile limit
                    model = prepare(base, variant, device)
                    x = torch.rand(batch, 3, height, width, device=device)
                    if variant.channels_last:
                        x = x.contiguous(memory_format=torch.channels_last)
                    if device.type == "cuda":
                        torch.cuda.reset_peak_memory_stats(device)
                    row = {"model": model_name, "variant": variant.name, "pass": pass_name, "batch": batch,
                           "height": height, "width": width, "repeats": repeats, "warmup": warmup,
                           "params": params, "gflops_per_image": gflops}
                    try:
                        stats = time_calls(make_step(model, x, variant, pass_name), device, repeats, warmup)
                    except Exception as error:  # e.g. out of memory at a big batch: report it, time the rest
                        row.update({key: None for key in TIMING_KEYS}, error=f"{type(error).__name__}: {error}")
                        message = f"FAILED ({row['error'].splitlines()[0][:120]})"
                    else:
                        row.update(stats, images_per_s=batch / (stats["median_ms"] / 1000), error=None)
                        message = f"{stats['median_ms']:9.2f} ms median"
                    on_cuda = device.type == "cuda"
                    row["peak_memory_mb"] = torch.cuda.max_memory_allocated(device) / 2**20 if on_cuda else None
                    rows.append(row)
                    if log:
                        log(f"{model_name:10s} {variant.name:28s} {pass_name:16s} batch {batch:3d}: {message}")
                    del model, x
                    if device.type == "cuda":
                        torch.cuda.empty_cache()  # a failed configuration must not starve the next one
        del base
    return {
        "settings": {
            "models": list(models), "size": list(size) if size else None, "batches": list(batches),
            "variants": list(variants), "passes": list(passes), "repeats": repeats, "warmup": warmup,
            "device": str(device), "threads": torch.get_num_threads(),
            "cudnn_benchmark": torch.backends.cudnn.benchmark, "pass_definitions": PASS_HELP,
        },
        "results": rows,
        "skipped": skipped,
        "best": best_variants(rows),
    }


def best_variants(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per model, pass and batch: the variant with the most images per second."""
    best: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        if row["error"]:
            continue
        key = (row["model"], row["pass"], row["batch"])
        if key not in best or row["images_per_s"] > best[key]["images_per_s"]:
            best[key] = row
    return [
        {"model": m, "pass": p, "batch": b, "variant": r["variant"], "median_ms": r["median_ms"],
         "images_per_s": r["images_per_s"]}
        for (m, p, b), r in best.items()
    ]


def results_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a text table: median with min-max spread, throughput, size of the model."""
    headers = ["model", "variant", "pass", "batch", "size", "median ms", "min ms", "max ms", "std ms", "img/s",
               "params", "GFLOPs/img"]
    return format_table(
        [
            [r["model"], r["variant"], r["pass"], r["batch"], f"{r['height']}x{r['width']}", r["median_ms"],
             r["min_ms"], r["max_ms"], r["std_ms"], r["images_per_s"], r["params"], r["gflops_per_image"]]
            for r in rows
        ],
        headers, floats="{:.4g}")


def reference_comparison(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Our fp32 forward times at 1x3x320x320 beside the reference figures, with the ratio ours / reference."""
    comparison = []
    for row in rows:
        reference = REFERENCE_CPU_MS.get(row["model"])
        like_for_like = not row["error"] and row["variant"] in REFERENCE_VARIANTS and (
            row["pass"], row["batch"], row["height"], row["width"]) == ("forward", 1, REFERENCE_SIZE, REFERENCE_SIZE)
        if reference and like_for_like:
            comparison.append({
                "model": row["model"], "variant": row["variant"], "ours_ms": row["median_ms"],
                "ours_params": row["params"],
                "reference_model": reference["model"], "reference_ms": reference["ms"],
                "reference_params": reference["params"], "ratio": row["median_ms"] / reference["ms"],
                "at_least_as_fast": row["median_ms"] <= reference["ms"],
            })
    return comparison


def comparison_table(comparison: Sequence[dict[str, Any]]) -> str:
    """The reference comparison as a text table."""
    return format_table(
        [[c["model"], c["variant"], c["ours_ms"], c["reference_ms"], c["ratio"],
          "yes" if c["at_least_as_fast"] else "NO", c["ours_params"], c["reference_params"], c["reference_model"]]
         for c in comparison],
        ["model", "variant", "ours ms", "reference ms", "ours/ref", "as fast?", "our params", "ref params",
         "reference"], floats="{:.4g}")


def _list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _int_list(text: str) -> list[int]:
    try:
        values = [int(item) for item in _list(text)]
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from error
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    """The command-line options of `python -m benchmarks.models`."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.models", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=_list, default=list(MODELS), help=f"comma-separated, from {list(MODELS)}")
    parser.add_argument("--size", type=parse_size, default=None,
                        help="N or HxW for every model (default: 320 for u2net/u2netp, 256 otherwise)")
    parser.add_argument("--batch", type=_int_list, default=None,
                        help="comma-separated batch sizes (default: 1 and the run profile's training batch)")
    parser.add_argument("--variants", type=_list, default=None,
                        help=f"comma-separated (default on CPU: {','.join(CPU_VARIANTS)}; "
                             f"on CUDA: {','.join(CUDA_VARIANTS)})")
    parser.add_argument("--passes", type=_list, default=None,
                        help=f"comma-separated from {list(PASSES)} (default: forward,forward_backward, "
                             "plus train_step on CUDA)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed runs per configuration (default: 10 on CUDA, 5 elsewhere)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2; at least 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: CUDA when present)")
    parser.add_argument("--no-flops", dest="flops", action="store_false", help="skip the FLOP count (one forward)")
    parser.add_argument("--no-cudnn-benchmark", dest="cudnn_benchmark", action="store_false",
                        help="leave torch.backends.cudnn.benchmark off (it is switched on by default)")
    parser.add_argument("--reference-size", action="store_true",
                        help=f"like-for-like with the reference figures: forward only, fp32 (eager and channels_last "
                             f"unless --variants says otherwise), batch 1, "
                             f"{REFERENCE_SIZE}x{REFERENCE_SIZE}, {REFERENCE_THREADS} CPU threads, "
                             f"models {','.join(REFERENCE_CPU_MS)}, on the CPU")
    parser.add_argument("--json", dest="json_path", default=None, help="write the full report to this JSON file")
    parser.add_argument("--quiet", action="store_true", help="no progress line per configuration")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit status."""
    args = build_parser().parse_args(argv)
    if args.reference_size:
        args.models = args.models if args.models != list(MODELS) else list(REFERENCE_CPU_MS)
        args.size, args.batch, args.passes = (REFERENCE_SIZE, REFERENCE_SIZE), [1], ["forward"]
        # Both fp32: eager is the like-for-like figure, channels_last the same maths in a faster memory layout.
        args.variants = args.variants or list(REFERENCE_VARIANTS)
        args.threads = args.threads or REFERENCE_THREADS
        args.device = "cpu"
    device = torch.device(args.device) if args.device else get_device()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    if device.type == "cpu" and torch.get_num_threads() > usable_cores():
        # More threads than cores makes threads wait on each other: the times would say little about the model.
        print(f"warning: {torch.get_num_threads()} threads on {usable_cores()} usable core(s); "
              "timings are not comparable with a run that has a core per thread")
    on_cuda = device.type == "cuda"
    variants = args.variants or list(CUDA_VARIANTS if on_cuda else CPU_VARIANTS)
    passes = args.passes or (list(PASSES) if on_cuda else ["forward", "forward_backward"])
    batches = args.batch or sorted({1, get_profile().batch_size})
    # A CPU training step at 256x256 and batch 8 takes tens of seconds: fewer repeats keep a full run near 30 min.
    repeats = args.repeats or (10 if on_cuda else 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # e.g. TF32 notices; they do not change the numbers
        report = benchmark(
            args.models, size=args.size, batches=batches, variants=variants, passes=passes, repeats=repeats,
            warmup=args.warmup, device=device, flops=args.flops, log=None if args.quiet else print,
        )
    report["machine"] = machine_info(device)
    report["settings"]["reference_size"] = args.reference_size
    print()
    print(results_table(report["results"]))
    for note in report["skipped"]:
        print(f"skipped {note['reason']}")
    for row in report["results"]:
        if row["error"]:
            print(f"failed {row['model']} {row['variant']} {row['pass']} batch {row['batch']}: {row['error'][:300]}")
    if len(variants) > 1:
        print("\nbest variant per model, pass and batch:")
        print(format_table([[b["model"], b["pass"], b["batch"], b["variant"], b["median_ms"], b["images_per_s"]]
                            for b in report["best"]], ["model", "pass", "batch", "best variant", "median ms", "img/s"], floats="{:.4g}"))
    comparison = reference_comparison(report["results"])
    if comparison:
        report["reference"] = {
            "note": (f"reference figures: forward at 1x3x{REFERENCE_SIZE}x{REFERENCE_SIZE}, torch 2.14.1, "
                     f"{REFERENCE_THREADS} threads, median, measured on the course's 2-core CPU machine; "
                     "the comparison is like for like only on that machine with the same threads; the reference "
                     "code runs eager (contiguous) fp32, so 'eager' is the strict comparison"),
            "comparison": comparison,
        }
        print(f"\nreference comparison ({report['reference']['note']}):")
        print(comparison_table(comparison))
    machine = report["machine"]
    print(f"\nmachine: {machine['processor']}, {machine['usable_cores']} usable cores, torch {machine['torch']}, "
          f"{machine['torch_threads']} threads, device {machine['device']}"
          + (f" ({machine['gpu']})" if on_cuda else ""))
    if args.json_path:
        print(f"wrote {write_json(args.json_path, report)}")
    return 1 if any(row["error"] for row in report["results"]) else 0


if __name__ == "__main__":
    raise SystemExit(main())
