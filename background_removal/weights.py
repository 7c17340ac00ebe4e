"""Load the released U^2-Net weights and run them with the official pre- and post-processing.

Where the weights come from
---------------------------
The authors (xuebinqin/U-2-Net, README "Usage for salient object detection") publish two PyTorch
checkpoints on Google Drive (and Baidu Pan), both trained on DUTS-TR:

* ``u2net.pth``  (README: 176.3 MB), the full model:
  https://drive.google.com/file/d/1ao1ovG1Qtx4b7EoskHXmi2E9rp5CHLcZ/view?usp=sharing
* ``u2netp.pth`` (README: 4.7 MB), the small model:
  https://drive.google.com/file/d/1rbSTGKAE-MTxBYHd-51l2hMOQPT_7EPy/view?usp=sharing

The README gives the sizes but no checksums. The byte counts and SHA-256 values in
``OFFICIAL_WEIGHTS`` below are the ones several independent projects report for these two files;
they are used only to *label* a file as the official release, never to refuse one (a fine-tuned
checkpoint is just as loadable).

rembg's GitHub release (``github.com/danielgatis/rembg/releases/download/v0.0.0/u2net.onnx``, ``u2netp.onnx``)
holds ONNX conversions of the same networks. They work with rembg / onnxruntime directly but are not
PyTorch checkpoints, so ``load_u2net`` cannot read them.

Where to put them
-----------------
``load_u2net(weights=None)`` looks for ``<model_name>.pth`` in ``$U2NET_HOME`` if that variable is set,
else in ``~/.u2net/`` (the folder rembg also uses, for its ``.onnx`` files).

Example::

    model, source = load_u2net("u2netp")             # ~/.u2net/u2netp.pth
    probability = predict_mask(model, load_rgb("cat.jpg"))  # (H, W) floats in [0, 1]
"""
from __future__ import annotations

import hashlib
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from background_removal.names import MODEL_NAMES
from background_removal.recipe import REMBG_SIZE, finish, prepare
from utils.config import get_device
from utils.models.u2net import U2Net, U2NetBase, U2NetP

HOME_VARIABLE = "U2NET_HOME"
MODEL_CLASSES: dict[str, type[U2NetBase]] = {"u2netp": U2NetP, "u2net": U2Net}
assert sorted(MODEL_CLASSES) == sorted(MODEL_NAMES), "background_removal.names lists the same models"


@dataclass(frozen=True)
class ReleasedWeights:
    """What is known about one official checkpoint file."""

    file_name: str
    readme_size: str  # as the official README writes it
    size_bytes: int  # reported by third parties, matches the README's size
    sha256: str  # reported by third parties; the official README publishes no checksum
    download_url: str


OFFICIAL_WEIGHTS: dict[str, ReleasedWeights] = {
    "u2net": ReleasedWeights(
        file_name="u2net.pth",
        readme_size="176.3 MB",
        size_bytes=176_290_937,
        sha256="10025a17f49cd3208afc342b589890e402ee63123d6f2d289a4a0903695cce58",
        download_url="https://drive.google.com/file/d/1ao1ovG1Qtx4b7EoskHXmi2E9rp5CHLcZ/view?usp=sharing",
    ),
    "u2netp": ReleasedWeights(
        file_name="u2netp.pth",
        readme_size="4.7 MB",
        size_bytes=4_683_258,
        sha256="e7567cde013fb64813973ce6e1ecc25a80c05c3ca7adbc5a54f3c3d90991b854",
        download_url="https://drive.google.com/file/d/1rbSTGKAE-MTxBYHd-51l2hMOQPT_7EPy/view?usp=sharing",
    ),
}


def weights_folder() -> Path:
    """The folder searched when no weights path is given: $U2NET_HOME, else ~/.u2net."""
    return Path(os.environ.get(HOME_VARIABLE) or "~/.u2net").expanduser()


