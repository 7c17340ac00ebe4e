"""VGG16-UNet: torchvision's VGG16 convolutional layers as the encoder, a light UNet decoder on top.

Encoder taps (outputs of the ReLUs in ``vgg16().features``), for a 3 x H x W input:

    index  3  block1_conv2   64 x H    x W
    index  8  block2_conv2  128 x H/2  x W/2
    index 15  block3_conv3  256 x H/4  x W/4
    index 22  block4_conv3  512 x H/8  x W/8
    index 29  block5_conv3  512 x H/16 x W/16   (the bridge: deepest features, not a skip)

Decoder: four blocks of 2x2 stride-2 transposed conv, concat with the tap of the same size,
then two (3x3 conv, BN, ReLU), with widths 128, 64, 32, 16 by default; a 1x1 conv and a sigmoid
give the person probability. The Keras VGG16-UNet this course started from mirrors the encoder
(512, 256, 128, 64: ``decoder_widths=REFERENCE_DECODER_WIDTHS``); that decoder costs 1.5x the
whole VGG16 encoder in FLOPs, because its wide layers run at full and half resolution, while the
slim default costs a fifth of it and adds no parameters to speak of.

Input normalisation happens INSIDE the model: feed RGB images scaled to [0, 1]; the model
subtracts the ImageNet mean and divides by the ImageNet std, as the pretrained weights expect.
"""
from __future__ import annotations

import time
import warnings
from pathlib import Path

import torch
from torch import nn
from torchvision.models import VGG16_Weights
from torchvision.models.vgg import cfgs, make_layers

from utils.config import OFFLINE_VARIABLE, offline_mode
from utils.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from utils.models.common import check_image_batch, match_size

# Slices of vgg16().features that end right after the ReLUs at indices 3, 8, 15, 22 and 29.
ENCODER_SLICES = ((0, 4), (4, 9), (9, 16), (16, 23), (23, 30))
# The same five taps in vgg16_bn().features (a BatchNorm after every conv): ReLUs 5, 12, 22, 32 and 42.
ENCODER_SLICES_BN = ((0, 6), (6, 13), (13, 23), (23, 33), (33, 43))
ENCODER_WIDTHS = (64, 128, 256, 512, 512)
# Slim widths: the decoder upsamples what the encoder found, it need not be as wide (see the module docstring).
DECODER_WIDTHS = (128, 64, 32, 16)
REFERENCE_DECODER_WIDTHS = (512, 256, 128, 64)
# Connecting to the download server: a student without internet waits seconds, not minutes.
DOWNLOAD_TIMEOUT_S = 5.0
# During the transfer (528 MB) only a stall this long aborts it: the transfer as a whole has no time limit.
DOWNLOAD_STALL_S = 60.0


UPSAMPLE_MODES = ("transposed", "bilinear")


class DecoderBlock(nn.Module):
    """2x2 transposed conv (x2 upsampling), concat with the encoder tap (if skip), two conv-BN-ReLU.

    upsample="bilinear" replaces the transposed conv by bilinear x2 + 1x1 conv: no 2x2 grid by construction
    (notebook 01's checkerboard lesson).
    """

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, skip: bool = True,
                 upsample: str = "transposed") -> None:
        super().__init__()
        if upsample not in UPSAMPLE_MODES:
            raise ValueError(f"upsample must be one of {UPSAMPLE_MODES}, got {upsample!r}")
        self.skip = skip
        if upsample == "transposed":
            self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        else:
            self.up = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                                    nn.Conv2d(in_channels, out_channels, 1))
        conv_in = out_channels + skip_channels if skip else out_channels
        self.conv = nn.Sequential(
            nn.Conv2d(conv_in, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor, skip_features: torch.Tensor) -> torch.Tensor:
        """Upsample `x` to the size of the encoder tap `skip_features`; concatenate them (if skip=True), decode."""
        x = match_size(self.up(x), skip_features.shape[-2:])
        if self.skip:
            x = torch.cat([skip_features, x], dim=1)  # the skip connection
        return self.conv(x)


def _download_with_progress(url: str, destination: Path) -> None:
    """Fetch `url` to `destination` with a progress bar; the timeout bounds the connection and stalls, not the
    transfer. The file appears only when complete and its SHA-256 matches the prefix in its name (torch hub style)."""
    import hashlib
    import os
    import urllib.request

    from tqdm.auto import tqdm

    request = urllib.request.Request(url, headers={"User-Agent": "unet-course"})
    with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response:
        raw_socket = getattr(getattr(getattr(response, "fp", None), "raw", None), "_sock", None)
        if raw_socket is not None:
            raw_socket.settimeout(DOWNLOAD_STALL_S)  # connected: from now on only a stalled transfer gives up
        total = int(response.headers.get("Content-Length") or 0) or None
        destination.parent.mkdir(parents=True, exist_ok=True)
        partial = destination.with_name(destination.name + ".partial")
        digest = hashlib.sha256()
        with open(partial, "wb") as file, tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                                               desc=f"downloading {destination.name}") as bar:
            while chunk := response.read(1 << 20):
                file.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
    expected = destination.stem.rsplit("-", 1)[-1]
    if "-" in destination.stem and not digest.hexdigest().startswith(expected):
        partial.unlink(missing_ok=True)
        raise OSError(f"downloaded {destination.name} is damaged (SHA-256 does not start with {expected}); try again")
    os.replace(partial, destination)


