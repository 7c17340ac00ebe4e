"""The course UNet: shapes for every upsampling mode, the skip switch, gradients, bad input."""
import pytest
import torch

from utils.models import UNet, count_parameters
from utils.models.unet import UPSAMPLING_METHODS, Up

SMALL = dict(base_channels=8, depth=3)


@pytest.mark.parametrize("up", UPSAMPLING_METHODS)
@pytest.mark.parametrize("skip", [True, False])
@pytest.mark.parametrize("size", [(64, 64), (97, 131), (33, 17)])
def test_output_matches_input_size_for_every_mode(up, skip, size):
    model = UNet(3, 2, skip=skip, up=up, **SMALL).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, *size))
    assert out.shape == (2, 2, *size)


def test_default_widths_follow_the_reference_design():
    model = UNet(3, 3)
    assert [d.conv[0].out_channels for d in model.downs] == [128, 256, 512, 1024]
    assert model.stem[0].kernel_size == (1, 1) and model.stem[0].out_channels == 64
    first_conv = model.enc0[0]
    assert first_conv.kernel_size == (3, 3) and first_conv.bias is None


def test_parameter_counts_of_reference_unet():
    with_skip = count_parameters(UNet(3, 3, skip=True))
    without = count_parameters(UNet(3, 3, skip=False))
    # Only the first conv of each decoder block narrows: 2c*c*9 -> c*c*9 weights, at c = 512, 256, 128, 64.
    removed = sum(c * c * 9 for c in (512, 256, 128, 64))
    assert with_skip - without == removed
    assert with_skip == reference_design_count(in_channels=3, out_channels=3, widths=(64, 128, 256, 512, 1024))


def reference_design_count(in_channels, out_channels, widths):
    """Parameters of the reference UNet, counted by hand from the design (bilinear decoder, skips on)."""
    def conv_block(a, b):  # two bias-free 3x3 convs and two BatchNorms (weight + bias each)
        return 9 * a * b + 9 * b * b + 2 * 2 * b

    stem = in_channels * widths[0] + widths[0]
    encoder = conv_block(widths[0], widths[0]) + sum(conv_block(a, b) for a, b in zip(widths, widths[1:]))
    decoder = sum(b * a + 2 * a + conv_block(2 * a, a) for a, b in zip(widths, widths[1:]))  # 1x1 conv + BN
    head = widths[0] * out_channels + out_channels
    return stem + encoder + decoder + head


def test_skip_false_ignores_the_encoder_features():
    torch.manual_seed(0)
    up = Up(16, 8, "bilinear", skip=False).eval()
    x = torch.randn(1, 16, 5, 7)
    a, b = torch.randn(1, 8, 10, 14), torch.randn(1, 8, 10, 14)
    assert torch.equal(up(x, a), up(x, b))
    up_skip = Up(16, 8, "bilinear", skip=True).eval()
    assert not torch.allclose(up_skip(x, a), up_skip(x, b))


@pytest.mark.parametrize("up", UPSAMPLING_METHODS)
def test_skip_false_output_loses_first_level_detail(up):
    """Without skips, a change confined to the first level's features reaches the output only via pooling."""
    torch.manual_seed(0)
    for skip, expect_dependence in [(True, True), (False, False)]:
        model = UNet(1, 1, skip=skip, up=up, **SMALL).eval()
        x = torch.randn(1, 1, 32, 32)
        features = {}
        # Perturb what the first Up receives as its skip tensor, not the path into the encoder.
        original_forward = model.ups[-1].forward

        def forward_with_noisy_skip(h, skip_tensor, indices=None):
            return original_forward(h, features.get("skip", skip_tensor), indices)

        with torch.no_grad():
            clean = model(x)
            model.ups[-1].forward = forward_with_noisy_skip
            features["skip"] = torch.randn(1, 8, 32, 32)
            noisy = model(x)
        assert (not torch.allclose(clean, noisy)) == expect_dependence


@pytest.mark.parametrize("up", UPSAMPLING_METHODS)
def test_gradients_reach_every_parameter(up):
    model = UNet(3, 1, up=up, final_activation=None, **SMALL)
    model(torch.randn(2, 3, 24, 40)).square().mean().backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


@pytest.mark.parametrize("activation,low,high", [("tanh", -1, 1), ("sigmoid", 0, 1)])
def test_final_activation_ranges(activation, low, high):
    out = UNet(3, 3, final_activation=activation, **SMALL).eval()(torch.randn(1, 3, 16, 16) * 50)
    assert out.min() >= low and out.max() <= high


def test_no_activation_is_unbounded():
    model = UNet(3, 1, final_activation=None, **SMALL)
    torch.nn.init.constant_(model.head.bias, 5.0)
    assert model.eval()(torch.randn(1, 3, 16, 16)).max() > 1


