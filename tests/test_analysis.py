"""Receptive field, FLOPs and latency helpers."""
import pytest
import torch
from torch import nn

from utils.analysis import checkpoint_megabytes, count_flops, measure_latency, receptive_field


def test_receptive_field_of_known_chains():
    assert receptive_field([nn.Conv2d(1, 1, 3)]) == 3
    assert receptive_field([nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 3)]) == 5
    # conv3, pool2, conv3: the second conv's steps are 2 input pixels wide
    assert receptive_field([nn.Conv2d(1, 1, 3), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3)]) == 3 + 1 + 4
    assert receptive_field([nn.Conv2d(1, 1, 3, dilation=4)]) == 9


def test_receptive_field_matches_gradient_extent_without_pooling():
    layers = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 3, padding=2, dilation=2))
    for conv in layers:
        nn.init.constant_(conv.weight, 1.0)
    x = torch.zeros(1, 1, 31, 31, requires_grad=True)
    layers(x)[0, 0, 15, 15].backward()
    rows = torch.nonzero(x.grad[0, 0].abs().sum(dim=1))
    assert rows.max() - rows.min() + 1 == receptive_field(layers)


def test_flops_of_a_single_conv():
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    assert count_flops(conv, (1, 3, 10, 10)) == 2 * 3 * 8 * 9 * 100


def test_latency_and_size_are_positive():
    model = nn.Conv2d(3, 4, 3)
    stats = measure_latency(model, (1, 3, 16, 16), repeats=3)
    assert 0 < stats["min_ms"] <= stats["median_ms"] <= stats["max_ms"]
    assert checkpoint_megabytes(model) == (4 * 3 * 9 + 4) * 4 / 1e6


def test_grid_strength_separates_a_2x2_grid_from_content():
    from utils.analysis import grid_strength

    torch.manual_seed(0)
    grid = torch.tensor([[1.0, -1.0], [-0.5, 0.5]]).repeat(32, 32)[None, None].repeat(3, 1, 1, 1)
    noise = torch.rand(3, 1, 64, 64)
    smooth = torch.nn.functional.avg_pool2d(torch.rand(3, 1, 72, 72), 9, stride=1)
    assert grid_strength(grid) == pytest.approx(1.0)
    assert grid_strength(grid + 0.1 * noise) > 0.9
    assert grid_strength(noise) < 0.06 and grid_strength(smooth) < 0.08
    # An odd size is cut to whole cells; the result does not depend on the map's level or scale.
    assert grid_strength(5 * grid[..., :63, :63] + 3) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="N, C, H, W"):
        grid_strength(grid[0])
    with pytest.raises(ValueError, match="smaller than one"):
        grid_strength(torch.zeros(1, 1, 1, 5))
