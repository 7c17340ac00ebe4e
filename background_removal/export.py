"""Export a U^2-Net to a single-file ONNX model that rembg (and any onnxruntime program) can run.

The exported graph has one input ``input`` of shape (1, 3, size, size), float32, already normalised
the official way (see ``background_removal.weights.preprocess``), and one output ``d0`` of shape
(1, 1, size, size): the fused sigmoid map. Only the fused map is exported because it is the
prediction; the six side maps only matter for the training loss.

Using the file with rembg (``pip install "rembg[cli,cpu]"``: without ``cpu`` (or ``gpu``) no onnxruntime is
installed and rembg stops with "No onnxruntime backend found")::

    U2NET_HOME=$(dirname /path/to/model.onnx) \\
        rembg i -m u2net_custom -x '{"model_path": "/path/to/model.onnx"}' in.jpg out.png

rembg's ``u2net_custom`` session feeds the first input with the image resized to 320 x 320 (Lanczos),
divided by its maximum and ImageNet-normalised, reads the first output, min-max normalises it and
resizes it back (``background_removal.recipe``), so export with ``size=320``. ``dynamic_batch=True``
gives the input a free batch dimension (``batch``, 3, size, size): rembg still feeds one image at a
time, ``background_removal.fast`` feeds several.
``U2NET_HOME`` is rembg's model folder (default ``~/.u2net``); recent rembg releases (reportedly from
2.0.75 on) only load a custom model from inside that folder, and pointing it at the model's own
folder is harmless with older ones.
"""
from __future__ import annotations

import copy
import inspect
import os
import tempfile
from pathlib import Path

import torch
from torch import nn

from utils.models.u2net import U2NetBase

# Opset 18 is what torch's exporter writes natively (no version conversion step) and onnxruntime
# has run it since release 1.14 (2023).
ONNX_OPSET = 18
# The legacy TorchScript exporter (torch < 2.5) is only trusted up to this opset.
LEGACY_ONNX_OPSET = 17


class FusedMapOnly(nn.Module):
    """Wraps a U2Net / U2NetP so that its forward returns only the fused map d0."""

    def __init__(self, model: U2NetBase) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) normalised images -> (N, 1, H, W) fused probabilities."""
        return self.model(x)[0]


def _export_options() -> dict:
    """Keyword arguments for torch.onnx.export that give one self-contained file on this torch version."""
    params = inspect.signature(torch.onnx.export).parameters
    if "dynamo" not in params:  # torch < 2.5: TorchScript exporter, weights are always embedded
        return {"opset_version": LEGACY_ONNX_OPSET}
    options = {"dynamo": True, "opset_version": ONNX_OPSET, "verbose": False}
    if "external_data" in params:
        # The dynamo exporter defaults to writing the weights to a separate "<name>.data" file;
        # a single file is what rembg and most deployment tools expect.
        options["external_data"] = False
    return options


def export_onnx(model: U2NetBase, path: str | Path, size: int = 320, dynamic_batch: bool = False) -> Path:
    """Write `model` as one self-contained ONNX file: input (1 or any, 3, size, size), first output the fused map."""
    path = Path(path)
    if path.suffix.lower() != ".onnx":
        raise ValueError(f"the ONNX file name should end in .onnx, got {path.name}")
    if size < 32:
        raise ValueError(f"size must be at least 32 pixels, got {size}")
    # Work on a CPU copy in eval mode: the caller's model keeps its device and train/eval mode,
    # and batch norm is exported with its running statistics.
    wrapper = FusedMapOnly(copy.deepcopy(model).cpu().float()).eval()
    # torch.export treats a dimension of size 1 as a constant, so a free batch is traced with two images.
    example = torch.zeros(2 if dynamic_batch else 1, 3, size, size)
    options = _export_options()
    if dynamic_batch:
        if options.get("dynamo"):
            options["dynamic_shapes"] = ({0: torch.export.Dim("batch", min=1, max=1024)},)
        else:
            options["dynamic_axes"] = {"input": {0: "batch"}, "d0": {0: "batch"}}

    path.parent.mkdir(parents=True, exist_ok=True)
    # Export into a private folder, check it holds exactly one file, then move that file into place:
    # a failed export leaves nothing behind and an extra weights file cannot slip through.
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".onnx-export-") as scratch:
        scratch_file = Path(scratch) / path.name
        with torch.no_grad():
            torch.onnx.export(
                wrapper, (example,), str(scratch_file),
                input_names=["input"], output_names=["d0"], **options,
            )
        produced = sorted(p.name for p in Path(scratch).iterdir())
        if produced != [path.name]:
            raise RuntimeError(f"ONNX export wrote {produced} instead of one file; weights were not embedded")
        os.replace(scratch_file, path)
    return path
