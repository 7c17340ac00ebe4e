"""Background removal, side by side: rembg, the course's PyTorch path and its ONNX Runtime path.

Every path gets the same weights (one ONNX file, exported once with a free batch dimension, for rembg and for
ours), the same thread count and the same decoded photos (scikit-image's astronaut, coffee and chelsea), and
turns each photo into an RGBA cut-out in memory (no file I/O). Each round times every path once, in an order
that rotates from round to round, so that a noisy neighbour slows all of them alike; the report gives the
median images per second over the rounds and the ratio to rembg. It also compares the masks, in levels of 255:
ONNX Runtime against eager PyTorch, and ours against rembg's.

    .venv/bin/python -m benchmarks.background_removal --threads 2 --rounds 5 --json background_removal.json \\
        --rembg-site /tmp/rembg-venv/lib/python3.11/site-packages

rembg lives in its own virtual environment (``pip install "rembg[cli,cpu]"``); ``--rembg-site`` appends its
site-packages to ``sys.path`` (ours come first, so numpy, Pillow and onnxruntime are the course's). Without
rembg the reference is an onnxruntime session created as rembg creates it and fed exactly rembg's recipe
(``rembg recipe``). Without ``--weights-dir`` the models are randomly initialised (seed 0): the speed does not
depend on the weights, and the mask comparison is harsher than with trained weights (a random map has no clear
foreground, so min-max stretching magnifies every rounding difference).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from background_removal.export import export_onnx
from background_removal.fast import OnnxRemover, open_session
from background_removal.recipe import cutout, mask_levels
from background_removal.weights import MODEL_CLASSES, load_u2net, predict_mask
from benchmarks.common import machine_info, write_json

PHOTOS = ("astronaut", "coffee", "chelsea")


def load_photos(count: int) -> list[np.ndarray]:
    """`count` real RGB photos from scikit-image (cycled when more are asked for than there are)."""
    from skimage import data

    return [getattr(data, PHOTOS[i % len(PHOTOS)])() for i in range(count)]



REMBG_MEAN, REMBG_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # rembg's literals, copied with its code below


def rembg_normalize(img: Image.Image, size: int) -> np.ndarray:
    """rembg 2.0.86 sessions/base.py normalize(), verbatim: the (1, 3, size, size) network input rembg feeds."""
    im = img.convert("RGB").resize((size, size), Image.Resampling.LANCZOS)
    im_ary = np.array(im)
    im_ary = im_ary / max(np.max(im_ary), 1e-6)
    tmp = np.zeros((im_ary.shape[0], im_ary.shape[1], 3))
    for c in range(3):
        tmp[:, :, c] = (im_ary[:, :, c] - REMBG_MEAN[c]) / REMBG_STD[c]
    return np.expand_dims(tmp.transpose((2, 0, 1)), 0).astype(np.float32)


def rembg_finish(pred: np.ndarray, size_wh: tuple[int, int]) -> Image.Image:
    """rembg 2.0.86 sessions/u2net_custom.py predict() after the session run, verbatim: the mask at (width, height)."""
    ma, mi = np.max(pred), np.min(pred)
    pred = np.squeeze((pred - mi) / (ma - mi))
    mask = Image.fromarray((pred * 255).astype("uint8"), mode="L")
    return mask.resize(size_wh, Image.Resampling.LANCZOS)


def rembg_reference(onnx_path: Path, threads: int, rembg_site: str | None, size: int = 320):
    """(name, cut-out function on PIL images, mask function on PIL images) of real rembg, or of its recipe.

    rembg always feeds 320 x 320; at another `size` (the tests' toy size) only its recipe can be run.
    """
    if rembg_site and rembg_site not in sys.path:
        sys.path.append(rembg_site)
    try:
        if size != 320:
            raise ImportError("rembg runs 320 x 320 only")
        import onnxruntime as ort
        from rembg import new_session, remove

        # rembg's new_session sets both thread counts from OMP_NUM_THREADS; we pass the options it would build.
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = threads
        os.environ["U2NET_HOME"] = str(onnx_path.parent)  # recent rembg only loads custom models from there
        session = new_session("u2net_custom", model_path=str(onnx_path), sess_opts=options)
        return "rembg", (lambda img: remove(img, session=session)), (lambda img: session.predict(img)[0])
    except ImportError:
        pass

    session = open_session(onnx_path, threads)  # rembg's options (default optimisation level) and threads
    session_input = session.get_inputs()[0].name

    def rembg_mask(img: Image.Image) -> Image.Image:
        feed = {session_input: rembg_normalize(img, size)}
        return rembg_finish(session.run(None, feed)[0][:, 0, :, :], img.size)

    def rembg_cutout(img: Image.Image) -> Image.Image:
        mask = rembg_mask(img)  # rembg.remove's default naive_cutout:
        return Image.composite(img, Image.new("RGBA", img.size, 0), mask)

    return "rembg recipe", rembg_cutout, rembg_mask


def _run_paths(paths: dict[str, Callable[[], object]], rounds: int, count: int) -> dict[str, list[float]]:
    """Images per second of every path in every round, the order rotating from round to round."""
    names = list(paths)
    for name in names:  # warm-up: first-run allocations and ONNX Runtime's lazy initialisation
        paths[name]()
    rates: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            paths[name]()
            rates[name].append(count / (time.perf_counter() - start))
    return rates


def _difference(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return {"max_levels": int(diff.max()), "mean_levels": float(diff.mean())}


def _worst(diffs: list[dict[str, float]]) -> dict[str, float]:
    return {"max_levels": max(d["max_levels"] for d in diffs),
            "mean_levels": float(np.mean([d["mean_levels"] for d in diffs]))}


def benchmark_model(name: str, args: argparse.Namespace, photos: list[np.ndarray], folder: Path) -> dict:
    """Time every path for one model and compare its masks; returns the rows and the differences."""
    torch.manual_seed(0)
    weights = Path(args.weights_dir) / f"{name}.pth" if args.weights_dir else None
    if weights is not None:
        model, source = load_u2net(name, weights, device="cpu")
    else:
        model, source = MODEL_CLASSES[name]().eval(), "random initialisation (torch.manual_seed(0))"
    onnx_path = export_onnx(model, folder / name / f"{name}.onnx", size=args.size, dynamic_batch=True)

    pil_photos = [Image.fromarray(photo) for photo in photos]
    reference_name, reference_cutout, reference_mask = rembg_reference(onnx_path, args.threads, args.rembg_site, args.size)
    removers = {batch: OnnxRemover(onnx_path, threads=args.threads, batch_size=batch) for batch in args.batch}

    def ours_fast(remover: OnnxRemover) -> Callable[[], object]:
        return lambda: [cutout(photo, mask) for photo, mask in zip(photos, remover.predict_masks(photos))]

    paths: dict[str, Callable[[], object]] = {reference_name: lambda: [reference_cutout(p) for p in pil_photos]}
    if not args.no_eager:
        paths["torch eager"] = lambda: [cutout(photo, predict_mask(model, photo, size=args.size)) for photo in photos]
    for batch, remover in removers.items():
        paths[f"onnxruntime, batch {batch}"] = ours_fast(remover)
    torch.set_num_threads(args.threads)
    rates = _run_paths(paths, args.rounds, len(photos))

    reference_rate = statistics.median(rates[reference_name])
    rows = []
    for path_name, values in rates.items():
        per_round_ratio = [v / r for v, r in zip(values, rates[reference_name])]
        rows.append({
            "model": name, "path": path_name, "images_per_s": statistics.median(values),
            "min_images_per_s": min(values), "max_images_per_s": max(values),
            "ratio_to_reference": statistics.median(values) / reference_rate,
            "median_ratio_per_round": statistics.median(per_round_ratio),
        })

    # Mask agreement, in levels of 255 (what ends up in the alpha channel).
    eager = [mask_levels(predict_mask(model, photo, size=args.size)) for photo in photos]
    differences: dict[str, dict[str, float]] = {}
    reference = [np.asarray(reference_mask(p)) for p in pil_photos]
    for batch, remover in removers.items():
        fast = [mask_levels(m) for m in remover.predict_masks(photos)]
        differences[f"onnxruntime batch {batch} vs torch eager"] = _worst([_difference(f, e) for f, e in zip(fast, eager)])
        differences[f"onnxruntime batch {batch} vs {reference_name}"] = _worst(
            [_difference(f, r) for f, r in zip(fast, reference)])
    differences[f"torch eager vs {reference_name}"] = _worst([_difference(e, r) for e, r in zip(eager, reference)])
    return {"rows": rows, "differences": differences, "weights": source, "reference": reference_name}


def format_report(results: list[dict], threads: int) -> str:
    lines = [f"background removal, {threads} thread(s), images/s (median over rounds)", ""]
    lines.append(f"{'model':8} {'path':26} {'images/s':>9} {'x ref':>6}")
    for result in results:
        for row in result["rows"]:
            lines.append(f"{row['model']:8} {row['path']:26} {row['images_per_s']:9.2f} {row['ratio_to_reference']:6.2f}")
    lines.append("")
    lines.append("mask differences, levels of 255: max / mean over the photos")
    for result in results:
        for label, diff in result["differences"].items():
            model = result["rows"][0]["model"]
            lines.append(f"{model:8} {label:48} {diff['max_levels']:4d} / {diff['mean_levels']:.3f}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="u2netp,u2net", help="comma-separated: u2netp, u2net")
    parser.add_argument("--threads", type=int, default=2, help="threads for every path (default: 2)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per path (default: 5)")
    parser.add_argument("--images", type=int, default=3, help="photos per round (default: 3)")
    parser.add_argument("--batch", default="1,4", help="onnxruntime batch sizes to time (default: 1,4)")
    parser.add_argument("--size", type=int, default=320, help="network input size (rembg uses 320)")
    parser.add_argument("--weights-dir", default=None, help="folder with u2netp.pth / u2net.pth (default: random weights)")
    parser.add_argument("--rembg-site", default=None, help="site-packages folder of a virtual environment with rembg")
    parser.add_argument("--no-eager", action="store_true", help="skip the PyTorch eager path")
    parser.add_argument("--json", default=None, help="write the full report here")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    args.batch = [int(b) for b in str(args.batch).split(",")]
    unknown = [m for m in args.models if m not in MODEL_CLASSES]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {sorted(MODEL_CLASSES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    photos = load_photos(args.images)
    with tempfile.TemporaryDirectory(prefix="background-removal-bench-") as scratch:
        results = [benchmark_model(name, args, photos, Path(scratch)) for name in args.models]
    report = format_report(results, args.threads)
    if not args.quiet:
        print(report)
    if args.json:
        settings = {k: v for k, v in vars(args).items() if k not in ("json", "quiet")}
        write_json(args.json, {"settings": settings, "results": results, "machine": machine_info(torch.device("cpu")),
                               "photos": [PHOTOS[i % len(PHOTOS)] for i in range(args.images)]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
