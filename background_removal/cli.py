"""Command line background removal with U^2-Net: every input image becomes an RGBA PNG cut-out.

Usage::

    python -m background_removal photos/ extra.jpg --out cutouts/ --model u2netp
    python -m background_removal photos/ --out cutouts/ --model u2net --weights ~/Downloads/u2net.pth
    python -m background_removal photos/ --out cutouts/ --weights checkpoints/u2netp_people.pt --threshold 0.5
    python -m background_removal photos/ --out cutouts/ --engine onnxruntime --threads 2 --batch 4
    python -m background_removal photos/ --out cutouts/ --weights u2netp_course.onnx   # ONNX Runtime, no torch

Inputs may be image files or folders (the images directly inside them). Each one is written to
``OUT/<file stem>.png`` with a soft alpha (the probability map) or, with ``--threshold T``, a hard
0/255 alpha; an input that has an alpha channel keeps its transparent pixels transparent. ``--weights``
accepts the official ``u2net.pth`` / ``u2netp.pth``, a course checkpoint written by
``utils.train.save_checkpoint``, or an ``.onnx`` file (ours from ``background_removal.export``, or rembg's);
without it the weights are looked up in ``$U2NET_HOME`` or ``~/.u2net`` (see ``background_removal.weights``).

``--engine onnxruntime`` (the default for an ``.onnx`` file) runs the network with ONNX Runtime, 2 to 2.5
times faster than PyTorch on a CPU (README, "Background removal"); a PyTorch checkpoint is exported to ONNX
once and cached (``background_removal.fast``). Pre- and post-processing are rembg's for both engines
(``background_removal.recipe``).

Exit codes:

* 0: every image was cut out.
* 1: some images could not be read or written; they are named on stderr, all the others were written.
* 2: nothing was written (bad arguments, no inputs, missing or wrong weights, output folder not writable,
  or not one image could be read); no output folder is created.

Arguments are parsed and checked before torch, numpy or onnxruntime are imported, so ``--help`` and
usage errors answer at once.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from background_removal.names import DEFAULT_MODEL, MODEL_NAMES

ENGINES = ("torch", "onnxruntime")
DEFAULT_SIZE = 320


class UsageError(Exception):
    """A problem found before any image was processed: reported in one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the command (separate so that a notebook can print its --help)."""
    parser = argparse.ArgumentParser(
        prog="python -m background_removal",
        description="Cut the foreground out of images with U^2-Net and save RGBA PNGs.",
    )
    parser.add_argument("inputs", nargs="+", metavar="IN", help="image files and/or folders of images")
    parser.add_argument("--out", required=True, type=Path, help="folder for the <stem>.png cut-outs")
    parser.add_argument("--model", choices=MODEL_NAMES, default=DEFAULT_MODEL, help=f"network (default: {DEFAULT_MODEL})")
    parser.add_argument(
        "--weights", type=Path, default=None,
        help="official .pth, course checkpoint or .onnx file (default: $U2NET_HOME or ~/.u2net/<model>.pth)",
    )
    parser.add_argument(
        "--threshold", type=float, default=None,
        help="hard alpha: keep pixels with probability >= T (default: soft alpha)",
    )
    parser.add_argument(
        "--size", type=int, default=None,
        help=f"network input size (default: {DEFAULT_SIZE}, as in the paper and rembg; an .onnx file fixes its own)",
    )
    parser.add_argument(
        "--engine", choices=ENGINES, default=None,
        help="torch (eager PyTorch) or onnxruntime (faster on a CPU) (default: onnxruntime for an .onnx file, else torch)",
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for the network (default: the engine's)")
    parser.add_argument("--batch", type=int, default=1, help="images per network run with onnxruntime (default: 1)")
    return parser


def collect_inputs(inputs: list[str]) -> list[Path]:
    """Expand folders into their images, drop repeats, and refuse two inputs that would share an output name."""
    from background_removal.recipe import list_images  # numpy and Pillow only

    files: list[Path] = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            try:
                files.extend(list_images(path))
            except FileNotFoundError as err:
                raise UsageError(str(err)) from None
        elif path.is_file():
            files.append(path)  # an explicit file is tried whatever its suffix; reading decides
        else:
            raise UsageError(f"input not found: {path}")

    unique = list(dict.fromkeys(p.resolve() for p in files))
    if not unique:
        raise UsageError("no input images found")
    by_stem: dict[str, Path] = {}
    for path in unique:
        if path.stem in by_stem:
            # Both would be written to <stem>.png and the second would silently replace the first.
            raise UsageError(f"{by_stem[path.stem]} and {path} would both be saved as {path.stem}.png")
        by_stem[path.stem] = path
    return unique


def check_output_folder(out: Path, images: list[Path]) -> None:
    """Fail early, without creating anything, when `out` cannot become a writable folder for these images."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"output path exists and is not a folder: {out}")
    existing = out
    while not existing.exists():  # the nearest ancestor that exists is where mkdir would start
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"cannot create output folder {out}: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"output folder is not writable: {existing}")
    for path in images:
        target = out / f"{path.stem}.png"
        if target.resolve() == path:
            raise UsageError(f"the cut-out would overwrite its own input {path}: choose another --out folder")
        if target.is_dir():
            raise UsageError(f"cannot write {target}: a folder of that name is in the way")


