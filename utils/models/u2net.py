"""U^2-Net and U^2-Net-p (Qin et al. 2020, arXiv 2005.09007) in one readable file.

The idea: a U-Net whose every stage is itself a small U-Net.

* RSU ("ReSidual U-block") of height L: a 3x3 conv maps the input to `out_ch`
  channels (call it hxin), then a little encoder/decoder with L levels and
  `mid_ch` channels works on hxin, concatenating encoder features into the
  decoder like U-Net does. The block returns `decoder_output + hxin`, i.e. a
  residual connection around a whole U-Net, so every stage sees both local and
  multi-scale context while keeping the input resolution.
* RSU-4F is the "flat" variant used at the lowest resolutions: instead of
  pooling (the feature map is already tiny there) it grows the dilation
  1, 2, 4, 8 so the receptive field still widens.
* U^2-Net stacks six RSU encoder stages and five RSU decoder stages in an
  outer U, makes a 1-channel side prediction from each decoder stage (and the
  deepest encoder stage), and fuses the six side maps with a 1x1 conv.

Ablation switches (accepted by `RSU`, `U2Net` and `U2NetP`): `skip=False` builds
RSU blocks without their inner concatenations and without the residual add, so
each block is a plain encoder/decoder. `inner_skip=` and `residual=` turn off one
of the two alone (each defaults to `skip`). The outer U's concatenations stay, so
only the "U inside the U" loses its skips.

Fusion initialisation: `fusion_init="default"` (the official model) leaves the 1x1
fusion conv with PyTorch's random initialisation, so some side maps start with a
negative weight in d0. `fusion_init="mean"` starts it as the plain average of the
side-map logits (every weight 1/6, bias 0); the other weights are the same random
numbers either way.

Attribute names (`stage1.rebnconv6d.conv_s1.weight`, ...) follow the official
code of xuebinqin/U-2-Net so its pretrained checkpoints load with strict=True.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from utils.models.common import check_image_batch


def resize_like(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Bilinearly resize `x` to `reference`'s exact height and width (a no-op when they already match)."""
    if x.shape[-2:] == reference.shape[-2:]:
        return x
    # Resizing to an explicit size (not scale_factor=2) is what makes odd inputs work:
    # ceil_mode pooling turns 25 into 13, and 2 * 13 = 26 would no longer fit the skip tensor.
    return F.interpolate(x, size=reference.shape[-2:], mode="bilinear", align_corners=False)


