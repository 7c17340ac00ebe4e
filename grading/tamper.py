"""Tampering: the integrity probe's baseline and comparison, and answers that use the course's reference code.

Two kinds of cheating score 0 for the exercises they touch, with a note saying what was found:

* **in-kernel tampering** (see grading/probe.py): replacing a check helper, a builtin, a course function the
  hidden tests compare against, or IPython's execution machinery; setting a custom exception handler, an input
  or AST transformer, a trace function. Found by comparing the probe's fingerprint with the one taken before the
  first answer cell; every test cell that ran while (or just before) the fingerprint differed scores 0;
* **answers that use the course's reference implementation** of what they were asked to write: found statically
  in the answer's source. Each answer cell of the source lists what it must not use in its metadata
  (`metadata.grading.forbidden`: dotted names of functions or classes, or modules meaning everything defined in
  them); a name is followed through every import in the notebook (`from utils.metrics import iou as helper`
  elsewhere, `import utils.metrics as m` and then `m.iou`, subclassing, re-exports) and compared by identity.
  Dynamic machinery that could hide such a use (`__import__`, `importlib`, `exec`, `eval`, `sys.modules`, ...)
  in an answer counts the same.
"""
from __future__ import annotations

import ast
import importlib
import inspect
import threading
import types
from typing import Any

from grading import probe as probe_module

BASE_MODULES = ("grading", "grading.checks", "torch", "torch.nn", "torch.nn.functional",
                "torch.nn.init", "torch.nn.modules.module", "numpy", "unittest.mock", "math", "functools", "copy")
BASE_CLASSES = ("torch.Tensor", "torch.nn.Module", "torch.nn.Parameter", "unittest.mock._patch")
SAFE_ROOTS = ("utils", "torch", "numpy", "torchvision", "grading", "math", "unittest", "functools")
SUSPICIOUS = {
    "__import__": "__import__", "importlib": "importlib", "exec": "exec", "eval": "eval", "compile": "compile",
    "globals": "globals()", "get_ipython": "get_ipython", "builtins": "builtins", "__builtins__": "__builtins__",
    "ctypes": "ctypes", "gc": "gc", "inspect": "inspect", "sys.modules": "sys.modules",
    "sys._getframe": "sys._getframe",
}
PROBE_SOURCE = inspect.getsource(probe_module.probe)
# CPython 3.11 can fail with "AST constructor recursion depth mismatch" when threads parse at the same time
# (students are graded in threads): one parse at a time.
_AST_LOCK = threading.Lock()


def probe_code(modules: list[str], user_names: list[str], imports: list[str], classes: list[str]) -> str:
    """The code of one probe run; its result is read back through the user expression `_grading_probe_`."""
    return (f"{PROBE_SOURCE}\n_grading_probe_ = probe({modules!r}, {user_names!r}, {imports!r}, {classes!r})\n"
            "del probe\n")


def parse_probe(text: str) -> tuple[dict[str, Any], list[str]] | None:
    """The (ids, flags) pair from the probe's user expression, or None if it is not what the probe returns."""
    try:
        with _AST_LOCK:
            ids, flags = ast.literal_eval(ast.literal_eval(text))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if not isinstance(ids, dict) or not isinstance(flags, list):
        return None
    return ids, [str(flag) for flag in flags]


def differences(baseline: dict[str, Any], now: dict[str, Any], flags: list[str], limit: int = 4) -> list[str]:
    """What changed since the baseline, in words (empty when nothing did)."""
    found = list(flags)
    for key, value in baseline.items():
        if now.get(key) != value:
            found.append(_describe(key, "removed" if key not in now else "replaced"))
    for key in now:
        if key not in baseline and (key.startswith("class:") or key.startswith("builtins.")):
            found.append(_describe(key, "added"))
    unique = list(dict.fromkeys(found))
    return unique[:limit] + ([f"and {len(unique) - limit} more"] if len(unique) > limit else [])


def _describe(key: str, how: str) -> str:
    if key.startswith("class:instance:"):
        return f"{key.removeprefix('class:instance:')} replaced on the object"
    name = key.removeprefix("class:").removeprefix("user:").removeprefix("hooks:")
    for suffix in (".__code__", ".__defaults__", ".__kwdefaults__", ".__globals__", ".__closure__"):
        if name.endswith(suffix):
            return f"{name.removesuffix(suffix)} modified ({suffix.strip('._')})"
    if key.startswith("hooks:"):
        return f"{name} changed"
    if key.startswith("user:"):
        return f"the notebook's `{name}` rebound"
    return f"{name} {how}"


# ------------------------------------------------------------------------------------------------------------
# Static analysis of answers
# ------------------------------------------------------------------------------------------------------------


