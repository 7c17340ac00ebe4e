"""Tests for background_removal/export.py: a single-file ONNX U2NetP that onnxruntime runs like PyTorch."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from background_removal.export import export_onnx
from utils.models.u2net import U2NetP

ort = pytest.importorskip("onnxruntime")  # a guard only: requirements.txt installs it, so CI runs this test


def test_u2netp_exports_to_one_file_that_matches_pytorch(tmp_path):
    torch.manual_seed(0)
    model = U2NetP().train()  # export must switch a copy to eval mode and leave this one alone
    folder = tmp_path / "onnx"
    path = export_onnx(model, folder / "u2netp_course.onnx", size=320)

    assert model.training
    assert sorted(p.name for p in folder.iterdir()) == ["u2netp_course.onnx"]  # weights embedded, no .data file
    assert path.stat().st_size > 4_000_000  # 1.13 M float32 parameters are inside the file

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # one small image: threads would only contend on a shared runner
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    first_input = session.get_inputs()[0]
    assert first_input.name == "input"
    assert first_input.shape == [1, 3, 320, 320] and first_input.type == "tensor(float)"
    assert session.get_outputs()[0].shape == [1, 1, 320, 320]

    x = torch.randn(1, 3, 320, 320, generator=torch.Generator().manual_seed(1))
    onnx_fused = session.run(None, {first_input.name: x.numpy()})[0]
    with torch.no_grad():
        torch_fused = model.eval()(x)[0].numpy()
    assert np.abs(onnx_fused - torch_fused).max() < 1e-4


def test_bad_file_name_is_refused_before_exporting(tmp_path):
    with pytest.raises(ValueError, match=r"\.onnx"):
        export_onnx(U2NetP(), tmp_path / "model.pth")
    assert list(tmp_path.iterdir()) == []


def test_rembg_runs_the_course_export_with_our_masks(tmp_path, monkeypatch):
    """Real rembg (when installed) on our export: its mask is ours within 2 levels of 255 on a real photo."""
    rembg = pytest.importorskip("rembg")
    from PIL import Image
    from skimage import data

    from background_removal.recipe import mask_levels
    from background_removal.weights import predict_mask

    torch.manual_seed(0)
    model = U2NetP().eval()
    path = export_onnx(model, tmp_path / "u2netp_course.onnx", size=320)
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))  # recent rembg loads custom models from its home only
    session = rembg.new_session("u2net_custom", model_path=str(path))
    photo = data.coffee()
    theirs = np.asarray(session.predict(Image.fromarray(photo))[0]).astype(int)
    ours = mask_levels(predict_mask(model, photo, size=320)).astype(int)
    assert theirs.shape == ours.shape
    assert np.abs(theirs - ours).max() <= 2
    cutout = rembg.remove(Image.fromarray(photo), session=session)
    assert cutout.mode == "RGBA" and cutout.size == (600, 400)
