"""What every benchmark report shares: a description of the machine and a plain-text table."""
from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import torch


def usable_cores() -> int:
    """CPU cores this process may run on (taskset and container limits included), not the machine's total."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo where there is one, else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: torch.device | None = None) -> dict[str, Any]:
    """Cores, torch version, threads and device name: enough to tell whether two reports are comparable."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": cpu_model(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "usable_cores": usable_cores(),
        "torch_threads": torch.get_num_threads(),
        "cuda_available": torch.cuda.is_available(),
    }
    if device is not None:
        info["device"] = str(device)
    if torch.cuda.is_available():
        index = device.index if device is not None and device.type == "cuda" and device.index is not None else 0
        info["gpu"] = torch.cuda.get_device_name(index)
        info["cuda"] = torch.version.cuda
        info["gpu_count"] = torch.cuda.device_count()
    return info


def write_json(path: str | Path, payload: dict) -> Path:
    """Write `payload` as indented JSON, creating the parent folder; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
