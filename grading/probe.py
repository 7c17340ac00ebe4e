"""The integrity probe the grader runs inside a student's kernel (sent as source code; never imported there).

`probe()` returns a fingerprint of everything a check relies on: the identity of every builtin, of the check
helpers and their code, of the course modules and classes the hidden tests compare against, of PyTorch's and
NumPy's top-level functions, of IPython's and ipykernel's execution machinery (so a replaced `run_cell`,
`showtraceback` or reply sender shows), plus the hooks that could rewrite or swallow a cell: custom exception
handlers, input and AST transformers, event callbacks, import hooks and trace functions.

The grader takes one fingerprint before the first answer cell runs and compares every later one with it. An
in-process check can in principle be fooled by code that runs in the same process and imitates it; the
sandbox and the kept executed notebooks are the other lines of defence (see README, "Grading").
"""


def probe(modules, user_names, imports, classes):  # noqa: C901 (one self-contained function, sent as source)
    """Return repr((ids, flags)): ids {key: id} of what checks rely on; flags: hooks that should not be set."""
    import sys

    for name in imports:
        try:
            __import__(name)
        except Exception:  # noqa: BLE001 (a module the notebook does not manage to import is not our problem)
            pass
    ids, flags, function_type = {}, [], type(probe)

    def add(key, value):
        ids[key] = id(value)
        if type(value) is function_type:
            for attr in ("__code__", "__defaults__", "__kwdefaults__", "__globals__", "__closure__"):
                ids[key + "." + attr] = id(getattr(value, attr, None))
        for attr in ("__func__", "fget", "fset", "__wrapped__"):
            inner = getattr(value, attr, None) if type(value) is not type else None
            if inner is not None and type(inner) is function_type:
                ids[key + "." + attr] = id(inner)
                ids[key + "." + attr + ".__code__"] = id(inner.__code__)

    def add_class(prefix, cls):
        for key, value in list(vars(cls).items()):
            if key not in ("__dict__", "__weakref__", "__doc__", "__annotations__", "_abc_impl"):
                add("class:" + prefix + "." + key, value)

    def tracked(value):
        return callable(value) or type(value) is type(sys)

    builtins = sys.modules["builtins"]
    for key, value in list(vars(builtins).items()):
        if not key.startswith("_") and key not in ("display", "get_ipython", "input", "getpass"):
            add("builtins." + key, value)
    for name in modules:
        module = sys.modules.get(name)
        ids["sys.modules:" + name] = id(module)
        if module is None:
            continue
        for key, value in list(vars(module).items()):
            if tracked(value):
                add(name + "." + key, value)
                if type(value) is type and getattr(value, "__module__", "") == name:
                    add_class(name + "." + key, value)
    for dotted in classes:
        module_name, _, class_name = dotted.rpartition(".")
        cls = getattr(sys.modules.get(module_name), class_name, None)
        if type(cls) is type or isinstance(cls, type):
            add_class(dotted, cls)

    shell_module = sys.modules.get("IPython.core.interactiveshell")
    shell = shell_module.InteractiveShell._instance if shell_module else None
    if shell is not None:
        kernel = getattr(shell, "kernel", None)
        session = getattr(kernel, "session", None)
        objects = [("shell", shell), ("kernel", kernel), ("session", session)]
        for label, obj in objects:
            if obj is None:
                continue
            for cls in type(obj).__mro__:
                if cls is not object:
                    add_class(label + ":" + cls.__module__ + "." + cls.__qualname__, cls)
            for key, value in list(vars(obj).items()):
                if any(type(vars(cls).get(key)) is function_type for cls in type(obj).__mro__):
                    ids["class:instance:" + label + "." + key] = id(value)  # a method replaced on the object
        add_class("ExecutionResult", shell_module.ExecutionResult)
        if getattr(shell, "custom_exceptions", ()):
            flags.append("a custom exception handler is set (set_custom_exc)")
        for key in ("input_transformers_cleanup", "input_transformers_post", "ast_transformers"):
            ids["hooks:" + key] = repr([id(x) for x in getattr(shell, key, [])])
        manager = getattr(shell, "input_transformer_manager", None)
        for key in ("cleanup_transforms", "line_transforms", "token_transformers"):
            ids["hooks:manager." + key] = repr([id(x) for x in getattr(manager, key, [])])
        callbacks = getattr(getattr(shell, "events", None), "callbacks", {})
        for event in sorted(callbacks):
            ids["hooks:events." + event] = repr([id(x) for x in callbacks[event]])
        user_ns = shell.user_ns
        for name in user_names:
            ids["user:" + name] = id(user_ns.get(name))
    ids["hooks:meta_path"] = repr([id(x) for x in sys.meta_path])
    ids["hooks:path_hooks"] = repr([id(x) for x in sys.path_hooks])
    if sys.gettrace() is not None:
        flags.append("a trace function is set (sys.settrace)")
    if sys.getprofile() is not None:
        flags.append("a profile function is set (sys.setprofile)")
    threading = sys.modules.get("threading")
    if threading is not None and (getattr(threading, "_trace_hook", None) or getattr(threading, "_profile_hook", None)):
        flags.append("a thread trace or profile hook is set")
    return repr((ids, flags))
