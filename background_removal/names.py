"""The model names the command accepts, without importing torch (so that --help answers at once).

``background_removal.weights.MODEL_CLASSES`` maps the same names to the classes; a test keeps them equal.
"""
MODEL_NAMES: tuple[str, ...] = ("u2net", "u2netp")
DEFAULT_MODEL = "u2netp"
