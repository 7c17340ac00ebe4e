"""Tests for utils.losses: values against torch's own BCE, gradients, and half-precision inputs."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from utils.losses import BCEDiceLoss, deep_supervision_loss, dice_loss, fused_only_loss

N_OUTPUTS = 7  # U2-Net: fused map d0 plus side maps d1..d6


def _probabilities(*shape: int, seed: int = 0) -> torch.Tensor:
    """Sigmoid outputs in (0, 1), like a model's last layer produces."""
    return torch.sigmoid(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)))


def _mask(*shape: int, seed: int = 1) -> torch.Tensor:
    """A random {0, 1} float target mask."""
    return (torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) > 0.6).float()


def _u2net_outputs(requires_grad: bool = False) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Seven probability maps computed from seven logit leaves (returned too, for gradients)."""
    logits = [torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(i)) for i in range(N_OUTPUTS)]
    for logit in logits:
        logit.requires_grad_(requires_grad)
    return [torch.sigmoid(logit) for logit in logits], logits


# ---------------------------------------------------------------------------------------------
# Dice loss and BCEDiceLoss
# ---------------------------------------------------------------------------------------------
def test_dice_loss_hand_computed() -> None:
    pred = torch.tensor([[[[0.5, 1.0], [0.0, 0.0]]]])
    target = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])
    # intersection 1.5, |P| + |T| = 3.5, smooth = 1 -> dice = 4 / 4.5
    assert dice_loss(pred, target).item() == pytest.approx(1 - 4 / 4.5)
    assert dice_loss(pred, target, smooth=0.0).item() == pytest.approx(1 - 3 / 3.5)


def test_dice_loss_perfect_and_empty() -> None:
    target = _mask(2, 1, 16, 16)
    assert dice_loss(target, target).item() == pytest.approx(0.0, abs=1e-7)
    empty = torch.zeros(2, 1, 16, 16)
    assert dice_loss(empty, empty).item() == 0.0  # smoothing makes empty-vs-empty a perfect match
    assert dice_loss(1 - target, target).item() > 0.9


def test_bce_dice_loss_components() -> None:
    pred = _probabilities(4, 1, 24, 24)
    target = _mask(4, 1, 24, 24)
    bce = F.binary_cross_entropy(pred, target)
    overlap = dice_loss(pred, target)
    torch.testing.assert_close(BCEDiceLoss(bce_weight=1.0)(pred, target), bce)
    torch.testing.assert_close(BCEDiceLoss(bce_weight=0.0)(pred, target), overlap)
    torch.testing.assert_close(BCEDiceLoss()(pred, target), 0.5 * bce + 0.5 * overlap)
    torch.testing.assert_close(BCEDiceLoss(bce_weight=0.3)(pred, target), 0.3 * bce + 0.7 * overlap)
    # BCE part agrees with the nn.Module version too
    torch.testing.assert_close(BCEDiceLoss(bce_weight=1.0)(pred, target), nn.BCELoss()(pred, target))


def test_bce_dice_loss_rejects_bad_weight() -> None:
    with pytest.raises(ValueError, match="bce_weight"):
        BCEDiceLoss(bce_weight=1.5)


def test_bce_dice_loss_gradients_flow() -> None:
    logits = torch.randn(2, 1, 16, 16, requires_grad=True)
    loss = BCEDiceLoss()(torch.sigmoid(logits), _mask(2, 1, 16, 16))
    loss.backward()
    assert logits.grad is not None
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


# ---------------------------------------------------------------------------------------------
# U2-Net deep supervision
# ---------------------------------------------------------------------------------------------
def test_deep_supervision_loss_is_sum_of_seven_bce_terms() -> None:
    outputs, _ = _u2net_outputs()
    target = _mask(2, 1, 32, 32)
    # written the way the official training script does it: one BCELoss per output, added up
    bce = nn.BCELoss()
    expected = sum(bce(output, target) for output in outputs)
    torch.testing.assert_close(deep_supervision_loss(outputs, target), expected)
    torch.testing.assert_close(deep_supervision_loss(tuple(outputs), target), expected)


def test_fused_only_loss_is_bce_of_d0() -> None:
    outputs, _ = _u2net_outputs()
    target = _mask(2, 1, 32, 32)
    torch.testing.assert_close(fused_only_loss(outputs, target), F.binary_cross_entropy(outputs[0], target))
    assert fused_only_loss(outputs, target) < deep_supervision_loss(outputs, target)


def test_deep_supervision_gradients_reach_every_output() -> None:
    outputs, logits = _u2net_outputs(requires_grad=True)
    deep_supervision_loss(outputs, _mask(2, 1, 32, 32)).backward()
    for logit in logits:
        assert logit.grad is not None and torch.isfinite(logit.grad).all() and logit.grad.abs().sum() > 0


def test_fused_only_loss_gives_no_gradient_to_side_outputs() -> None:
    outputs, logits = _u2net_outputs(requires_grad=True)
    fused_only_loss(outputs, _mask(2, 1, 32, 32)).backward()
    assert logits[0].grad is not None and logits[0].grad.abs().sum() > 0
    assert all(logit.grad is None for logit in logits[1:])


def test_deep_supervision_rejects_empty_outputs() -> None:
    with pytest.raises(ValueError, match="at least one"):
        deep_supervision_loss([], _mask(2, 1, 8, 8))


# ---------------------------------------------------------------------------------------------
# Half precision and autocast
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_losses_compute_in_float32_for_half_inputs(dtype: torch.dtype) -> None:
    outputs, logits = _u2net_outputs()
    half_logits = [logit.to(dtype).requires_grad_(True) for logit in logits]
    half_outputs = [torch.sigmoid(logit) for logit in half_logits]
    target = _mask(2, 1, 32, 32).to(dtype)

    loss = deep_supervision_loss(half_outputs, target)
    assert loss.dtype == torch.float32
    # same as computing on the float32 copies of the (rounded) half-precision values
    expected = sum(F.binary_cross_entropy(o.float(), target.float()) for o in half_outputs)
    torch.testing.assert_close(loss, expected)
    # and close to the full-precision loss
    assert loss.item() == pytest.approx(deep_supervision_loss(outputs, target.float()).item(), rel=1e-2)

    loss.backward()
    for logit in half_logits:
        assert logit.grad is not None and logit.grad.dtype == dtype and torch.isfinite(logit.grad).all()

    assert fused_only_loss(half_outputs, target).dtype == torch.float32
    assert BCEDiceLoss()(half_outputs[0], target).dtype == torch.float32
    assert dice_loss(half_outputs[0], target).dtype == torch.float32


def test_losses_inside_cpu_autocast_region() -> None:
    outputs, _ = _u2net_outputs()
    target = _mask(2, 1, 32, 32)
    expected = deep_supervision_loss(outputs, target)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        got = deep_supervision_loss([o.bfloat16() for o in outputs], target)
        combined = BCEDiceLoss()(outputs[0].bfloat16(), target)
    assert got.dtype == torch.float32 and combined.dtype == torch.float32
    assert got.item() == pytest.approx(expected.item(), rel=1e-2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_losses_inside_cuda_autocast_region() -> None:
    outputs, _ = _u2net_outputs()
    outputs = [o.cuda() for o in outputs]
    target = _mask(2, 1, 32, 32).cuda()
    expected = deep_supervision_loss(outputs, target)
    with torch.autocast(device_type="cuda", dtype=torch.float16):
        # Plain F.binary_cross_entropy refuses to run under CUDA autocast; ours must not.
        with pytest.raises(RuntimeError, match="unsafe to autocast"):
            F.binary_cross_entropy(outputs[0].half(), target.half())
        got = deep_supervision_loss([o.half() for o in outputs], target)
        combined = BCEDiceLoss()(outputs[0].half(), target)
        fused = fused_only_loss(outputs, target)
    assert got.dtype == combined.dtype == fused.dtype == torch.float32
    assert got.item() == pytest.approx(expected.item(), rel=1e-2)


# ---------------------------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------------------------
def test_shape_mismatch_raises_value_error_naming_both_shapes() -> None:
    pred = _probabilities(2, 1, 32, 32)
    target = _mask(2, 1, 16, 16)
    pattern = r"\(2, 1, 32, 32\).*\(2, 1, 16, 16\)"
    with pytest.raises(ValueError, match=pattern):
        dice_loss(pred, target)
    with pytest.raises(ValueError, match=pattern):
        BCEDiceLoss()(pred, target)
    with pytest.raises(ValueError, match=pattern):
        deep_supervision_loss([pred] * N_OUTPUTS, target)
    with pytest.raises(ValueError, match=pattern):
        fused_only_loss([pred], target)