def default_weights_path(model_name: str = "u2netp") -> Path:
    """Where `load_u2net(model_name)` looks when called without a weights path."""
    return weights_folder() / OFFICIAL_WEIGHTS[_check_model_name(model_name)].file_name


def download_hint(model_name: str) -> str:
    """A few lines telling a student where to download the official weights and where to put them."""
    info = OFFICIAL_WEIGHTS[model_name]
    return (
        f"Download the official {info.file_name} ({info.readme_size}) from the U-2-Net README "
        f"(https://github.com/xuebinqin/U-2-Net):\n  {info.download_url}\n"
        f"and save it as {default_weights_path(model_name)} "
        f"(or set ${HOME_VARIABLE} to the folder that holds it, or pass its path explicitly)."
    )


def _check_model_name(model_name: str) -> str:
    """Return `model_name` if it is one we can build, else raise a ValueError listing the choices."""
    if model_name not in MODEL_CLASSES:
        raise ValueError(f"model_name must be one of {sorted(MODEL_CLASSES)}, got {model_name!r}")
    return model_name


def _expected_shapes(model_name: str) -> dict[str, tuple[int, ...]]:
    """State-dict key -> shape of a model, built on the meta device so that no memory is allocated."""
    with torch.device("meta"):
        model = MODEL_CLASSES[model_name]()
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def _fits(state: dict[str, torch.Tensor], expected: dict[str, tuple[int, ...]]) -> bool:
    """True when `state` has exactly the expected keys with the expected shapes."""
    return state.keys() == expected.keys() and all(tuple(state[k].shape) == expected[k] for k in expected)


def _mismatch_summary(state: dict[str, torch.Tensor], expected: dict[str, tuple[int, ...]]) -> str:
    """Which keys are missing, unexpected or of the wrong shape (first few of each)."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} vs {expected[k]}" for k in expected
             if k in state and tuple(state[k].shape) != expected[k]]
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
        if items:
            shown = ", ".join(items[:3]) + (", ..." if len(items) > 3 else "")
            parts.append(f"{len(items)} {label} ({shown})")
    return "; ".join(parts)


def _read_checkpoint(path: Path, model_name: str) -> object:
    """torch.load with weights_only=True, turning every way a file can be broken into one clear ValueError."""
    with path.open("rb") as handle:
        head = handle.read(64).lstrip()
    if head[:1] == b"<":
        # Google Drive answers large downloads with an HTML "can't scan for viruses" page; saving that
        # page under the .pth name is the most common broken download.
        raise ValueError(
            f"{path} is a web page, not PyTorch weights: the download saved Google Drive's HTML page. "
            f"Open the link in a browser and confirm the download.\n{download_hint(model_name)}"
        )
    if path.suffix.lower() == ".onnx":
        raise ValueError(
            f"{path} is an ONNX model (for rembg / onnxruntime), not a PyTorch checkpoint.\n{download_hint(model_name)}"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling errors have many types (EOFError, RuntimeError, UnpicklingError, ...)
        raise ValueError(_unreadable_message(path, model_name, err)) from err


def _unreadable_message(path: Path, model_name: str, err: Exception) -> str:
    """Why torch.load failed, in our words: torch's own text suggests weights_only=False, which is not the fix."""
    info = OFFICIAL_WEIGHTS[model_name]
    refused = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
    if refused and zipfile.is_zipfile(path):
        # A readable checkpoint that stores Python objects besides tensors (an optimizer config, a custom
        # class): unpickling those could run code, so only the tensors are worth having.
        return (
            f"{path} is a PyTorch file but stores Python objects other than tensors ({refused.group(1)}), "
            f"which are not loaded because unpickling them can run code. Save the model's state_dict "
            f"(or a checkpoint from utils.train.save_checkpoint) and pass that file."
        )
    size = path.stat().st_size
    return (
        f"{path} is corrupt or truncated: it cannot be read as PyTorch weights ({size:,} bytes; the official "
        f"{info.file_name} is about {info.readme_size}). Download it again.\n{download_hint(model_name)}"
    )


