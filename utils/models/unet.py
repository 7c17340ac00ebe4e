"""The course UNet: encoder, decoder, skip connections and four ways to upsample.

Layout at the default depth=4 and base_channels=64 (the course's reference design):

    stem      1x1 conv in -> 64, LeakyReLU           (full resolution)
    enc0      ConvBlock 64 -> 64                      H x W
    down1..4  MaxPool 2x2, ConvBlock c -> 2c          64 -> 128 -> 256 -> 512 -> 1024
    up4..1    upsample 2c -> c, [concat skip c], ConvBlock (2c or c) -> c
    head      1x1 conv 64 -> out, Tanh / Sigmoid / nothing

With ``skip=True`` each decoder ConvBlock sees ``2c`` channels (``c`` upsampled + ``c`` from the
encoder). ``skip=False`` drops the concatenation and nothing else, so that ConvBlock takes ``c``
channels: only the first conv of every decoder block gets narrower, and the model has fewer parameters
(10.8 % fewer at the reference width). ``skip=False, match_skip_params=True`` is the capacity control:
each decoder level's upsampler then makes more channels (about 1.8c instead of c), chosen so that the
model has the parameter count of the UNet with skips (to within 0.1 %); it still sees no encoder features.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from utils.analysis import output_shapes
from utils.models.common import check_image_batch, match_size

UPSAMPLING_METHODS = ("bilinear", "pixel_shuffle", "unpool", "transpose")
FINAL_ACTIVATIONS = ("tanh", "sigmoid", None)
NEGATIVE_SLOPE = 0.2


def make_activation(final_activation: str | None) -> nn.Module:
    """The output layer for a head: Tanh for images in [-1, 1], Sigmoid for masks and [0, 1], or nothing."""
    if final_activation not in FINAL_ACTIVATIONS:
        raise ValueError(f"final_activation must be one of {FINAL_ACTIVATIONS}, got {final_activation!r}")
    return {"tanh": nn.Tanh(), "sigmoid": nn.Sigmoid(), None: nn.Identity()}[final_activation]


class ConvBlock(nn.Sequential):
    """(3x3 conv without bias, BatchNorm, LeakyReLU) twice; the bias is dropped because BN re-centres."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True),
        )