class ConvBNReLU(nn.Module):
    """3x3 conv (optionally dilated, size preserving) -> BatchNorm -> ReLU; the official REBNCONV."""

    def __init__(self, in_ch: int, out_ch: int, dilation: int = 1) -> None:
        super().__init__()
        # padding = dilation keeps H x W unchanged for a 3x3 kernel at any dilation.
        # The attribute names are the official ones so state_dict keys match.
        self.conv_s1 = nn.Conv2d(in_ch, out_ch, 3, padding=dilation, dilation=dilation, bias=True)
        self.bn_s1 = nn.BatchNorm2d(out_ch)
        self.relu_s1 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply conv, batch norm and ReLU."""
        return self.relu_s1(self.bn_s1(self.conv_s1(x)))


class RSU(nn.Module):
    """Residual U-block of a given height: RSU-7/6/5/4, or RSU-4F with `dilated=True`.

    Layout for height L (official attribute names):
      rebnconvin                  in_ch -> out_ch, dilation 1 (hxin, the residual branch)
      rebnconv1 .. rebnconv{L}    encoder, out_ch -> mid_ch, then mid_ch -> mid_ch
      rebnconv{L-1}d .. rebnconv1d  decoder, 2*mid_ch -> mid_ch, the last one -> out_ch
    Non-dilated: rebnconv1..{L-1} use dilation 1 with a 2x2 max-pool (pool1..pool{L-2})
    between consecutive ones; the innermost rebnconv{L} uses dilation 2 at the same
    resolution as rebnconv{L-1}. Dilated (RSU-4F): no pooling, encoder/decoder conv i
    uses dilation 2**(i-1).

    skip=False is the ablation: the decoder convs take only the deeper feature
    (mid_ch input channels instead of 2*mid_ch, no concatenation) and the block
    returns the decoder output without adding hxin. inner_skip=False removes only
    the concatenations, residual=False only the add (both default to `skip`).
    """

    def __init__(
        self, height: int, in_ch: int, mid_ch: int, out_ch: int, dilated: bool = False, skip: bool = True,
        *, inner_skip: bool | None = None, residual: bool | None = None,
    ) -> None:
        super().__init__()
        if height < 2:
            raise ValueError(f"RSU height must be at least 2, got {height}")
        self.height, self.dilated, self.skip = height, dilated, skip
        # The two halves of the ablation, each on its own: the U's concatenations and the residual add.
        self.inner_skip = skip if inner_skip is None else inner_skip
        self.residual = skip if residual is None else residual

        self.rebnconvin = ConvBNReLU(in_ch, out_ch, dilation=1)

        # Encoder. Registration order (conv, pool, conv, ...) mirrors the official file,
        # which is what makes our state_dict list its keys in the same order.
        for i in range(1, height + 1):
            if not dilated and 2 <= i <= height - 1:
                setattr(self, f"pool{i - 1}", nn.MaxPool2d(2, stride=2, ceil_mode=True))
            conv_in = out_ch if i == 1 else mid_ch
            setattr(self, f"rebnconv{i}", ConvBNReLU(conv_in, mid_ch, dilation=self._dilation(i)))

        # Decoder, deepest first. Without skips a decoder conv sees only the deeper feature.
        dec_in = 2 * mid_ch if self.inner_skip else mid_ch
        for i in range(height - 1, 0, -1):
            conv_out = out_ch if i == 1 else mid_ch
            dilation = 2 ** (i - 1) if dilated else 1
            setattr(self, f"rebnconv{i}d", ConvBNReLU(dec_in, conv_out, dilation=dilation))

    def _dilation(self, i: int) -> int:
        """Dilation of encoder conv i: doubling per level in RSU-4F, else 1 except 2 at the innermost."""
        if self.dilated:
            return 2 ** (i - 1)
        # The innermost conv runs at the same resolution as the one above it (no pool),
        # so dilation 2 is the only thing that widens its view.
        return 2 if i == self.height else 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the inner U-Net on conv(x) and (with skip=True) add conv(x) back."""
        hxin = self.rebnconvin(x)

        encoder_features = []
        hx = hxin
        for i in range(1, self.height + 1):
            if not self.dilated and 2 <= i <= self.height - 1:
                hx = getattr(self, f"pool{i - 1}")(hx)
            hx = getattr(self, f"rebnconv{i}")(hx)
            encoder_features.append(hx)

        # encoder_features[i - 1] is hx{i}; the decoder starts from the innermost one.
        hx = encoder_features[-1]
        for i in range(self.height - 1, 0, -1):
            skip_features = encoder_features[i - 1]
            # Upsample to the skip tensor's exact size (official code does this right after the
            # previous decoder conv; doing it just before this one is the same computation).
            hx = resize_like(hx, skip_features)
            hx = torch.cat((hx, skip_features), dim=1) if self.inner_skip else hx  # the inner skip connection
            hx = getattr(self, f"rebnconv{i}d")(hx)

        return hx + hxin if self.residual else hx  # the residual: the "R" in RSU


FUSION_INITS = ("default", "mean")


class StageSpec(NamedTuple):
    """One row of a stage table: an RSU block's height, channels and whether it is the dilated 4F kind."""

    height: int
    in_ch: int
    mid_ch: int
    out_ch: int
    dilated: bool = False


