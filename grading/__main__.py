"""Command line: `python -m grading generate | check | grade` (see `python -m grading --help`)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grading.assignment import generate
from grading.grader import ROOT, Limits, grade


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen command; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m grading", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    make = commands.add_parser("generate", help="write exercises/ from solutions/ (no answers, hidden tests, outputs)")
    make.add_argument("--source", type=Path, default=ROOT / "solutions")
    make.add_argument("--output", type=Path, default=ROOT / "exercises")

    check = commands.add_parser("check", help="exit 1 if exercises/ differs from what `generate` would write")
    check.add_argument("--source", type=Path, default=ROOT / "solutions")
    check.add_argument("--output", type=Path, default=ROOT / "exercises")

    run = commands.add_parser("grade", help="grade notebooks, student folders, or a folder of student folders")
    run.add_argument("submissions", type=Path, nargs="+",
                     help="a notebook (the student is its folder's name), a student's folder, or a folder of them")
    run.add_argument("--source", type=Path, default=ROOT / "solutions", help="solution notebook or folder")
    run.add_argument("--out", type=Path, default=None,
                     help="folder for gradebook.csv, summary.csv and, per student, the executed notebooks and "
                          "an HTML feedback page per notebook (created with mode 0700)")
    run.add_argument("--csv", type=Path, default=None, help="write the gradebook here (one row per exercise)")
    run.add_argument("--summary", type=Path, default=None,
                     help="write the per-student summary here (student, notebook, score, max score, time, status)")
    run.add_argument("--sandbox", choices=("auto", "require", "off"), default="auto",
                     help="run kernels in bubblewrap: auto (when it works, else a loud warning), require, off")
    run.add_argument("--memory-gb", type=float, default=6.0, help="memory limit of one kernel (default 6 GiB)")
    run.add_argument("--cell-timeout", type=float, default=120.0, help="seconds one cell may run (default 120)")
    run.add_argument("--timeout", type=float, default=600.0, help="seconds one notebook may run (default 600)")
    run.add_argument("--profile", default="smoke", help="UNET_COURSE_PROFILE for the kernels (default smoke)")
    run.add_argument("--jobs", type=int, default=1, help="students graded at the same time (default 1)")
    run.add_argument("--run-experiments", action="store_true",
                     help="also run the training experiments (ungraded; skipped by default to save time)")
    args = parser.parse_args(argv)

    if args.command in ("generate", "check"):
        changed = generate(args.source, args.output, write=args.command == "generate")
        expected = {path.name for path in changed}
        stale = sorted(p.name for p in args.output.glob("*.ipynb") if p.name not in expected)
        for path, differs in changed.items():
            if differs:
                print(f"{'wrote' if args.command == 'generate' else 'out of date'}: {path}")
        for name in stale:
            print(f"no source for {args.output / name} (delete it, or add solutions/{name})")
        if args.command == "check" and (any(changed.values()) or stale):
            print("exercises/ is not what `python -m grading generate` writes: run it and commit the result")
            return 1
        return 0

    limits = Limits(args.cell_timeout, args.timeout, args.profile, args.run_experiments, args.sandbox, args.memory_gb)
    try:
        rows = grade(args.submissions, args.source, args.csv, limits, jobs=args.jobs, out_dir=args.out,
                     summary_path=args.summary)
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    total, most = sum(r.points for r in rows), sum(r.max_points for r in rows)
    print(f"\n{len({r.student for r in rows})} student(s), {total:g} of {most:g} points in all"
          + (f"; gradebook: {args.csv or args.out / 'gradebook.csv'}" if args.csv or args.out else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
