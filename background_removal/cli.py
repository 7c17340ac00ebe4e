"""Command line background removal with U^2-Net: every input image becomes an RGBA PNG cut-out.

Usage::

    python -m background_removal photos/ extra.jpg --out cutouts/ --model u2netp
    python -m background_removal photos/ --out cutouts/ --model u2net --weights ~/Downloads/u2net.pth
    python -m background_removal photos/ --out cutouts/ --weights checkpoints/u2netp_people.pt --threshold 0.5

Inputs may be image files or folders (the images directly inside them). Each one is written to
``OUT/<file stem>.png`` with a soft alpha (the probability map) or, with ``--threshold T``, a hard
0/255 alpha. ``--weights`` accepts the official ``u2net.pth`` / ``u2netp.pth`` or a course checkpoint
written by ``utils.train.save_checkpoint``; without it the weights are looked up in ``$U2NET_HOME``
or ``~/.u2net`` (see ``background_removal.weights``).

Exit codes:

* 0: every image was cut out.
* 1: some images could not be read; they are named on stderr, all the others were written.
* 2: nothing was done (bad arguments, no inputs, missing or wrong weights, output folder not writable).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tqdm.auto import tqdm

from utils.cutout import make_cutout, save_png
from utils.data.images import list_images, load_rgb
from background_removal.weights import MODEL_CLASSES, load_u2net, predict_mask


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
    parser.add_argument("--model", choices=sorted(MODEL_CLASSES), default="u2netp", help="network (default: u2netp)")
    parser.add_argument(
        "--weights", type=Path, default=None,
        help="official .pth or course checkpoint (default: $U2NET_HOME or ~/.u2net/<model>.pth)",
    )
    parser.add_argument(
        "--threshold", type=float, default=None,
        help="hard alpha: keep pixels with probability >= T (default: soft alpha)",
    )
    parser.add_argument("--size", type=int, default=320, help="network input size (default: 320, as in the paper)")
    return parser


def collect_inputs(inputs: list[str]) -> list[Path]:
    """Expand folders into their images, drop repeats, and refuse two inputs that would share an output name."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            try:
                files.extend(list_images(path))
            except FileNotFoundError as err:  # list_images raises it for a folder without images
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


def check_output_folder(out: Path) -> None:
    """Fail early, without creating anything, when `out` cannot become a writable folder."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"output path exists and is not a folder: {out}")
    existing = out
    while not existing.exists():  # the nearest ancestor that exists is where mkdir would start
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"cannot create output folder {out}: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"output folder is not writable: {existing}")


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit code (0 all done, 1 some images unreadable, 2 nothing done)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # argparse has already printed the usage message
        return int(stop.code or 0)

    try:
        if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
            raise UsageError(f"--threshold must be between 0 and 1, got {args.threshold}")
        if args.size < 32:
            raise UsageError(f"--size must be at least 32 pixels, got {args.size}")
        # Cheap checks first, so a typo costs nothing and leaves nothing behind.
        images = collect_inputs(args.inputs)
        out = args.out.expanduser()
        check_output_folder(out)
        for path in images:
            if (out / f"{path.stem}.png").resolve() == path:
                raise UsageError(f"the cut-out would overwrite its own input {path}: choose another --out folder")
        try:
            model, source = load_u2net(args.model, args.weights)
        except (FileNotFoundError, ValueError) as err:
            raise UsageError(str(err)) from None
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UsageError(f"cannot create output folder {out}: {err}") from None
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    print(f"model: {source}", file=sys.stderr)
    failures: list[tuple[Path, str]] = []
    written = 0
    for path in tqdm(images, desc="removing backgrounds", unit="image"):
        try:
            image = load_rgb(path)
        except (ValueError, FileNotFoundError) as err:
            # One bad file should not cost the student the rest of a folder: note it and go on.
            failures.append((path, str(err)))
            tqdm.write(f"skipped: {err}", file=sys.stderr)
            continue
        probability = predict_mask(model, image, size=args.size)
        try:
            save_png(make_cutout(image, probability, threshold=args.threshold), out / f"{path.stem}.png")
        except OSError as err:  # disk full, folder removed meanwhile: every later write would fail too
            print(f"error: cannot write {out / (path.stem + '.png')}: {err}", file=sys.stderr)
            return 2
        written += 1

    print(f"wrote {written} cut-out(s) to {out}", file=sys.stderr)
    if failures:
        names = ", ".join(str(path) for path, _ in failures)
        print(f"error: could not read {len(failures)} of {len(images)} image(s): {names}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