def _extract_state_dict(payload: object, path: Path) -> tuple[dict[str, torch.Tensor], str]:
    """Find the state_dict inside a raw, DataParallel or course checkpoint; also say which format it was."""
    kind = "state_dict"
    state = payload
    if isinstance(payload, dict) and isinstance(payload.get("model"), dict):
        state, kind = payload["model"], "course checkpoint"  # written by utils.train.save_checkpoint
    elif isinstance(payload, dict) and isinstance(payload.get("state_dict"), dict):
        state, kind = payload["state_dict"], "checkpoint with a 'state_dict' entry"
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} does not contain a model state_dict (a dict of tensors)")
    if all(key.startswith("module.") for key in state):
        # nn.DataParallel saves every key with a "module." prefix; the official training script used it.
        state = {key[len("module."):]: value for key, value in state.items()}
        kind = f"{kind} saved from nn.DataParallel"
    return state, kind


def _matches_official_file(path: Path, model_name: str) -> bool:
    """True when the file has the size and SHA-256 reported for the official release."""
    info = OFFICIAL_WEIGHTS[model_name]
    if path.stat().st_size != info.size_bytes:  # cheap test first: hashing 176 MB takes a moment
        return False
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest() == info.sha256


def load_u2net(
    model_name: str = "u2netp", weights: str | Path | None = None, device: torch.device | str | None = None
) -> tuple[U2NetBase, str]:
    """Build U2Net / U2NetP, load released or course weights strictly, return (model in eval mode, source text)."""
    model_name = _check_model_name(model_name)
    path = default_weights_path(model_name) if weights is None else Path(weights).expanduser()
    if path.is_dir():
        path = path / OFFICIAL_WEIGHTS[model_name].file_name
    if not path.is_file():
        raise FileNotFoundError(f"{model_name} weights not found: {path}\n{download_hint(model_name)}")

    state, kind = _extract_state_dict(_read_checkpoint(path, model_name), path)
    expected = _expected_shapes(model_name)
    if not _fits(state, expected):
        others = [name for name in MODEL_CLASSES if name != model_name and _fits(state, _expected_shapes(name))]
        if others:
            raise ValueError(
                f"{path} holds {others[0]} weights, not {model_name} weights: "
                f"load it with model_name={others[0]!r} (CLI: --model {others[0]})"
            )
        raise ValueError(
            f"{path} does not fit {model_name} (nor any U^2-Net we build): {_mismatch_summary(state, expected)}"
        )

    model = MODEL_CLASSES[model_name]()
    model.load_state_dict(state, strict=True)
    model = model.to(torch.device(device) if device is not None else get_device()).eval()
    if _matches_official_file(path, model_name):
        kind = "official release, size and SHA-256 match"
    return model, f"{model_name} weights from {path} ({kind})"


def preprocess(image: np.ndarray, size: int = REMBG_SIZE) -> torch.Tensor:
    """rembg's / the official U^2-Net input (1, 3, size, size): Lanczos resize, divide by the image's max,
    ImageNet-normalise (see background_removal.recipe for the recipe and where it differs from the paper's)."""
    return torch.from_numpy(prepare(image, size)).unsqueeze(0)


def postprocess(fused_map: torch.Tensor | np.ndarray, original_hw: tuple[int, int]) -> np.ndarray:
    """Min-max normalise the fused map d0 and Lanczos-resize it to (H, W); returns float32 in [0, 1]."""
    pred = torch.as_tensor(fused_map).detach().float().cpu().numpy()
    return finish(pred, original_hw)


@torch.inference_mode()
def predict_mask(model: U2NetBase, image: np.ndarray, size: int = REMBG_SIZE) -> np.ndarray:
    """Foreground probability (H, W) in [0, 1] for one RGB uint8 image, rembg's pre/post-processing."""
    model.eval()  # batch norm must use its running statistics, whatever mode the caller left it in
    device = next(model.parameters()).device
    fused = model(preprocess(image, size).to(device))[0]
    return postprocess(fused, image.shape[:2])
