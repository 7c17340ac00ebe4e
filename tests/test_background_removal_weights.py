"""Tests for background_removal/weights.py: checkpoint formats, clear errors, official pre- and post-processing."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from background_removal.weights import (
    default_weights_path,
    load_u2net,
    postprocess,
    predict_mask,
    preprocess,
)
from utils.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from utils.models.u2net import U2Net, U2NetP
from utils.train import save_checkpoint


pytestmark = pytest.mark.usefixtures("one_cpu_thread")


@pytest.fixture(scope="module")
def small_model() -> U2NetP:
    """A U2NetP with random weights and non-trivial batch-norm statistics (so a lost buffer would show)."""
    torch.manual_seed(0)
    model = U2NetP()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    return model.eval()


def _assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    first, second = a.state_dict(), b.state_dict()
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key].cpu(), second[key].cpu()), key


@pytest.mark.parametrize("layout", ["official", "dataparallel", "course"])
def test_round_trip_of_each_checkpoint_format(small_model, tmp_path, layout):
    path = tmp_path / "u2netp.pth"
    state = small_model.state_dict()
    if layout == "official":
        torch.save(state, path)  # what the authors released: a bare state_dict with the official key names
    elif layout == "dataparallel":
        torch.save({f"module.{k}": v for k, v in state.items()}, path)
    else:
        save_checkpoint(path, small_model, step=3)

    model, source = load_u2net("u2netp", path, device="cpu")
    _assert_same_weights(model, small_model)
    assert not model.training
    assert str(path) in source and "u2netp" in source
    if layout == "dataparallel":
        assert "DataParallel" in source
    if layout == "course":
        assert "course checkpoint" in source


def test_a_folder_means_the_official_file_name_inside_it(small_model, tmp_path):
    torch.save(small_model.state_dict(), tmp_path / "u2netp.pth")
    model, _ = load_u2net("u2netp", tmp_path, device="cpu")
    _assert_same_weights(model, small_model)


def test_default_folder_comes_from_u2net_home(small_model, tmp_path, monkeypatch):
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))
    assert default_weights_path("u2netp") == tmp_path / "u2netp.pth"
    torch.save(small_model.state_dict(), tmp_path / "u2netp.pth")
    _, source = load_u2net("u2netp", device="cpu")
    assert str(tmp_path / "u2netp.pth") in source


def test_missing_default_weights_say_where_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError) as info:
        load_u2net("u2netp")
    message = str(info.value)
    assert "drive.google.com" in message and "u2netp.pth" in message
    assert str(tmp_path / "nowhere" / "u2netp.pth") in message  # where to put the download


def test_missing_explicit_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="github.com/xuebinqin/U-2-Net"):
        load_u2net("u2net", tmp_path / "missing.pth")


def test_weights_of_the_other_model_are_named(small_model, tmp_path):
    path = tmp_path / "u2netp.pth"
    torch.save(small_model.state_dict(), path)
    # Loading into the full model would cost 176 MB; the check happens before that model is built.
    with pytest.raises(ValueError, match=r"holds u2netp weights, not u2net weights.*--model u2netp"):
        load_u2net("u2net", path, device="cpu")


def test_full_model_weights_into_u2netp_are_named(tmp_path):
    # Shapes are all the detector looks at, so the 176 MB file is faked with tensors of the full
    # model's shapes that share one stored zero (expand() saves a single element per tensor).
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in U2Net().state_dict().items()}
    path = tmp_path / "u2net.pth"
    torch.save({k: torch.zeros(()).expand(s) for k, s in shapes.items()}, path)
    assert path.stat().st_size < 1_000_000
    with pytest.raises(ValueError, match=r"holds u2net weights, not u2netp weights"):
        load_u2net("u2netp", path, device="cpu")


def test_unrelated_state_dict_gets_a_summary(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(ValueError, match=r"does not fit u2netp.*missing.*unexpected"):
        load_u2net("u2netp", path, device="cpu")


@pytest.mark.parametrize("content", [b"\x80\x02 not a zip or pickle" * 10, b"<!DOCTYPE html><html>quota</html>"])
def test_corrupt_file_is_a_clear_value_error(tmp_path, content):
    path = tmp_path / "u2netp.pth"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"web page|corrupt or truncated") as info:
        load_u2net("u2netp", path, device="cpu")
    assert "weights_only" not in str(info.value)  # torch's advice to unpickle untrusted code is not the fix


def test_truncated_checkpoint_is_a_clear_value_error(small_model, tmp_path):
    path = tmp_path / "u2netp.pth"
    torch.save(small_model.state_dict(), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match="corrupt or truncated") as info:
        load_u2net("u2netp", path, device="cpu")
    assert "weights_only" not in str(info.value)


def test_checkpoint_with_python_objects_is_named_as_such(small_model, tmp_path):
    path = tmp_path / "u2netp.pth"
    torch.save({"model": small_model.state_dict(), "extra": np.float64(1.0)}, path)  # a numpy scalar: not a tensor
    with pytest.raises(ValueError, match="stores Python objects other than tensors") as info:
        load_u2net("u2netp", path, device="cpu")
    assert "corrupt" not in str(info.value) and "weights_only" not in str(info.value)


def test_unknown_model_name():
    with pytest.raises(ValueError, match="model_name must be one of"):
        load_u2net("u3net")


def test_preprocess_matches_hand_computation():
    # 2x2 image whose max is 200 (not 255): the official code divides by the image's own max.
    image = np.array([[[200, 100, 0], [50, 50, 50]], [[0, 0, 0], [10, 20, 40]]], dtype=np.uint8)
    x = preprocess(image, size=2)  # same size: no resampling, so every value can be checked by hand
    assert x.shape == (1, 3, 2, 2) and x.dtype == torch.float32
    assert x[0, 0, 0, 0].item() == pytest.approx((200 / 200 - 0.485) / 0.229, abs=1e-6)
    assert x[0, 1, 0, 0].item() == pytest.approx((100 / 200 - 0.456) / 0.224, abs=1e-6)
    assert x[0, 2, 1, 1].item() == pytest.approx((40 / 200 - 0.406) / 0.225, abs=1e-6)
    expected = (image / 200.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(x[0].permute(1, 2, 0).numpy(), expected, atol=1e-6)


def test_preprocess_resizes_and_survives_a_black_image():
    x = preprocess(np.zeros((7, 5, 3), dtype=np.uint8), size=320)
    assert x.shape == (1, 3, 320, 320)
    assert torch.isfinite(x).all()  # max == 0 must not divide by zero
    np.testing.assert_allclose(x[0, :, 0, 0].numpy(), -np.array(IMAGENET_MEAN) / np.array(IMAGENET_STD), atol=1e-6)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        preprocess(np.zeros((4, 4), dtype=np.uint8))


def test_postprocess_min_max_and_resize():
    fused = torch.tensor([[0.2, 0.4], [0.6, 0.6]]).view(1, 1, 2, 2)
    same = postprocess(fused, (2, 2))
    np.testing.assert_allclose(same, [[0.0, 127 / 255], [1.0, 1.0]], atol=1e-6)  # rembg's uint8 levels, truncated
    bigger = postprocess(fused, (6, 4))
    assert bigger.shape == (6, 4) and bigger.dtype == np.float32
    assert bigger.min() == pytest.approx(0.0) and bigger.max() == pytest.approx(1.0)  # Lanczos overshoot clipped
    assert bigger[0, 0] < 0.1 and bigger[-1, 0] > 0.9  # the dark top-left and bright bottom stay where they were
    constant = postprocess(np.full((1, 1, 3, 3), 0.7, dtype=np.float32), (3, 3))
    np.testing.assert_allclose(constant, 178 / 255, atol=1e-6)  # no division by zero: kept, as uint8 levels


def test_predict_mask_shape_and_range(small_model):
    image = np.random.default_rng(0).integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
    mask = predict_mask(small_model, image, size=32)
    assert mask.shape == (37, 53) and mask.dtype == np.float32
    assert 0.0 <= mask.min() and mask.max() <= 1.0