def _imagenet_vgg16_state_dict() -> dict[str, torch.Tensor]:
    """Torchvision's ImageNet VGG16 weights (528 MB) from the torch hub cache, else downloaded with a progress bar."""
    weights = VGG16_Weights.IMAGENET1K_V1
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    if not cached.is_file():
        if offline_mode():
            raise OSError(f"{OFFLINE_VARIABLE} is set and the weights are not in the torch hub cache")
        _download_with_progress(weights.url, cached)
    return torch.load(cached, map_location="cpu", weights_only=True)


def vgg16_config(width: float = 1.0) -> list[int | str]:
    """VGG16's layer list ("D": 13 convs, "M" = max-pool) with every conv width scaled by `width`."""
    return [layer if layer == "M" else max(1, round(layer * width)) for layer in cfgs["D"]]


def _kaiming_init(features: nn.Sequential) -> None:
    """VGG's own initialisation; PyTorch's default would shrink the signal through 13 convs without BN."""
    for module in features.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(module.bias)


def _features_only(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Accept a whole VGG16 state_dict ('features.0.weight') or a features-only one ('0.weight')."""
    if any(key.startswith("features.") for key in state):
        return {key.removeprefix("features."): value for key, value in state.items() if key.startswith("features.")}
    return state


class VGG16UNet(nn.Module):
    """Person segmentation UNet whose encoder is VGG16 (ImageNet weights when they can be had)."""

    def __init__(
        self,
        pretrained: bool = True,
        skip: bool = True,
        freeze_encoder: bool = False,
        weights_path: str | Path | None = None,
        decoder_widths: tuple[int, int, int, int] = DECODER_WIDTHS,
        batch_norm: bool = False,
        width: float = 1.0,
        upsample: str = "transposed",
    ) -> None:
        """`batch_norm=True` builds torchvision's vgg16_bn layout (BatchNorm after every conv) and `width`
        scales every encoder width (0.5: 32..256 channels). Both are for training from random weights,
        where plain VGG16 learns slowly; the ImageNet weights fit only the plain full-width layout.
        `upsample`: "transposed" (2x2 stride-2 transposed convs, the seed's decoder) or "bilinear"."""
        super().__init__()
        if len(decoder_widths) != 4 or any(not isinstance(w, int) or w < 1 for w in decoder_widths):
            raise ValueError(f"decoder_widths must be four positive integers (one per skip tap), got {decoder_widths!r}")
        if not 0 < width <= 4:
            raise ValueError(f"width must be in (0, 4], got {width!r}")
        plain = not batch_norm and width == 1.0
        if not plain and (pretrained or weights_path is not None):
            raise ValueError("ImageNet VGG16 weights fit only batch_norm=False, width=1.0; pass pretrained=False")
        self.skip, self.batch_norm, self.width = skip, batch_norm, width
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        # Only the convolutional part: building all of vgg16() would initialise a 120M-parameter classifier.
        features = make_layers(vgg16_config(width), batch_norm=batch_norm)
        _kaiming_init(features)
        self.weights_source = self._load_encoder_weights(features, pretrained, weights_path)
        slices = ENCODER_SLICES_BN if batch_norm else ENCODER_SLICES
        self.encoder = nn.ModuleList(features[start:end] for start, end in slices)
        encoder_widths = tuple(max(1, round(w * width)) for w in ENCODER_WIDTHS)
        if freeze_encoder:
            for parameter in self.encoder.parameters():
                parameter.requires_grad_(False)

        decoder_widths = tuple(decoder_widths)
        in_widths = (encoder_widths[-1],) + decoder_widths[:-1]  # 512 from the bridge, then each block's output
        tap_widths = encoder_widths[-2::-1]  # 512, 256, 128, 64 (at width 1)
        self.decoder = nn.ModuleList(
            DecoderBlock(i, t, o, skip, upsample) for i, t, o in zip(in_widths, tap_widths, decoder_widths)
        )
        self.head = nn.Conv2d(decoder_widths[-1], 1, 1)

    @staticmethod
    def _load_encoder_weights(features: nn.Sequential, pretrained: bool, weights_path: str | Path | None) -> str:
        """Fill `features` with a local file or ImageNet weights; say so clearly when neither works."""
        if weights_path is not None:
            path = Path(weights_path)
            if not path.is_file():
                raise FileNotFoundError(f"VGG16 weights file not found: {path}")
            state = torch.load(path, map_location="cpu", weights_only=True)
            features.load_state_dict(_features_only(state))
            return f"local file {path}"
        if not pretrained:
            return "random initialisation (pretrained=False)"
        start = time.perf_counter()
        try:
            features.load_state_dict(_features_only(_imagenet_vgg16_state_dict()))
            return "ImageNet (VGG16_Weights.IMAGENET1K_V1)"
        except Exception as error:  # any network, cache or file problem: teach on, with random weights
            seconds = time.perf_counter() - start
            warnings.warn(
                f"VGG16 ImageNet weights unavailable ({type(error).__name__} after {seconds:.1f} s); "
                "the encoder starts from random weights. Pass weights_path= to use a downloaded file.",
                stacklevel=3,
            )
            return "random initialisation (ImageNet weights unavailable)"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map RGB images in [0, 1], shape (N, 3, H, W), to person probabilities (N, 1, H, W)."""
        check_image_batch(x, 3, "VGG16UNet")
        x = (x - self.mean) / self.std
        taps = []
        for stage in self.encoder:
            x = stage(x)
            taps.append(x)
        x = taps.pop()  # block5_conv3 is the bridge
        for block in self.decoder:
            x = block(x, taps.pop())
        return torch.sigmoid(self.head(x))