class Down(nn.Module):
    """Halve the resolution with 2x2 max pooling, then a ConvBlock that doubles the width."""

    def __init__(self, in_channels: int, out_channels: int, keep_indices: bool = False) -> None:
        super().__init__()
        # Max-unpooling in the decoder needs to know where each maximum came from.
        self.pool = nn.MaxPool2d(2, return_indices=keep_indices)
        self.keep_indices = keep_indices
        self.conv = ConvBlock(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return the features and, for unpooling, the pooling indices."""
        if self.keep_indices:
            x, indices = self.pool(x)
            return self.conv(x), indices
        return self.conv(self.pool(x)), None


def make_upsampler(method: str, in_channels: int, out_channels: int) -> nn.Module:
    """One x2 upsampling layer that also maps `in_channels` to `out_channels`."""
    if method == "bilinear":
        # The interpolation itself happens in Up.forward, to the exact size of the skip.
        layers = [nn.Conv2d(in_channels, out_channels, 1, bias=False)]
    elif method == "pixel_shuffle":
        # Make 4 channels per output channel, then rearrange them into a 2x2 spatial block.
        layers = [nn.Conv2d(in_channels, out_channels * 4, 1, bias=False), nn.PixelShuffle(2)]
    elif method == "unpool":
        # Unpooling copies values to where the encoder's maxima were; channels must match the encoder's.
        layers = [nn.Conv2d(in_channels, out_channels, 1, bias=False)]
    elif method == "transpose":
        layers = [nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1, bias=False)]
    else:
        raise ValueError(f"up must be one of {UPSAMPLING_METHODS}, got {method!r}")
    return nn.Sequential(*layers, nn.BatchNorm2d(out_channels), nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True))


def _level_parameters(method: str, in_channels: int, up_channels: int, out_channels: int, skip: bool) -> int:
    """Parameters of one decoder level (upsampler + ConvBlock), in closed form, without building it."""
    per_pixel = {"bilinear": 1, "unpool": 1, "pixel_shuffle": 4, "transpose": 16}[method]
    upsampler = in_channels * up_channels * per_pixel + 2 * up_channels  # conv weights + BatchNorm
    block_in = up_channels + (out_channels if skip else 0)
    return upsampler + 9 * block_in * out_channels + 9 * out_channels**2 + 4 * out_channels


def matched_up_channels(method: str, in_channels: int, out_channels: int) -> int:
    """Upsampler width that gives a no-skip decoder level the parameter count of a level with skips."""
    if method == "unpool":
        raise ValueError("match_skip_params needs an upsampler that can change the width; unpool cannot")
    target = _level_parameters(method, in_channels, out_channels, out_channels, skip=True)
    return min(range(out_channels, 4 * out_channels + 1),
               key=lambda u: abs(_level_parameters(method, in_channels, u, out_channels, skip=False) - target))


class Up(nn.Module):
    """Upsample x2, concatenate the encoder's features of the same level (if skip), then a ConvBlock."""

    def __init__(self, in_channels: int, out_channels: int, method: str = "bilinear", skip: bool = True,
                 up_channels: int | None = None) -> None:
        super().__init__()
        self.method = method
        self.skip = skip
        up_channels = up_channels or out_channels  # wider only for the parameter-matched no-skip control
        self.upsample = make_upsampler(method, in_channels, up_channels)
        self.unpool = nn.MaxUnpool2d(2) if method == "unpool" else None
        self.conv = ConvBlock(up_channels + out_channels if skip else up_channels, out_channels)

    def forward(self, x: torch.Tensor, skip_features: torch.Tensor, indices: torch.Tensor | None = None) -> torch.Tensor:
        """Upsample `x` to the size of `skip_features`, concatenate them (if skip=True), then convolve."""
        x = self.upsample_to(x, skip_features.shape[-2:], indices)
        if self.skip:
            x = torch.cat([skip_features, x], dim=1)  # the skip connection: the whole idea of a UNet in one line
        return self.conv(x)

    def upsample_to(self, x: torch.Tensor, size: torch.Size, indices: torch.Tensor | None = None) -> torch.Tensor:
        """x2 upsampling by the chosen method, to exactly `size` (odd input sizes round down in the encoder)."""
        if self.method == "bilinear":
            return self.upsample(F.interpolate(x, size=size, mode="bilinear", align_corners=False))
        if self.method == "unpool":
            return self.unpool(self.upsample(x), indices, output_size=size)
        return match_size(self.upsample(x), size)


class UNet(nn.Module):
    """UNet with a choice of upsampling method, output head and an on/off switch for skip connections."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        base_channels: int = 64,
        depth: int = 4,
        skip: bool = True,
        up: str = "bilinear",
        final_activation: str | None = "tanh",
        match_skip_params: bool = False,
    ) -> None:
        super().__init__()
        if up not in UPSAMPLING_METHODS:
            raise ValueError(f"up must be one of {UPSAMPLING_METHODS}, got {up!r}")
        if match_skip_params and skip:
            raise ValueError("match_skip_params widens a decoder without skips; use it with skip=False")
        activation = make_activation(final_activation)
        if depth < 1 or in_channels < 1 or out_channels < 1 or base_channels < 1:
            raise ValueError("depth, in_channels, out_channels and base_channels must all be positive")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.depth, self.skip, self.up_method = depth, skip, up
        self.final_activation = final_activation

        widths = [base_channels * 2**level for level in range(depth + 1)]  # 64, 128, ..., 1024
        self.stem = nn.Sequential(nn.Conv2d(in_channels, base_channels, 1), nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True))
        self.enc0 = ConvBlock(base_channels, base_channels)
        self.downs = nn.ModuleList(
            Down(widths[i], widths[i + 1], keep_indices=(up == "unpool")) for i in range(depth)
        )
        self.ups = nn.ModuleList(
            Up(widths[i + 1], widths[i], up, skip,
               matched_up_channels(up, widths[i + 1], widths[i]) if match_skip_params else None)
            for i in reversed(range(depth))
        )
        self.head = nn.Conv2d(base_channels, out_channels, 1)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map a batch (N, in_channels, H, W) to (N, out_channels, H, W); any H and W work."""
        check_image_batch(x, self.in_channels, "UNet")
        x = self.enc0(self.stem(x))
        features, pool_indices = [], []
        for down in self.downs:
            features.append(x)
            x, indices = down(x)
            pool_indices.append(indices)
        for up in self.ups:
            x = up(x, features.pop(), pool_indices.pop())
        return self.activation(self.head(x))

    def shape_table(self, height: int = 256, width: int = 256) -> list[tuple[str, tuple[int, ...]]]:
        """(layer name, output shape) for one image of the given size, for printing in a notebook."""
        layers = {"stem": self.stem, "enc0": self.enc0}
        layers.update({f"down{i + 1}": down for i, down in enumerate(self.downs)})
        layers.update({f"up{self.depth - i}": up for i, up in enumerate(self.ups)})
        layers["head"] = self.head
        shapes = output_shapes(self, layers, torch.zeros(1, self.in_channels, height, width))
        return [(name, shapes[name]) for name in layers]
