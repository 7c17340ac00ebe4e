"""Tests for utils/models/u2net.py: official state_dict layout, shapes on odd sizes, RSU wiring, ablation."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from utils.models.common import count_parameters
from utils.models.u2net import RSU, U2Net, U2NetP, describe

FIXTURE = Path(__file__).parent / "u2net_official_state_dict.json"
OFFICIAL = json.loads(FIXTURE.read_text())
EXPECTED_PARAMS = {"u2net": 44_009_869, "u2netp": 1_131_181}


@pytest.fixture(scope="module")
def models() -> dict[str, torch.nn.Module]:
    """Build each full model once (U2Net has 44 M parameters, so initialisation is not free)."""
    torch.manual_seed(0)
    return {"u2net": U2Net().eval(), "u2netp": U2NetP().eval()}


@pytest.mark.parametrize("name", ["u2net", "u2netp"])
def test_state_dict_matches_official_keys_order_and_shapes(models, name):
    ours = [[key, list(value.shape)] for key, value in models[name].state_dict().items()]
    official = OFFICIAL[name]["state_dict"]
    assert len(ours) == OFFICIAL[name]["num_state_dict_entries"]
    assert [k for k, _ in ours] == [k for k, _ in official]  # same keys in the same order
    assert ours == official  # and the same shapes


@pytest.mark.parametrize("name", ["u2net", "u2netp"])
def test_parameter_count(models, name):
    assert count_parameters(models[name]) == EXPECTED_PARAMS[name] == OFFICIAL[name]["total_params"]


@pytest.mark.parametrize("name", ["u2net", "u2netp"])
def test_official_shaped_state_dict_loads_strict(models, name):
    torch.manual_seed(1)
    state = {}
    for key, shape in OFFICIAL[name]["state_dict"]:
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7, dtype=torch.long)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape) + 0.5  # a variance must be positive
        else:
            state[key] = torch.randn(shape)
    model = U2NetP() if name == "u2netp" else U2Net()
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert torch.equal(model.state_dict()["stage1.rebnconvin.conv_s1.weight"],
                       state["stage1.rebnconvin.conv_s1.weight"])


def _check_outputs(outputs, batch: int, out_ch: int, height: int, width: int) -> None:
    assert isinstance(outputs, tuple) and len(outputs) == 7
    for out in outputs:
        assert out.shape == (batch, out_ch, height, width)
        assert torch.isfinite(out).all()
        assert out.min() >= 0 and out.max() <= 1


def test_u2netp_forward_odd_size(models):
    torch.manual_seed(0)
    with torch.no_grad():
        outputs = models["u2netp"](torch.rand(1, 3, 97, 131))
    _check_outputs(outputs, 1, 1, 97, 131)


def test_u2net_forward_small_odd_size(models):
    torch.manual_seed(0)
    with torch.no_grad():
        outputs = models["u2net"](torch.rand(2, 3, 45, 37))
    _check_outputs(outputs, 2, 1, 45, 37)


def test_other_channel_counts():
    torch.manual_seed(0)
    model = U2NetP(in_ch=1, out_ch=2).eval()
    with torch.no_grad():
        outputs = model(torch.rand(1, 1, 33, 50))
    _check_outputs(outputs, 1, 2, 33, 50)
    assert model.outconv.in_channels == 6 * 2


RSU_CASES = [(7, False), (6, False), (5, False), (4, False), (4, True)]


@pytest.mark.parametrize("height,dilated", RSU_CASES)
@pytest.mark.parametrize("skip", [True, False])
def test_rsu_preserves_size_on_odd_inputs(height, dilated, skip):
    torch.manual_seed(0)
    block = RSU(height, in_ch=5, mid_ch=4, out_ch=6, dilated=dilated, skip=skip).eval()
    for h, w in [(37, 29), (13, 21)]:
        with torch.no_grad():
            out = block(torch.rand(2, 5, h, w))
        assert out.shape == (2, 6, h, w)


@pytest.mark.parametrize("height,dilated", RSU_CASES)
def test_rsu_layout_and_dilations(height, dilated):
    block = RSU(height, in_ch=5, mid_ch=4, out_ch=6, dilated=dilated)
    pools = [name for name, _ in block.named_children() if name.startswith("pool")]
    assert pools == ([] if dilated else [f"pool{i}" for i in range(1, height - 1)])
    assert block.rebnconvin.conv_s1.dilation == (1, 1)
    for i in range(1, height + 1):
        expected = 2 ** (i - 1) if dilated else (2 if i == height else 1)
        assert getattr(block, f"rebnconv{i}").conv_s1.dilation == (expected, expected)
        assert getattr(block, f"rebnconv{i}").conv_s1.padding == (expected, expected)
    for i in range(1, height):
        conv = getattr(block, f"rebnconv{i}d").conv_s1
        expected = 2 ** (i - 1) if dilated else 1
        assert conv.dilation == (expected, expected)
        assert conv.in_channels == 8  # 2 * mid: upsampled deeper feature + encoder skip
        assert conv.out_channels == (6 if i == 1 else 4)


def test_rsu4_matches_hand_unrolled_official_forward():
    """Spell out RSU-4's forward the way the paper's code does, to pin concat order and upsampling."""
    torch.manual_seed(0)
    b = RSU(4, in_ch=3, mid_ch=4, out_ch=5).eval()
    x = torch.rand(1, 3, 23, 17)

    def up(t, ref):
        return F.interpolate(t, size=ref.shape[2:], mode="bilinear", align_corners=False)

    with torch.no_grad():
        hxin = b.rebnconvin(x)
        hx1 = b.rebnconv1(hxin)
        hx2 = b.rebnconv2(b.pool1(hx1))
        hx3 = b.rebnconv3(b.pool2(hx2))
        hx4 = b.rebnconv4(hx3)
        hx3d = b.rebnconv3d(torch.cat((hx4, hx3), 1))
        hx2d = b.rebnconv2d(torch.cat((up(hx3d, hx2), hx2), 1))
        hx1d = b.rebnconv1d(torch.cat((up(hx2d, hx1), hx1), 1))
        torch.testing.assert_close(b(x), hx1d + hxin)


def test_skip_false_removes_concats_and_residual():
    torch.manual_seed(0)
    with_skip = RSU(5, in_ch=3, mid_ch=4, out_ch=6, skip=True).eval()
    without = RSU(5, in_ch=3, mid_ch=4, out_ch=6, skip=False).eval()
    # Decoder convs see only the deeper feature: mid instead of 2 * mid input channels.
    for i in range(1, 5):
        assert getattr(with_skip, f"rebnconv{i}d").conv_s1.in_channels == 8
        assert getattr(without, f"rebnconv{i}d").conv_s1.in_channels == 4
    assert count_parameters(without) < count_parameters(with_skip)

    # Silence the inner U (zero its last conv's output): with the residual the block then
    # returns rebnconvin's output unchanged; without it the block returns zeros.
    x = torch.rand(2, 3, 19, 22)
    for block in (with_skip, without):
        handle = block.rebnconv1d.register_forward_hook(lambda m, inp, out: torch.zeros_like(out))
        with torch.no_grad():
            out, hxin = block(x), block.rebnconvin(x)
        handle.remove()
        if block.skip:
            torch.testing.assert_close(out, hxin)
        else:
            assert torch.count_nonzero(out) == 0


def test_skip_false_full_models():
    torch.manual_seed(0)
    for cls, full in [(U2NetP, EXPECTED_PARAMS["u2netp"]), (U2Net, EXPECTED_PARAMS["u2net"])]:
        model = cls(skip=False).eval()
        assert count_parameters(model) < full
        assert all(not m.skip for m in model.modules() if isinstance(m, RSU))
        # The outer U still concatenates: stage5d takes stage6 + stage5 channels.
        assert model.stage5d.rebnconvin.conv_s1.in_channels == 2 * model.stage5.rebnconv1d.conv_s1.out_channels
    with torch.no_grad():
        outputs = U2NetP(skip=False).eval()(torch.rand(1, 3, 41, 53))
    _check_outputs(outputs, 1, 1, 41, 53)


def test_gradients_reach_every_parameter():
    # eval(): with batch statistics a conv bias in front of BatchNorm is cancelled exactly, so its
    # gradient would be ~0; with running statistics every parameter must get a real gradient.
    torch.manual_seed(0)
    model = U2NetP().eval()
    outputs = model(torch.rand(2, 3, 64, 72))
    sum(out.mean() for out in outputs).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


def test_describe_rows(models):
    rows = describe(models["u2net"])
    assert len(rows) == 11
    assert rows[0] == ("stage1", "RSU-7", 3, 32, 64)
    assert rows[5] == ("stage6", "RSU-4F", 512, 256, 512)
    assert rows[-1] == ("stage1d", "RSU-7", 128, 16, 64)
    assert [r[0] for r in describe(models["u2netp"])][6:] == ["stage5d", "stage4d", "stage3d", "stage2d", "stage1d"]


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.rand(3, 32, 32), "4-D"),
        (torch.randint(0, 255, (1, 3, 32, 32)), "floating-point"),
        (torch.rand(1, 4, 32, 32), "input channel"),
    ],
)
def test_bad_input_raises(models, bad, match):
    with pytest.raises(ValueError, match=match):
        models["u2netp"](bad)


def test_inner_skip_and_residual_switches_are_separate():
    x = torch.rand(1, 8, 20, 20)
    no_inner = RSU(4, 8, 4, 6, inner_skip=False)
    assert no_inner.residual and not no_inner.inner_skip
    assert no_inner.rebnconv1d.conv_s1.in_channels == 4  # no concatenation
    no_res = RSU(4, 8, 4, 6, residual=False)
    assert no_res.inner_skip and not no_res.residual
    assert no_res.rebnconv1d.conv_s1.in_channels == 8
    no_res.eval()
    with torch.no_grad():
        hxin = no_res.rebnconvin(x)
        both = RSU(4, 8, 4, 6)
        both.load_state_dict(no_res.state_dict())
        both.eval()
        torch.testing.assert_close(both(x), no_res(x) + hxin)  # the residual is exactly the "+ hxin"
    full = U2NetP(inner_skip=False)
    assert all(not getattr(full, f"stage{i}").inner_skip and getattr(full, f"stage{i}").residual for i in range(1, 7))


def test_fusion_init_mean_starts_d0_as_the_average_of_the_side_logits():
    torch.manual_seed(0)
    default = U2NetP()
    torch.manual_seed(0)
    mean = U2NetP(fusion_init="mean")
    torch.testing.assert_close(mean.outconv.weight, torch.full_like(mean.outconv.weight, 1 / 6))
    assert mean.outconv.bias.abs().max() == 0
    # Everything else is the same random initialisation.
    for (name, a), (_, b) in zip(default.state_dict().items(), mean.state_dict().items()):
        if not name.startswith("outconv"):
            torch.testing.assert_close(a, b)
    two = U2NetP(out_ch=2, fusion_init="mean").outconv.weight[:, :, 0, 0]
    assert torch.allclose(two.sum(dim=1), torch.ones(2)) and two[0, 1] == 0 and two[1, 0] == 0
    with pytest.raises(ValueError, match="fusion_init"):
        U2NetP(fusion_init="zeros")
