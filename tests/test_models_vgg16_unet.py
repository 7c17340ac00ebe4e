"""VGG16-UNet: encoder taps, decoder widths, weight loading and its offline fallback."""
import warnings

import pytest
import torch
from torchvision.models import vgg16

from utils.models import VGG16UNet, count_parameters


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("UNET_COURSE_OFFLINE", "1")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))


def test_taps_are_taken_after_the_relus():
    model = VGG16UNet(pretrained=False)
    assert [type(stage[-1]).__name__ for stage in model.encoder] == ["ReLU"] * 5
    assert [stage[-2].out_channels for stage in model.encoder] == [64, 128, 256, 512, 512]
    assert [block.conv[3].out_channels for block in model.decoder] == [128, 64, 32, 16]


@pytest.mark.parametrize("skip", [True, False])
@pytest.mark.parametrize("size", [(64, 64), (97, 131)])
def test_output_shape_and_range(skip, size):
    model = VGG16UNet(pretrained=False, skip=skip).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, *size))
    assert out.shape == (1, 1, *size)
    assert 0 <= out.min() and out.max() <= 1


def test_skip_false_has_fewer_parameters():
    with_skip = count_parameters(VGG16UNet(pretrained=False))
    without = count_parameters(VGG16UNet(pretrained=False, skip=False))
    # Each decoder block's first 3x3 conv reads tap + upsampled channels with skips, upsampled only without.
    assert with_skip - without == 9 * (512 * 128 + 256 * 64 + 128 * 32 + 64 * 16)


def test_reference_decoder_widths_reproduce_the_keras_layout():
    from utils.models.vgg16_unet import REFERENCE_DECODER_WIDTHS

    reference = VGG16UNet(pretrained=False, decoder_widths=REFERENCE_DECODER_WIDTHS)
    without = VGG16UNet(pretrained=False, skip=False, decoder_widths=REFERENCE_DECODER_WIDTHS)
    assert count_parameters(reference) - count_parameters(without) == 9 * (512 * 512 + 256 * 256 + 128 * 128 + 64 * 64)
    assert count_parameters(reference) > count_parameters(VGG16UNet(pretrained=False))
    assert reference(torch.rand(1, 3, 32, 32)).shape == (1, 1, 32, 32)


@pytest.mark.parametrize("widths", [(64, 32, 16), (64, 32, 16, 0), (64.0, 32, 16, 8)])
def test_bad_decoder_widths_are_rejected(widths):
    with pytest.raises(ValueError, match="decoder_widths"):
        VGG16UNet(pretrained=False, decoder_widths=widths)


def test_offline_pretrained_warns_and_falls_back_without_touching_the_network(monkeypatch):
    from torchvision.models import VGG16_Weights

    monkeypatch.setenv("UNET_COURSE_OFFLINE", "1")

    def no_download(*args, **kwargs):
        raise AssertionError("offline mode must not try to download the ImageNet weights")

    monkeypatch.setattr(VGG16_Weights.IMAGENET1K_V1.__class__, "get_state_dict", no_download)
    with pytest.warns(UserWarning, match="ImageNet weights unavailable"):
        model = VGG16UNet(pretrained=True)
    assert model.weights_source.startswith("random")


def test_weights_path_loads_a_full_vgg16_state_dict(tmp_path):
    reference = vgg16(weights=None)
    path = tmp_path / "vgg16.pth"
    torch.save(reference.state_dict(), path)
    model = VGG16UNet(weights_path=path)
    assert torch.equal(model.encoder[0][0].weight, reference.features[0].weight)
    assert torch.equal(model.encoder[4][-2].weight, reference.features[28].weight)
    assert "local file" in model.weights_source


def test_cached_imagenet_weights_are_used_without_network(tmp_path):
    reference = vgg16(weights=None)
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(reference.state_dict(), checkpoints / "vgg16-397923af.pth")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = VGG16UNet(pretrained=True)
    assert model.weights_source.startswith("ImageNet")
    assert torch.equal(model.encoder[2][1].weight, reference.features[10].weight)


def test_missing_weights_path_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        VGG16UNet(weights_path=tmp_path / "nope.pth")


def test_freeze_encoder_trains_only_the_decoder():
    model = VGG16UNet(pretrained=False, freeze_encoder=True)
    assert not any(p.requires_grad for p in model.encoder.parameters())
    model(torch.rand(1, 3, 32, 32)).mean().backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert all(p.grad is not None for p in model.decoder.parameters())