@pytest.mark.parametrize(
    "bad,message",
    [
        (torch.randn(3, 32, 32), "4-D"),
        (torch.zeros(1, 3, 32, 32, dtype=torch.uint8), "floating-point"),
        (torch.randn(1, 4, 32, 32), "3 input channel"),
    ],
)
def test_bad_input_raises_value_error(bad, message):
    with pytest.raises(ValueError, match=message):
        UNet(3, 1, **SMALL)(bad)


@pytest.mark.parametrize("kwargs", [dict(up="nearest"), dict(final_activation="relu"), dict(depth=0)])
def test_bad_construction_arguments(kwargs):
    with pytest.raises(ValueError):
        UNet(3, 1, **kwargs)


def test_shape_table_lists_every_level():
    rows = dict(UNet(3, 3, base_channels=8, depth=2).shape_table(64, 48))
    assert rows["enc0"] == (1, 8, 64, 48)
    assert rows["down2"] == (1, 32, 16, 12)
    assert rows["up1"] == (1, 8, 64, 48)
    assert rows["head"] == (1, 3, 64, 48)


@pytest.mark.parametrize("up", ["bilinear", "pixel_shuffle", "transpose"])
@pytest.mark.parametrize("base_channels", [16, 64])
def test_parameter_matched_no_skip_unet_has_the_skip_unets_count(up, base_channels):
    with_skip = count_parameters(UNet(3, 3, base_channels=base_channels, up=up))
    plain = count_parameters(UNet(3, 3, base_channels=base_channels, up=up, skip=False))
    matched = UNet(3, 3, base_channels=base_channels, up=up, skip=False, match_skip_params=True)
    assert plain < with_skip
    assert abs(count_parameters(matched) - with_skip) <= 0.001 * with_skip
    # Still no encoder features: every decoder block sees only the (wider) upsampled path.
    assert all(not level.skip and level.conv[0].in_channels == level.upsample[0].out_channels // (4 if up == "pixel_shuffle" else 1)
               for level in matched.ups)


def test_parameter_matched_no_skip_unet_runs_and_ignores_the_encoder():
    model = UNet(3, 3, skip=False, match_skip_params=True, **SMALL).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 40, 56)).shape == (2, 3, 40, 56)


@pytest.mark.parametrize("kwargs", [dict(skip=True, match_skip_params=True),
                                    dict(skip=False, match_skip_params=True, up="unpool")])
def test_parameter_matching_rejects_skips_and_unpooling(kwargs):
    with pytest.raises(ValueError, match="match_skip_params"):
        UNet(3, 3, **SMALL, **kwargs)


def test_default_unet_is_unchanged_by_the_matching_option():
    assert count_parameters(UNet(3, 3)) == 28_985_155
    assert count_parameters(UNet(3, 3, skip=False)) == 25_851_715


def test_residual_denoiser_subtracts_the_predicted_noise():
    from utils.models import ResidualDenoiser

    torch.manual_seed(0)
    unet = UNet(3, 3, base_channels=4, depth=2, final_activation=None).eval()
    denoiser = ResidualDenoiser(unet).eval()
    noisy = torch.rand(2, 3, 20, 18) * 2 - 1
    with torch.no_grad():
        assert torch.equal(denoiser(noisy), noisy - unet(noisy))
        torch.nn.init.zeros_(unet.head.weight)
        torch.nn.init.zeros_(unet.head.bias)
        assert torch.equal(denoiser(noisy), noisy)  # predicting no noise returns the input unchanged
    assert list(denoiser.parameters()) and all(p is q for p, q in zip(denoiser.parameters(), unet.parameters()))


def test_fill_corrector_starts_at_the_fill_and_changes_only_the_holes():
    from utils.models.inpainting import FillCorrector, hole_l1_loss

    torch.manual_seed(0)
    fill, mask = torch.rand(2, 3, 16, 16) * 2 - 1, (torch.rand(2, 1, 16, 16) > 0.7).float()
    inputs = torch.cat([fill, mask], 1)
    for use_mask in (True, False):
        model = FillCorrector(UNet(4 if use_mask else 3, 3, base_channels=4, depth=2, final_activation=None), use_mask)
        assert torch.equal(model(inputs), fill)  # zero head: the classical fill itself
        torch.nn.init.constant_(model.network.head.bias, 0.5)
        out = model(inputs)
        assert torch.equal(out[mask.expand_as(out) == 0], fill[mask.expand_as(fill) == 0])  # known pixels untouched
        assert torch.allclose(out[mask.expand_as(out) == 1], fill[mask.expand_as(fill) == 1] + 0.5)
    with pytest.raises(ValueError, match="fill and the mask"):
        model(fill)
    target = fill.clone()
    target[mask.expand_as(target) == 1] += 0.25  # error 0.25 in the holes only
    assert hole_l1_loss(fill, torch.cat([target, mask], 1)).item() == pytest.approx(0.25)
    assert hole_l1_loss(fill + 10 * (1 - mask), torch.cat([fill, mask], 1)).item() == 0  # known pixels do not count