def u2net_stages(in_ch: int = 3) -> list[StageSpec]:
    """Stage table of the full U^2-Net (176 MB model): stage1..stage6, then stage5d..stage1d."""
    return [
        StageSpec(7, in_ch, 32, 64),  # stage1
        StageSpec(6, 64, 32, 128),  # stage2
        StageSpec(5, 128, 64, 256),  # stage3
        StageSpec(4, 256, 128, 512),  # stage4
        StageSpec(4, 512, 256, 512, dilated=True),  # stage5
        StageSpec(4, 512, 256, 512, dilated=True),  # stage6
        StageSpec(4, 1024, 256, 512, dilated=True),  # stage5d
        StageSpec(4, 1024, 128, 256),  # stage4d
        StageSpec(5, 512, 64, 128),  # stage3d
        StageSpec(6, 256, 32, 64),  # stage2d
        StageSpec(7, 128, 16, 64),  # stage1d
    ]


def u2netp_stages(in_ch: int = 3) -> list[StageSpec]:
    """Stage table of the small U^2-Net-p (4.7 MB model): same shape, 64 channels everywhere, mid 16."""
    return [
        StageSpec(7, in_ch, 16, 64),  # stage1
        StageSpec(6, 64, 16, 64),  # stage2
        StageSpec(5, 64, 16, 64),  # stage3
        StageSpec(4, 64, 16, 64),  # stage4
        StageSpec(4, 64, 16, 64, dilated=True),  # stage5
        StageSpec(4, 64, 16, 64, dilated=True),  # stage6
        StageSpec(4, 128, 16, 64, dilated=True),  # stage5d
        StageSpec(4, 128, 16, 64),  # stage4d
        StageSpec(5, 128, 16, 64),  # stage3d
        StageSpec(6, 128, 16, 64),  # stage2d
        StageSpec(7, 128, 16, 64),  # stage1d
    ]


def stage_names(num_stages: int) -> list[str]:
    """Names for a table of `num_stages` rows: encoder stage1..stageN, then decoder stage{N-1}d..stage1d."""
    depth = (num_stages + 1) // 2
    return [f"stage{i}" for i in range(1, depth + 1)] + [f"stage{i}d" for i in range(depth - 1, 0, -1)]


