"""Super-resolution models: pixel-shuffle UNet shapes, residual learning starting at bilinear, bad input."""
import pytest
import torch
import torch.nn.functional as F

from utils.models import UNet, count_parameters
from utils.models.sr import PixelShuffleUNet, ResidualSR, zero_init_


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("skip", [True, False])
@pytest.mark.parametrize("residual", [True, False])
def test_pixel_shuffle_unet_enlarges_by_scale(scale, skip, residual):
    model = PixelShuffleUNet(3, 3, scale=scale, base_channels=8, depth=2, skip=skip, residual=residual).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 12, 20) * 2 - 1)
    assert out.shape == (2, 3, 12 * scale, 20 * scale)


def test_pixel_shuffle_head_makes_scale_squared_channels_per_colour():
    model = PixelShuffleUNet(3, 3, scale=4, base_channels=8, depth=2)
    assert model.unet.head.out_channels == 3 * 16
    # Only the head differs from a plain UNet of the same width: 1x1 conv to 48 instead of 3 channels.
    assert count_parameters(model) - count_parameters(UNet(3, 3, 8, depth=2)) == 8 * 45 + 45


def test_residual_pixel_shuffle_unet_starts_as_bilinear_interpolation():
    torch.manual_seed(0)
    model = PixelShuffleUNet(3, 3, scale=4, base_channels=8, depth=2, residual=True).eval()
    small = torch.rand(1, 3, 8, 8) * 2 - 1
    with torch.no_grad():
        out = model(small)
    expected = F.interpolate(small, scale_factor=4, mode="bilinear", align_corners=False)
    assert torch.allclose(out, expected, atol=1e-6)


def test_tanh_head_bounds_the_non_residual_output():
    model = PixelShuffleUNet(3, 3, scale=2, base_channels=8, depth=2, final_activation="tanh").eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 8, 8) * 10)
    assert out.abs().max() <= 1


def test_residual_sr_adds_the_input_and_starts_at_it_with_a_zeroed_head():
    torch.manual_seed(0)
    unet = UNet(3, 3, base_channels=8, depth=2)
    zero_init_(unet.head)
    model = ResidualSR(unet).eval()
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model(x), x)


def test_residual_sr_still_learns_after_zero_init():
    torch.manual_seed(0)
    unet = UNet(3, 3, base_channels=8, depth=2)
    zero_init_(unet.head)
    model = ResidualSR(unet)
    x, target = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    (model(x) - target).abs().mean().backward()
    # The zeroed head still gets a gradient (it multiplies non-zero features), so training can move it.
    assert unet.head.weight.grad.abs().sum() > 0


def test_zero_init_handles_a_layer_without_bias():
    layer = zero_init_(torch.nn.Conv2d(4, 2, 1, bias=False))
    assert layer.weight.abs().sum() == 0


@pytest.mark.parametrize("scale", [0, 1.5, True])
def test_bad_scale_is_rejected(scale):
    with pytest.raises(ValueError, match="scale"):
        PixelShuffleUNet(3, 3, scale=scale)


def test_residual_needs_matching_channels():
    with pytest.raises(ValueError, match="in_channels"):
        PixelShuffleUNet(4, 3, residual=True)


def test_bad_activation_and_input_are_rejected():
    with pytest.raises(ValueError, match="final_activation"):
        PixelShuffleUNet(3, 3, final_activation="relu")
    with pytest.raises(ValueError, match="input channel"):
        PixelShuffleUNet(3, 3, base_channels=8, depth=2)(torch.rand(1, 4, 8, 8))


def test_residual_pixel_shuffle_unet_can_start_from_bicubic():
    torch.manual_seed(0)
    model = PixelShuffleUNet(3, 3, scale=4, base_channels=8, depth=2, residual=True, base="bicubic").eval()
    small = torch.rand(1, 3, 8, 8) * 2 - 1
    with torch.no_grad():
        out = model(small)
    assert torch.allclose(out, F.interpolate(small, scale_factor=4, mode="bicubic", align_corners=False), atol=1e-6)
    with pytest.raises(ValueError, match="base"):
        PixelShuffleUNet(3, 3, residual=True, base="nearest")
