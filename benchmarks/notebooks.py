"""Notebook run times: execute notebooks top to bottom under a run profile; record wall time and pass/fail.

    python -m benchmarks.notebooks                                 # notebooks/*.ipynb, smoke profile
    python -m benchmarks.notebooks --profile cpu notebooks/01_unet_theory.ipynb --json times.json

Each notebook is executed from an in-memory copy with its own folder as the working directory (so its
setup cell finds `utils/` as it does in Jupyter); the executed copy is written to a temporary folder
(or `--output-dir`), and the committed notebook is only overwritten with `--inplace`.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import nbformat
from nbclient import NotebookClient

from benchmarks.common import machine_info, write_json
from utils.config import PROFILE_VARIABLE, PROFILES, get_device
from utils.plots import format_table

DEFAULT_PATTERN = "notebooks/*.ipynb"
REPO_ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables for the kernels started inside the block (they inherit ours), then restore."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _error_summary(error: Exception) -> str:
    """The exception's last line (e.g. 'RuntimeError: boom'), not the whole coloured traceback."""
    name = getattr(error, "ename", None) or type(error).__name__
    value = getattr(error, "evalue", None)
    if value is None:
        lines = [line for line in str(error).strip().splitlines() if line.strip()]
        value = lines[-1] if lines else ""
    return f"{name}: {value}".strip()


def _failed_cell(notebook: nbformat.NotebookNode) -> int | None:
    """Index of the first code cell whose outputs hold an error, i.e. where execution stopped."""
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code" and any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            return index
    return None


def run_notebook(
    path: str | Path,
    output_path: str | Path,
    *,
    timeout: int | None = 1800,
    kernel_name: str = "python3",
) -> dict[str, Any]:
    """Execute one notebook; write the executed copy to `output_path`; return status, seconds and any error."""
    path = Path(path).resolve()
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=timeout, kernel_name=kernel_name, resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    error: Exception | None = None
    try:
        client.execute()
    except Exception as caught:  # a failing cell, a timeout or a dead kernel all count as a failed run
        error = caught
    seconds = time.perf_counter() - start
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, output_path)
    return {
        "notebook": str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path),
        "status": "fail" if error else "pass",
        "seconds": seconds,
        "error": _error_summary(error) if error else None,
        "failed_cell": _failed_cell(notebook) if error else None,
        "code_cells": sum(cell.cell_type == "code" for cell in notebook.cells),
        "executed_copy": str(output_path),
    }


def run_notebooks(
    paths: Sequence[str | Path],
    profile: str,
    *,
    output_dir: str | Path | None = None,
    inplace: bool = False,
    timeout: int | None = 1800,
    kernel_name: str = "python3",
    offline: bool = True,
    log: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Run each notebook under `profile` (a fresh kernel each); return the report with machine and settings."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {profile!r}")
    results = []
    temporary = output_dir is None and not inplace
    with contextlib.ExitStack() as stack:
        if temporary:
            output_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="notebook-runs-"))
        variables = {PROFILE_VARIABLE: profile, "MPLBACKEND": "Agg"}
        if offline:
            variables["UNET_COURSE_OFFLINE"] = "1"
        stack.enter_context(environment(**variables))
        for path in paths:
            path = Path(path)
            target = path if inplace else Path(output_dir) / path.name
            if log:
                log(f"running {path} ({profile}) ...")
            result = run_notebook(path, target, timeout=timeout, kernel_name=kernel_name)
            if temporary:
                result["executed_copy"] = None  # the temporary folder goes away with this block
            results.append(result)
            if log:
                error = f": {result['error']}" if result["error"] else ""
                log(f"  {result['status']} in {result['seconds']:.1f} s{error}")
    return {
        "settings": {"profile": profile, "timeout_s": timeout, "kernel": kernel_name, "offline": offline,
                     "inplace": inplace, "output_dir": None if temporary or inplace else str(output_dir)},
        "machine": {**machine_info(get_device()), "kernel_python": sys.executable},
        "results": results,
        "passed": sum(r["status"] == "pass" for r in results),
        "failed": sum(r["status"] == "fail" for r in results),
        "total_seconds": sum(r["seconds"] for r in results),
    }


def results_table(results: Sequence[dict[str, Any]]) -> str:
    """One row per notebook: status, wall time and the error line of a failure."""
    return format_table(
        [[r["notebook"], r["status"], r["seconds"], r["error"] or ""] for r in results],
        ["notebook", "status", "seconds", "error"], floats="{:.4g}")


def build_parser() -> argparse.ArgumentParser:
    """The command-line options of `python -m benchmarks.notebooks`."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.notebooks", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help=f"notebooks to run (default: {DEFAULT_PATTERN})")
    parser.add_argument("--profile", choices=sorted(PROFILES),
                        default=os.environ.get(PROFILE_VARIABLE) or "smoke",
                        help=f"run profile for every notebook (default: ${PROFILE_VARIABLE} or smoke)")
    parser.add_argument("--json", dest="json_path", default=None, help="write the report to this JSON file")
    parser.add_argument("--output-dir", default=None,
                        help="keep the executed copies here (default: a temporary folder)")
    parser.add_argument("--inplace", action="store_true", help="write the outputs back into the notebooks themselves")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell before it counts as failed")
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel name (default python3)")
    parser.add_argument("--online", dest="offline", action="store_false",
                        help="let notebooks try downloads (default: UNET_COURSE_OFFLINE=1)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; the exit status is 1 when any notebook failed."""
    args = build_parser().parse_args(argv)
    if args.inplace and args.output_dir:
        raise SystemExit("--inplace and --output-dir exclude each other")
    paths = [Path(p) for p in args.notebooks] or sorted(REPO_ROOT.glob(DEFAULT_PATTERN))
    missing = [str(p) for p in paths if not p.is_file()]
    if missing or not paths:
        raise SystemExit(f"no such notebook: {', '.join(missing)}" if missing
                         else f"no notebooks match {DEFAULT_PATTERN}")
    report = run_notebooks(paths, args.profile, output_dir=args.output_dir, inplace=args.inplace,
                           timeout=args.timeout, kernel_name=args.kernel, offline=args.offline)
    print()
    print(results_table(report["results"]))
    machine = report["machine"]
    print(f"\n{report['passed']} passed, {report['failed']} failed, {report['total_seconds']:.1f} s in all | profile "
          f"{args.profile} | {machine['processor']}, {machine['usable_cores']} usable cores | torch {machine['torch']} "
          f"| device {machine['device']}")
    if args.json_path:
        print(f"wrote {write_json(args.json_path, report)}")
    return 1 if report["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
