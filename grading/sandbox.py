"""Where a student's kernel runs: a scratch folder, inside bubblewrap when the machine has it, with limits.

Each notebook of each student gets a fresh scratch folder holding only what its code may see:

    scratch/course/utils/            a copy of the course code the notebooks import
    scratch/course/grading/          only grading/__init__.py and grading/checks.py (the check helpers)
    scratch/course/work/             the kernel's working folder (empty; HOME, caches and /tmp point here)
    scratch/run/                     the kernel's connection file and its IPC sockets

The solution notebooks, the hidden tests, other students' files and the gradebook are never copied there: the
grader keeps the notebook to run in its own memory and sends it cell by cell over the kernel protocol.

With bubblewrap (`bwrap`), the kernel sees a read-only view of the system folders and of the Python
installation, the scratch folder, a private /tmp, no network, and its own PID namespace: when the grader kills
the sandbox, every process the student started dies with it. Without bubblewrap the grader says so loudly; the
kernel then runs with the same scratch folder, limits and process-group kill, but it can read every file the
grader's user can read, so the source notebooks must not be readable by it (see README, "Grading").
"""
from __future__ import annotations

import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COURSE_PACKAGES = ("utils",)
CHECK_FILES = ("__init__.py", "checks.py")  # the only part of grading/ a kernel needs
SYSTEM_FOLDERS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc", "/opt")
MARKER = "UNET_GRADING_RUN"  # environment variable that names every process of one run (for the sweep)


@dataclass
class ResourceLimits:
    """Per-kernel limits; memory counts the data segment (heap and anonymous maps), not shared libraries."""

    memory_bytes: int = 6 * 1024**3
    cpu_seconds: int = 1800
    file_bytes: int = 512 * 1024**2

    def apply(self) -> None:
        """Set the limits in the calling process (used as Popen's preexec_fn, so they reach the kernel)."""
        for limit, value in ((resource.RLIMIT_DATA, self.memory_bytes), (resource.RLIMIT_CPU, self.cpu_seconds),
                             (resource.RLIMIT_FSIZE, self.file_bytes), (resource.RLIMIT_CORE, 0)):
            try:
                resource.setrlimit(limit, (value, value))
            except (ValueError, OSError):
                pass


_BWRAP_STATE: dict[str, object] = {}


def bwrap_problem() -> str:
    """'' when bubblewrap works on this machine, else why it does not (checked once per process)."""
    if "problem" not in _BWRAP_STATE:
        path = shutil.which("bwrap")
        if path is None:
            problem = "bubblewrap (bwrap) is not installed"
        else:
            try:
                probe = subprocess.run([path, *_bwrap_args(Path("/tmp"), Path("/tmp")), "true"],
                                       capture_output=True, text=True, timeout=30)
                problem = "" if probe.returncode == 0 else f"bwrap cannot create a sandbox here: " \
                                                          f"{(probe.stderr.strip() or 'exit ' + str(probe.returncode))[:200]}"
            except (OSError, subprocess.TimeoutExpired) as error:
                problem = f"bwrap failed: {error}"
        _BWRAP_STATE["problem"] = problem
    return str(_BWRAP_STATE["problem"])


def _bwrap_args(scratch: Path, workdir: Path) -> list[str]:
    """bwrap options: read-only system and Python, the scratch folder, nothing else; no network, own PIDs."""
    args = ["--die-with-parent", "--new-session", "--unshare-pid", "--unshare-net", "--unshare-ipc",
            "--unshare-uts", "--unshare-cgroup-try", "--hostname", "grading", "--cap-drop", "ALL"]
    for folder in SYSTEM_FOLDERS:
        path = Path(folder)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), folder]
        elif path.is_dir():
            args += ["--ro-bind", folder, folder]
    # The private /tmp comes before the Python binds: bwrap mounts in order, so a virtual environment that lives
    # under /tmp (a CI clone, say) is bound on top of the empty /tmp instead of being hidden by it.
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for prefix in sorted({sys.prefix, sys.base_prefix, sys.exec_prefix, *_site_folders()}):
        if not any(prefix.startswith(folder + "/") for folder in SYSTEM_FOLDERS):
            args += ["--ro-bind", prefix, prefix]
    args += ["--bind", str(scratch), str(scratch), "--chdir", str(workdir)]
    return args


