"""Run one notebook cell by cell in a fresh kernel, with time limits, and record what every cell did.

Started by the grader as its own process (`python -m grading.runner JOB.json`), so that a submission that hangs
or floods its output can be killed without taking the grader down. After every cell it rewrites RESULT.json
(named in the job), so whatever it got through survives even if it is killed.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import run_sync

PROBE_TIMEOUT_S = 15  # after interrupting a cell that ran over time: how long the kernel gets to answer again
MAX_OUTPUT_CHARS = 100_000  # per cell: enough for any check's message, not for a print loop that never ends


class CappedClient(NotebookClient):
    """A NotebookClient that keeps at most MAX_OUTPUT_CHARS of output per cell."""

    def output(self, outs, msg, display_id, cell_index):  # noqa: ANN001, ANN201 (nbclient's signature)
        """Count this output against the cell's budget; past it, drop the output and say so once."""
        used = getattr(self, "_output_chars", {})
        self._output_chars = used
        size = len(json.dumps(msg.get("content", {}), default=str))
        used[cell_index] = used.get(cell_index, 0) + size
        if used[cell_index] > MAX_OUTPUT_CHARS:
            if used[cell_index] - size <= MAX_OUTPUT_CHARS:
                outs.append(nbformat.v4.new_output("stream", name="stdout", text="\n[grader: output truncated]\n"))
            return None
        return super().output(outs, msg, display_id, cell_index)


def summarise(cell: nbformat.NotebookNode) -> dict:
    """What the grader needs from an executed cell: its error (if any) and what it wrote to stderr."""
    record: dict = {"status": "ok", "stderr": ""}
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            record.update(status="error", ename=output.get("ename", ""), evalue=str(output.get("evalue", ""))[:2000])
        elif output.get("output_type") == "stream" and output.get("name") == "stderr":
            record["stderr"] += output.get("text", "")[:2000]
    return record


def write_json(path: Path, data: dict) -> None:
    """Write atomically: the grader may read the file at any moment."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(temporary, path)


def run(job: dict) -> dict:
    """Execute the job's notebook; return {"cells": {index: record}, "kernel_pid": ..., "finished": bool}."""
    notebook = nbformat.read(job["notebook"], as_version=4)
    result_path = Path(job["result"])
    skip_tags = set(job.get("skip_tags", []))
    cell_timeout, total = float(job["cell_timeout"]), float(job["total_timeout"])
    deadline = time.monotonic() + total
    result: dict = {"cells": {}, "kernel_pid": None, "finished": False}
    client = CappedClient(
        notebook, timeout=int(cell_timeout), allow_errors=True, interrupt_on_timeout=False,
        record_timing=False, kernel_name=job.get("kernel_name", "python3"), startup_timeout=120,
        shutdown_kernel="immediate",  # a kernel still stuck in a student's loop would not shut down politely
        resources={"metadata": {"path": job["cwd"]}},
    )
    code_cells = [i for i, c in enumerate(notebook.cells) if c.cell_type == "code" and c.source.strip()
                  and not skip_tags & set(c.get("metadata", {}).get("tags", []))]

    def give_up(from_position: int, reason: str) -> None:
        for index in code_cells[from_position:]:
            result["cells"].setdefault(str(index), {"status": "not run", "reason": reason})

    try:
        with client.setup_kernel():
            provisioner = getattr(client.km, "provisioner", None)
            process = getattr(provisioner, "process", None)
            result["kernel_pid"] = getattr(process, "pid", None)
            write_json(result_path, result)
            for position, index in enumerate(code_cells):
                remaining = deadline - time.monotonic()
                if remaining < 1:
                    give_up(position, f"not run: the notebook's total time limit ({total:g} s) was used up")
                    break
                limit = max(1, int(min(cell_timeout, remaining)))
                client.timeout = limit
                try:
                    client.execute_cell(notebook.cells[index], index)
                    result["cells"][str(index)] = summarise(notebook.cells[index])
                except CellTimeoutError:
                    reason = (f"timed out (the cell time limit of {limit} s)" if limit >= cell_timeout
                              else f"timed out (the notebook's total time limit of {total:g} s ran out)")
                    result["cells"][str(index)] = {"status": "timeout", "reason": reason}
                    run_sync(client.km.interrupt_kernel)()  # nbclient's kernel manager is asynchronous
                    client.timeout = PROBE_TIMEOUT_S
                    probe = nbformat.v4.new_code_cell("pass")
                    try:
                        client.execute_cell(probe, index)
                    except (CellTimeoutError, DeadKernelError):
                        give_up(position + 1, "not run: the kernel did not recover from an earlier timeout")
                        break
                except DeadKernelError:
                    died = "the kernel died (out of memory, or the code exited Python)"
                    result["cells"][str(index)] = {"status": "error", "ename": "DeadKernelError", "evalue": died}
                    give_up(position + 1, "not run: the kernel died in an earlier cell")
                    break
                write_json(result_path, result)
            result["finished"] = True
    except Exception as error:  # kernel start-up or messaging failure: say so, keep what ran
        result["crash"] = f"{type(error).__name__}: {error}"[:2000]
        give_up(0, f"not run: {result['crash']}")
    write_json(result_path, result)
    return result


def main(argv: list[str] | None = None) -> int:
    """Entry point: `python -m grading.runner JOB.json`."""
    argv = sys.argv[1:] if argv is None else argv
    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    run(job)
    return 0


if __name__ == "__main__":
    sys.exit(main())
