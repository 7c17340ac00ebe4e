"""Tests for background_removal/fast.py: the ONNX Runtime path gives the eager PyTorch masks, batched or not."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from background_removal.export import export_onnx
from background_removal.fast import OnnxRemover, onnx_for_weights
from background_removal.recipe import mask_levels
from background_removal.weights import load_u2net, predict_mask
from utils.models.u2net import U2NetP

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.usefixtures("one_cpu_thread")
SIZE = 64  # the recipe and the arithmetic do not depend on the size; 64 keeps the test quick


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(weights file, cache folder, ONNX file) for a random U2NetP, exported once through the cache."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("fast")
    weights = folder / "u2netp.pth"
    torch.save(U2NetP().state_dict(), weights)
    onnx_path, source = onnx_for_weights("u2netp", weights, size=SIZE, cache_dir=folder / "cache")
    assert "exported to" in source and onnx_path.parent == folder / "cache"
    return weights, folder / "cache", onnx_path


def _photos() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, size=shape, dtype=np.uint8) for shape in ((50, 70, 3), (64, 64, 3), (90, 33, 3))]


def test_masks_equal_eager_pytorch_within_one_level_at_any_batch(exported):
    weights, _, onnx_path = exported
    model, _ = load_u2net("u2netp", weights, device="cpu")
    photos = _photos()
    eager = [mask_levels(predict_mask(model, photo, size=SIZE)) for photo in photos]
    for batch in (1, 2, 3):
        remover = OnnxRemover(onnx_path, threads=1, batch_size=batch)
        assert remover.size == SIZE and remover.batch_size == batch
        masks = remover.predict_masks(photos)
        for mask, reference, photo in zip(masks, eager, photos):
            assert mask.shape == photo.shape[:2] and mask.dtype == np.float32
            assert np.abs(mask_levels(mask).astype(int) - reference).max() <= 1
    streamed = list(OnnxRemover(onnx_path, threads=1, batch_size=2).iter_masks(photos))
    assert [image is photo for (image, _), photo in zip(streamed, photos)] == [True] * 3


def test_export_is_cached_and_onnx_files_are_used_as_they_are(exported, tmp_path):
    weights, cache, onnx_path = exported
    again, source = onnx_for_weights("u2netp", weights, size=SIZE, cache_dir=cache)
    assert again == onnx_path and "exported earlier" in source
    assert onnx_for_weights("u2netp", onnx_path)[0] == onnx_path  # no torch work for an .onnx file
    with pytest.raises(FileNotFoundError):
        onnx_for_weights("u2netp", tmp_path / "missing.onnx")


def test_a_file_with_a_fixed_batch_of_one_is_fed_one_image_at_a_time(tmp_path):
    torch.manual_seed(0)
    path = export_onnx(U2NetP(), tmp_path / "fixed.onnx", size=32)  # rembg's layout: input (1, 3, 32, 32)
    remover = OnnxRemover(path, threads=1, batch_size=4)
    assert remover.batch_size == 1
    assert [m.shape for m in remover.predict_masks(_photos()[:2])] == [(50, 70), (64, 64)]
    with pytest.raises(ValueError, match="threads"):
        OnnxRemover(path, threads=0)