def test_gradients_reach_every_parameter():
    model = VGG16UNet(pretrained=False).eval()  # eval: BN would cancel conv biases' gradients in train mode
    model(torch.rand(1, 3, 32, 32)).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("bad", [torch.rand(3, 32, 32), torch.rand(1, 1, 32, 32), torch.zeros(1, 3, 8, 8, dtype=torch.int64)])
def test_bad_input(bad):
    with pytest.raises(ValueError):
        VGG16UNet(pretrained=False)(bad)


def test_vgg16_download_shows_progress_and_bounds_only_the_connection(tmp_path, monkeypatch, capsys):
    """Issue 18: the weights arrive through a progress bar; the timeout is for connecting (and stalls), not the
    whole 528 MB transfer; the file appears only complete and with the hash its name promises."""
    import hashlib
    import io
    import urllib.request

    from utils.models import vgg16_unet

    payload = b"weights" * 100_000
    prefix = hashlib.sha256(payload).hexdigest()[:8]
    seen = {}

    class Response(io.BytesIO):
        headers = {"Content-Length": str(len(payload))}

    def fake_urlopen(request, timeout=None):
        seen["timeout"] = timeout
        return Response(payload)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    good = tmp_path / f"vgg16-{prefix}.pth"
    vgg16_unet._download_with_progress("https://example.invalid/w.pth", good)
    assert good.read_bytes() == payload and seen["timeout"] == vgg16_unet.DOWNLOAD_TIMEOUT_S
    assert "downloading" in capsys.readouterr().err  # tqdm's bar
    bad = tmp_path / "vgg16-00000000.pth"
    with pytest.raises(OSError, match="damaged"):
        vgg16_unet._download_with_progress("https://example.invalid/w.pth", bad)
    assert not bad.exists() and not list(tmp_path.glob("*.partial"))


@pytest.mark.parametrize("batch_norm, width", [(True, 1.0), (True, 0.5), (False, 0.5)])
def test_offline_encoder_forms_keep_the_taps_and_shapes(batch_norm, width):
    model = VGG16UNet(pretrained=False, batch_norm=batch_norm, width=width)
    x = torch.rand(2, 3, 64, 64)
    taps = []
    with torch.no_grad():
        h = (x - model.mean) / model.std
        for stage in model.encoder:
            h = stage(h)
            taps.append(h)
            assert isinstance(stage[-1], torch.nn.ReLU)  # every tap is taken right after a ReLU
    assert [t.shape[1] for t in taps] == [round(w * width) for w in (64, 128, 256, 512, 512)]
    assert [t.shape[-1] for t in taps] == [64, 32, 16, 8, 4]
    assert model(x).shape == (2, 1, 64, 64)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.encoder.modules()) == batch_norm


def test_vgg16_bn_layout_matches_torchvision():
    from torchvision.models import vgg16_bn

    ours = VGG16UNet(pretrained=False, batch_norm=True)
    with torch.device("meta"):  # shapes only: no 120M-parameter classifier to initialise
        theirs = vgg16_bn().features[:43].state_dict()
    assert [tuple(v.shape) for v in ours.encoder.state_dict().values()] == [tuple(v.shape) for v in theirs.values()]


def test_imagenet_weights_only_for_the_plain_layout():
    with pytest.raises(ValueError, match="pretrained=False"):
        VGG16UNet(pretrained=True, batch_norm=True)
    with pytest.raises(ValueError, match="width"):
        VGG16UNet(pretrained=False, width=0)


def test_bilinear_upsampling_has_no_grid_at_init():
    torch.manual_seed(0)
    flat = torch.ones(1, 64, 8, 8)
    from utils.models.vgg16_unet import DecoderBlock

    bilinear = DecoderBlock(64, 32, 16, upsample="bilinear").up(flat)[..., 2:-2, 2:-2]
    transposed = DecoderBlock(64, 32, 16).up(flat)[..., 2:-2, 2:-2]
    assert bilinear.std(dim=(-2, -1)).max() < 1e-5
    assert transposed.std(dim=(-2, -1)).max() > 1e-3
    with pytest.raises(ValueError, match="upsample"):
        DecoderBlock(64, 32, 16, upsample="nearest")