class U2NetBase(nn.Module):
    """Outer U of RSU stages built from a stage table; U2Net and U2NetP only choose the table."""

    def __init__(self, stages: list[StageSpec], in_ch: int = 3, out_ch: int = 1, skip: bool = True, *,
                 inner_skip: bool | None = None, residual: bool | None = None, fusion_init: str = "default") -> None:
        super().__init__()
        if fusion_init not in FUSION_INITS:
            raise ValueError(f"fusion_init must be one of {FUSION_INITS}, got {fusion_init!r}")
        if len(stages) % 2 == 0:
            raise ValueError(f"a stage table needs N encoder + N-1 decoder rows, got {len(stages)} rows")
        self.in_ch, self.out_ch, self.skip = in_ch, out_ch, skip
        self.stages = [StageSpec(*row) for row in stages]  # plain list: not a module, not in state_dict
        self.depth = (len(stages) + 1) // 2
        names = stage_names(len(stages))

        # Registration order = official order: stage1, pool12, stage2, ..., stage6, stage5d, ..., stage1d.
        for idx, (name, spec) in enumerate(zip(names, self.stages)):
            setattr(self, name, RSU(spec.height, spec.in_ch, spec.mid_ch, spec.out_ch, spec.dilated, skip,
                                    inner_skip=inner_skip, residual=residual))
            if idx < self.depth - 1:
                setattr(self, f"pool{idx + 1}{idx + 2}", nn.MaxPool2d(2, stride=2, ceil_mode=True))

        # Side outputs read the decoder stages stage1d..stage{N-1}d and the deepest encoder stage.
        side_sources = [f"stage{i}d" for i in range(1, self.depth)] + [f"stage{self.depth}"]
        for i, source in enumerate(side_sources, start=1):
            source_ch = self.stages[names.index(source)].out_ch
            setattr(self, f"side{i}", nn.Conv2d(source_ch, out_ch, 3, padding=1))
        # The fused map d0 is a learned 1x1 mix of all side maps.
        self.outconv = nn.Conv2d(self.depth * out_ch, out_ch, 1)
        self.fusion_init = fusion_init
        if fusion_init == "mean":
            # d0 starts as the average of the side logits: no side map enters with a negative sign.
            with torch.no_grad():
                self.outconv.weight.zero_()
                for k in range(out_ch):  # output channel k averages channel k of every side map
                    self.outconv.weight[k, k::out_ch] = 1.0 / self.depth
                self.outconv.bias.zero_()

    def stage_table(self) -> list[tuple[str, str, int, int, int]]:
        """Rows (stage name, block type, in, mid, out) for printing the architecture as a table."""
        rows = []
        for name, spec in zip(stage_names(len(self.stages)), self.stages):
            block = f"RSU-{spec.height}F" if spec.dilated else f"RSU-{spec.height}"
            rows.append((name, block, spec.in_ch, spec.mid_ch, spec.out_ch))
        return rows

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Return (d0, d1, ..., d6): fused map then side maps, all sigmoid probabilities at input size."""
        check_image_batch(x, self.in_ch, type(self).__name__)

        # Encoder: stage i works at 1/2**(i-1) of the input resolution (rounded up).
        encoder_features = []
        hx = x
        for i in range(1, self.depth + 1):
            if i > 1:
                hx = getattr(self, f"pool{i - 1}{i}")(hx)
            hx = getattr(self, f"stage{i}")(hx)
            encoder_features.append(hx)

        # Decoder: upsample the deeper result to the skip's exact size, concatenate, refine.
        # These outer concatenations are kept even with skip=False (that switch is about RSU blocks).
        side_features = [encoder_features[-1]]  # deepest first: hx6, hx5d, ..., hx1d
        hx = encoder_features[-1]
        for i in range(self.depth - 1, 0, -1):
            skip_features = encoder_features[i - 1]
            hx = resize_like(hx, skip_features)
            hx = getattr(self, f"stage{i}d")(torch.cat((hx, skip_features), dim=1))  # the outer skip connection
            side_features.append(hx)
        side_features.reverse()  # now hx1d, hx2d, ..., hx6 to match side1..side6

        # Each side map is predicted at its own scale, then upsampled to d1's (= the input's) size.
        sides = [getattr(self, f"side{i}")(f) for i, f in enumerate(side_features, start=1)]
        sides = [sides[0]] + [resize_like(d, sides[0]) for d in sides[1:]]
        d0 = self.outconv(torch.cat(sides, dim=1))
        # Sigmoid outputs like the official model (its training loss is BCE on probabilities).
        return tuple(torch.sigmoid(d) for d in [d0, *sides])


class U2Net(U2NetBase):
    """The full U^2-Net (44.0 M parameters) of arXiv 2005.09007."""

    def __init__(self, in_ch: int = 3, out_ch: int = 1, skip: bool = True, **switches) -> None:
        """`switches`: inner_skip=, residual=, fusion_init= (see U2NetBase and the module docstring)."""
        super().__init__(u2net_stages(in_ch), in_ch, out_ch, skip, **switches)


class U2NetP(U2NetBase):
    """The small U^2-Net-p (1.1 M parameters): the same design with 64/16 channels throughout."""

    def __init__(self, in_ch: int = 3, out_ch: int = 1, skip: bool = True, **switches) -> None:
        """`switches`: inner_skip=, residual=, fusion_init= (see U2NetBase and the module docstring)."""
        super().__init__(u2netp_stages(in_ch), in_ch, out_ch, skip, **switches)


def describe(model: U2NetBase) -> list[tuple[str, str, int, int, int]]:
    """Stage table rows (stage name, block type, in, mid, out) of a U2Net / U2NetP, for a notebook to print."""
    return model.stage_table()
