"""Shared plots: tables, training curves, and architecture diagrams drawn from the model objects."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from utils.models import RSU, U2NetP, UNet, VGG16UNet  # noqa: E402
from utils.plots import draw_architecture, format_table  # noqa: E402


def texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts] + [ax.get_title() for ax in fig.axes]


def test_format_table_aligns_and_formats_numbers():
    table = format_table([("a", 1.23456, 1234), ("bb", None, 5)], ["name", "x", "n"], floats="{:.2f}")
    lines = table.splitlines()
    assert lines[0].split() == ["name", "x", "n"] and set(lines[1]) <= {"-", " "}
    assert lines[2].split() == ["a", "1.23", "1,234"] and lines[3].split() == ["bb", "-", "5"]
    assert len({len(line) for line in lines}) == 1  # every line padded to the same width


def test_unet_diagram_shows_the_measured_shapes_skips_and_receptive_fields():
    fig = draw_architecture(UNet(3, 3, base_channels=8, depth=3), 64, 48)
    words = "\n".join(texts(fig))
    assert "8 x 64 x 48" in words and "64 x 8 x 6" in words  # level 0 and the bottom (8 * 2**3 channels)
    assert "skip: concatenate" in words and "receptive field" in words
    plt.close(fig)
    fig = draw_architecture(UNet(3, 3, base_channels=8, depth=3, skip=False), 64)
    assert "skip: concatenate" not in "\n".join(texts(fig)) and "without skip" in fig.axes[0].get_title()
    plt.close(fig)


def test_vgg16_unet_u2net_and_rsu_diagrams():
    fig = draw_architecture(VGG16UNet(pretrained=False), 64)
    assert "512 x 4 x 4" in "\n".join(texts(fig))
    plt.close(fig)
    fig = draw_architecture(U2NetP(), 64)
    words = "\n".join(texts(fig))
    assert "En_1 = stage1" in words and "De_5 = stage5d" in words and "RSU-4F(64, 16, 64)" in words
    assert "S_6 = side6 -> d6" in words
    plt.close(fig)
    fig = draw_architecture(RSU(5, 3, 4, 6), 32)
    words = "\n".join(texts(fig))
    assert "rebnconv5" in words and "dilation 2" in words and "residual: + input features" in words
    plt.close(fig)


def test_unknown_model_is_a_clear_error():
    import torch

    with pytest.raises(ValueError, match="no diagram for Linear"):
        draw_architecture(torch.nn.Linear(2, 2))


def test_rsu_diagram_follows_the_inner_skip_and_residual_switches():
    fig = draw_architecture(RSU(4, 3, 4, 6, inner_skip=False, residual=True), 32)
    words = "\n".join(texts(fig))
    assert "skip: concatenate" not in words and "residual: + input features" in words
    plt.close(fig)
    fig = draw_architecture(RSU(4, 3, 4, 6, inner_skip=True, residual=False), 32)
    words = "\n".join(texts(fig))
    assert "skip: concatenate" in words and "residual" not in words
    plt.close(fig)


def test_show_as_jpeg_displays_a_small_jpeg_and_closes_the_figure(monkeypatch):
    import IPython.display

    from utils.plots import show_as_jpeg

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    rng = np.random.default_rng(0)
    fig, ax = plt.subplots(figsize=(3, 3))
    ax.imshow(rng.random((64, 64, 3)))
    show_as_jpeg(fig, quality=70)
    (image,) = shown
    assert image.format == "jpeg" and image.data[:2] == b"\xff\xd8"  # the JPEG start-of-image marker
    assert not plt.fignum_exists(fig.number)