def check_arguments(args: argparse.Namespace) -> str:
    """The cheap checks that need no image and no model; returns the engine to use."""
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise UsageError(f"--threshold must be between 0 and 1, got {args.threshold}")
    if args.size is not None and args.size < 32:
        raise UsageError(f"--size must be at least 32 pixels, got {args.size}")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be at least 1, got {args.threads}")
    if args.batch < 1:
        raise UsageError(f"--batch must be at least 1, got {args.batch}")
    is_onnx = args.weights is not None and args.weights.suffix.lower() == ".onnx"
    engine = args.engine or ("onnxruntime" if is_onnx else "torch")
    if is_onnx and engine == "torch":
        raise UsageError(f"{args.weights} is an ONNX model: run it with --engine onnxruntime (or give a .pth)")
    if is_onnx and args.size is not None:
        raise UsageError("--size cannot be used with an .onnx file: its input size was fixed when it was exported")
    return engine


def _load_engine(args: argparse.Namespace, engine: str):
    """(function list of RGB images -> list of masks, batch size, description); raises UsageError."""
    size = args.size or DEFAULT_SIZE
    if engine == "onnxruntime":
        from background_removal.fast import OnnxRemover, onnx_for_weights

        try:
            onnx_path, source = onnx_for_weights(args.model, args.weights, size=size)
        except (FileNotFoundError, ValueError) as err:
            raise UsageError(str(err)) from None
        try:
            remover = OnnxRemover(onnx_path, threads=args.threads, batch_size=args.batch)
        except Exception as err:  # onnxruntime reports a broken file with its own exception types
            raise UsageError(f"cannot load ONNX model {onnx_path}: {err}") from None
        return remover.predict_masks, remover.batch_size, f"{source} (onnxruntime)"

    import torch

    from background_removal.weights import load_u2net, predict_mask

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        model, source = load_u2net(args.model, args.weights)
    except (FileNotFoundError, ValueError) as err:
        raise UsageError(str(err)) from None
    return (lambda images: [predict_mask(model, image, size=size) for image in images]), 1, f"{source} (torch)"


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit code (0 all done, 1 some images failed, 2 nothing written)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # argparse has already printed the usage message
        return int(stop.code or 0)

    try:
        # Cheap checks first, so a typo costs nothing and leaves nothing behind.
        engine = check_arguments(args)
        images = collect_inputs(args.inputs)
        out = args.out.expanduser()
        check_output_folder(out, images)
        predict, batch_size, source = _load_engine(args, engine)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    from tqdm.auto import tqdm

    from background_removal.recipe import cutout, read_image
    from utils.cutout import save_png  # atomic PNG writes, creating the folder on the first one

    print(f"model: {source}", file=sys.stderr)
    failures: list[Path] = []
    written = 0
    progress = tqdm(total=len(images), desc="removing backgrounds", unit="image")
    for start in range(0, len(images), batch_size):
        batch = []
        for path in images[start:start + batch_size]:
            try:
                batch.append((path, *read_image(path)))
            except (ValueError, FileNotFoundError) as err:
                # One bad file should not cost the student the rest of a folder: note it and go on.
                failures.append(path)
                progress.write(f"skipped: {err}", file=sys.stderr)
                progress.update(1)
        masks = predict([rgb for _, rgb, _ in batch]) if batch else []
        for (path, rgb, alpha), mask in zip(batch, masks):
            target = out / f"{path.stem}.png"
            try:
                save_png(cutout(rgb, mask, alpha, threshold=args.threshold), target)
                written += 1
            except OSError as err:  # disk full, a folder appeared in the way, ...: named, and the rest go on
                failures.append(path)
                progress.write(f"error: cannot write {target}: {err}", file=sys.stderr)
            progress.update(1)
    progress.close()

    if written:
        print(f"wrote {written} cut-out(s) to {out}", file=sys.stderr)
    if failures:
        names = ", ".join(str(path) for path in failures)
        print(f"error: {len(failures)} of {len(images)} image(s) could not be read or written: {names}", file=sys.stderr)
        if not written:
            print("error: nothing was written", file=sys.stderr)
        return 1 if written else 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