def imported_names(sources: list[str]) -> dict[str, set[str]]:
    """{name: dotted targets} bound by the import statements of these cells (a name may be bound several ways)."""
    bindings: dict[str, set[str]] = {}
    for source in sources:
        tree = _parse(source)
        if tree is None:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        bindings.setdefault(alias.asname, set()).add(alias.name)
                    else:
                        root = alias.name.split(".")[0]
                        bindings.setdefault(root, set()).add(root)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    if alias.name != "*":
                        bindings.setdefault(alias.asname or alias.name, set()).add(f"{node.module}.{alias.name}")
    return bindings


def _parse(source: str) -> ast.Module | None:
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    try:
        with _AST_LOCK:
            return ast.parse("\n".join(lines))
    except SyntaxError:
        return None


def _dotted(node: ast.AST) -> list[str] | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(parts)]
    return None


def resolve(dotted: str) -> Any:
    """The object a dotted name stands for (importing course and library modules only), or None."""
    if dotted.split(".")[0] not in SAFE_ROOTS:
        return None
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value: Any = importlib.import_module(".".join(parts[:cut]))
        except Exception:  # noqa: BLE001 (not a module at this length: try a shorter prefix)
            continue
        for attr in parts[cut:]:
            value = getattr(value, attr, None)
            if value is None:
                return None
        return value
    return None


class Forbidden:
    """What one answer must not use: objects compared by identity, and modules meaning all they define."""

    def __init__(self, names: list[str]) -> None:
        self.names = list(names)
        self.objects: dict[int, str] = {}
        self.modules: dict[str, str] = {}
        for name in names:
            value = resolve(name)
            if isinstance(value, types.ModuleType):
                self.modules[value.__name__] = name
            elif value is not None:
                self.objects[id(value)] = name
        self._keep = [resolve(name) for name in names]  # keep ids valid

    def match(self, value: Any) -> str | None:
        """The forbidden name `value` is (or is defined in), or None."""
        if value is None:
            return None
        if id(value) in self.objects:
            return self.objects[id(value)]
        if isinstance(value, types.ModuleType):
            return self.modules.get(value.__name__)
        module = getattr(value, "__module__", None)
        if isinstance(module, str) and module in self.modules and not isinstance(value, (int, float, str, tuple)):
            return f"{self.modules[module]}.{getattr(value, '__name__', '?')}"
        return None

    def contains(self, module: Any) -> bool:
        """True for a module that holds something forbidden (passing it around hides what is used)."""
        if not isinstance(module, types.ModuleType):
            return False
        if module.__name__ in self.modules:
            return True
        return any(id(value) in self.objects for value in list(vars(module).values()))


def reference_uses(answer: str, notebook_sources: list[str], forbidden: Forbidden) -> list[str]:
    """Why `answer` counts as using the reference implementation (empty list: it does not)."""
    if not forbidden.names:
        return []
    tree = _parse(answer)
    if tree is None:
        return []
    bindings = imported_names(notebook_sources + [answer])
    found: list[str] = []

    def check(dotted_parts: list[str], whole_chain: bool) -> None:
        for target in bindings.get(dotted_parts[0], set()):
            full = ".".join([target, *dotted_parts[1:]])
            value = resolve(full)
            hit = forbidden.match(value)
            if hit:
                found.append(f"uses {hit} (the course's reference implementation)")
            elif whole_chain and forbidden.contains(value):
                found.append(f"passes the module {value.__name__} around (it holds the reference implementation)")

    attribute_roots: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and id(node) not in attribute_roots:
            parts = _dotted(node)
            inner = node.value
            while isinstance(inner, ast.Attribute):
                attribute_roots.add(id(inner))
                inner = inner.value
            if isinstance(inner, ast.Name):
                attribute_roots.add(id(inner))
            if parts:
                check(parts, whole_chain=False)
                if ".".join(parts[:2]) in SUSPICIOUS:
                    found.append(f"uses {SUSPICIOUS['.'.join(parts[:2])]} (not allowed in answers)")
        elif isinstance(node, ast.ImportFrom) and node.module and any(a.name == "*" for a in node.names):
            module = resolve(node.module)
            if forbidden.match(module) or forbidden.contains(module):
                found.append(f"star import from {node.module} (it holds the reference implementation)")
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for module in modules:
                if module.split(".")[0] in SUSPICIOUS:
                    found.append(f"imports {module} (not allowed in answers)")
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and id(node) not in attribute_roots:
            check([node.id], whole_chain=True)
            if node.id in SUSPICIOUS and node.id not in bindings:
                found.append(f"uses {SUSPICIOUS[node.id]} (not allowed in answers)")
        elif isinstance(node, ast.Name) and node.id in ("__import__", "exec", "eval", "compile", "globals",
                                                         "get_ipython", "__builtins__"):
            found.append(f"uses {node.id} (not allowed in answers)")
    return list(dict.fromkeys(found))
