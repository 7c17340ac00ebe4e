"""Talk to one student kernel over the Jupyter protocol: run a cell, wait for its reply, keep its outputs.

A cell passes only when the kernel's own `execute_reply` for that request says `ok` before the cell's time
limit. Outputs are matched to the request by its message id, so a cell that overran can never lend its outputs
(or its silence) to a later one: after a timeout or a dead kernel the grader throws the kernel away.
"""
from __future__ import annotations

import json
import queue
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from jupyter_client import BlockingKernelClient
from jupyter_client.connect import write_connection_file

from grading.sandbox import KernelProcess, ResourceLimits, Scratch

MAX_OUTPUT_CHARS = 100_000  # per cell: enough for any check's message, not for a print loop that never ends
IDLE_GRACE_S = 5.0  # after the reply: how long to wait for the last outputs of the cell


@dataclass
class CellRun:
    """What one execute request did: status 'ok' | 'error' | 'timeout' | 'dead', and the cell's outputs."""

    status: str
    ename: str = ""
    evalue: str = ""
    outputs: list = field(default_factory=list)
    seconds: float = 0.0
    user_expressions: dict = field(default_factory=dict)
    execution_count: int | None = None

    @property
    def stderr(self) -> str:
        """Everything the cell wrote to stderr."""
        return "".join(o.get("text", "") for o in self.outputs if o.get("output_type") == "stream"
                       and o.get("name") == "stderr")


class KernelSession:
    """A fresh kernel in a scratch folder (sandboxed when possible), driven over IPC sockets."""

    def __init__(self, scratch: Scratch, environment: dict[str, str], limits: ResourceLimits, use_sandbox: bool,
                 startup_timeout: float = 120.0) -> None:
        self.scratch = scratch
        connection_file = scratch.run_dir / f"kernel-{secrets.token_hex(4)}.json"
        # IPC sockets are files in the scratch folder: they work inside a sandbox without a network.
        write_connection_file(str(connection_file), ip=str(scratch.run_dir / "k"), transport="ipc",
                              key=secrets.token_hex(16).encode())
        self.process = KernelProcess(scratch, connection_file, environment, limits, use_sandbox)
        self.client = BlockingKernelClient()
        self.client.load_connection_file(str(connection_file))
        self.client.start_channels()
        deadline = time.monotonic() + startup_timeout
        while True:
            if not self.process.alive():
                raise RuntimeError(f"the kernel did not start: {self.process.log_tail() or 'no message'}")
            try:
                self.client.wait_for_ready(timeout=min(5.0, max(0.1, deadline - time.monotonic())))
                break
            except RuntimeError as error:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the kernel did not start within {startup_timeout:g} s") from error
        self._drain()

    def _drain(self) -> None:
        """Forget messages left from start-up."""
        for channel in (self.client.iopub_channel, self.client.shell_channel):
            while True:
                try:
                    channel.get_msg(timeout=0.05)
                except queue.Empty:
                    break

    def execute(self, code: str, timeout: float, silent: bool = False,
                user_expressions: dict[str, str] | None = None) -> CellRun:
        """Run `code`; return its reply status and outputs. Never waits past `timeout` (+ a short grace)."""
        started = time.monotonic()
        deadline = started + max(0.5, timeout)
        msg_id = self.client.execute(code, silent=silent, store_history=not silent,
                                     user_expressions=user_expressions or {}, allow_stdin=False, stop_on_error=False)
        outputs: list = []
        used = 0
        reply = None
        idle = False
        reply_time = None
        while not (reply is not None and idle):
            now = time.monotonic()
            if reply is None and now > deadline:
                return CellRun("timeout", outputs=outputs, seconds=now - started)
            if reply is not None and now > reply_time + IDLE_GRACE_S:
                break  # the reply counts; outputs still in flight are dropped
            if not self.process.alive():
                return CellRun("dead", outputs=outputs, seconds=now - started)
            try:
                message = self.client.iopub_channel.get_msg(timeout=0.05)
            except queue.Empty:
                message = None
            if message is not None and message.get("parent_header", {}).get("msg_id") == msg_id:
                kind, content = message["msg_type"], message["content"]
                if kind == "status":
                    idle = idle or content.get("execution_state") == "idle"
                elif kind in ("stream", "display_data", "execute_result", "error") and not silent:
                    size = len(json.dumps(content, default=str))
                    used += size
                    if used <= MAX_OUTPUT_CHARS:
                        try:
                            outputs.append(nbformat.v4.output_from_msg(message))
                        except ValueError:
                            pass
                    elif used - size <= MAX_OUTPUT_CHARS:
                        outputs.append(nbformat.v4.new_output("stream", name="stdout",
                                                              text="\n[grader: output truncated]\n"))
                elif kind == "clear_output" and not silent:
                    outputs = []
            if reply is None:
                try:
                    candidate = self.client.shell_channel.get_msg(timeout=0)
                except queue.Empty:
                    candidate = None
                if candidate is not None and candidate.get("parent_header", {}).get("msg_id") == msg_id:
                    reply, reply_time = candidate["content"], time.monotonic()
        status = reply.get("status", "error")
        result = CellRun("ok" if status == "ok" else "error", seconds=time.monotonic() - started, outputs=outputs,
                         user_expressions=reply.get("user_expressions", {}) or {},
                         execution_count=reply.get("execution_count"))
        if result.status == "error":
            result.ename = str(reply.get("ename", "Error"))[:200]
            result.evalue = str(reply.get("evalue", ""))[:2000]
        return result

    def close(self) -> None:
        """Stop the channels and kill the kernel with everything it started."""
        try:
            self.client.stop_channels()
        except Exception:  # noqa: BLE001 (closing must never fail)
            pass
        self.process.kill()


def connection_dir(scratch: Scratch) -> Path:
    """Where a session keeps its connection file and sockets."""
    return scratch.run_dir