def _site_folders() -> list[str]:
    """site-packages folders outside the prefixes (a user site, say) that the kernel's imports need."""
    import site

    folders = list(site.getsitepackages()) if hasattr(site, "getsitepackages") else []
    folders += [p for p in sys.path if p.endswith("site-packages")]
    prefixes = (sys.prefix, sys.base_prefix, sys.exec_prefix)
    return [f for f in folders if Path(f).is_dir() and not f.startswith(prefixes)]


class Scratch:
    """One scratch folder for one notebook run, with the course code copied in; removed by `close()`."""

    def __init__(self, course_root: Path = ROOT) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="grading-scratch-"))
        os.chmod(self.path, 0o755)
        self.course = self.path / "course"
        self.workdir = self.course / "work"
        self.run_dir = self.path / "run"
        for package in COURSE_PACKAGES:
            shutil.copytree(course_root / package, self.course / package,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        (self.course / "grading").mkdir(parents=True)
        for name in CHECK_FILES:
            shutil.copy2(course_root / "grading" / name, self.course / "grading" / name)
        self.workdir.mkdir()
        self.run_dir.mkdir()

    def hand_to(self, uid: int, gid: int) -> None:
        """Make the working folders writable by the kernel's user (without a sandbox, when run as root)."""
        for folder in (self.workdir, self.run_dir):
            os.chown(folder, uid, gid)

    def close(self) -> None:
        """Delete the scratch folder and everything the kernel wrote there."""
        shutil.rmtree(self.path, ignore_errors=True)


class KernelProcess:
    """A kernel started in a scratch folder, sandboxed when possible; `kill()` ends it and all it started."""

    def __init__(self, scratch: Scratch, connection_file: Path, environment: dict[str, str],
                 limits: ResourceLimits, use_sandbox: bool) -> None:
        self.scratch = scratch
        self.token = secrets.token_hex(12)
        self.sandboxed = use_sandbox
        environment = dict(environment)
        environment[MARKER] = self.token
        command = [sys.executable, "-m", "ipykernel_launcher", "-f", str(connection_file),
                   "--HistoryManager.enabled=False", "--IPKernelApp.quiet=True"]
        user = group = None
        if use_sandbox:
            command = [shutil.which("bwrap") or "bwrap", *_bwrap_args(scratch.path, scratch.workdir), *command]
        elif os.geteuid() == 0 and nobody_can_run_python():
            # No sandbox but root: at least run the student's code as `nobody`, so it cannot signal the grader
            # or write the instructor's files (it can still read world-readable ones).
            user, group = 65534, 65534
            scratch.hand_to(user, group)
        self.log_path = scratch.path / "kernel.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command, cwd=str(scratch.workdir), env=environment, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=limits.apply,
                user=user, group=group, extra_groups=[] if user is not None else None,
            )

    def alive(self) -> bool:
        """True while the kernel (or its sandbox) runs."""
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the kernel's process group (the whole PID namespace in the sandbox), then sweep stragglers."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        if not self.sandboxed:
            sweep(self.token)

    def log_tail(self, lines: int = 3) -> str:
        """The last lines the kernel wrote outside the protocol (start-up errors)."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])


def nobody_can_run_python() -> bool:
    """Whether this Python runs as `nobody` (not when it lives in root's home, say); checked once."""
    if "nobody" not in _BWRAP_STATE:
        try:
            probe = subprocess.run([sys.executable, "-c", "import ipykernel"], user=65534, group=65534,
                                   extra_groups=[], capture_output=True, timeout=60, cwd="/")
            _BWRAP_STATE["nobody"] = probe.returncode == 0
        except (OSError, subprocess.SubprocessError):
            _BWRAP_STATE["nobody"] = False
    return bool(_BWRAP_STATE["nobody"])


def processes_with(token: str) -> list[int]:
    """Processes whose environment carries this run's marker (double-forked daemons included)."""
    found = []
    needle = f"{MARKER}={token}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def sweep(token: str, rounds: int = 5) -> list[int]:
    """Kill every process of one run that escaped its process group (without a sandbox); return their pids."""
    killed: list[int] = []
    for _ in range(rounds):
        pids = processes_with(token)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.2)
    return killed
