"""Random holes for inpainting (strokes, rectangles, free-form brush) and the inpainting dataset.

Every mask is a uint8 (H, W) array of {0, 1} where 1 marks a missing pixel the model must fill in.
All randomness comes from the NumPy generator you pass in, so the same seed gives the same mask.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from utils.data.natural import ImageItem, PhotoCrops, check_value_range, crop_to_tensor, from_unit

__all__ = [
    "MASK_KINDS",
    "stroke_mask",
    "rectangle_mask",
    "free_form_mask",
    "random_mask",
    "InpaintingDataset",
]

MASK_KINDS = ("strokes", "rectangles", "free_form", "mixed")


def _check_bounds(name: str, low: float, high: float, smallest: float) -> None:
    """Raise a ValueError naming the parameter pair unless smallest <= low <= high."""
    if not smallest <= low <= high:
        raise ValueError(f"need {smallest} <= min_{name} <= max_{name}, got {low} and {high}")


def paint_segment(mask: np.ndarray, start: tuple[float, float], end: tuple[float, float], thickness: float) -> None:
    """Set to 1 every pixel whose centre lies within thickness / 2 of the segment from `start` to `end`.

    Measuring distance to the segment (not to the infinite line) gives round ends, so consecutive segments
    of a brush stroke join smoothly with no notches at the corners.
    """
    height, width = mask.shape
    radius = thickness / 2.0
    (y0, x0), (y1, x1) = start, end
    # Only the bounding box of the thick segment can change, so compute distances there only.
    top = max(int(np.floor(min(y0, y1) - radius)), 0)
    bottom = min(int(np.ceil(max(y0, y1) + radius)), height - 1)
    left = max(int(np.floor(min(x0, x1) - radius)), 0)
    right = min(int(np.ceil(max(x0, x1) + radius)), width - 1)
    if top > bottom or left > right:
        return
    ys, xs = np.mgrid[top : bottom + 1, left : right + 1].astype(np.float64)
    dy, dx = y1 - y0, x1 - x0
    length_squared = dy * dy + dx * dx
    if length_squared > 0:
        # Position of the closest point along the segment, 0 at start and 1 at end.
        along = np.clip(((ys - y0) * dy + (xs - x0) * dx) / length_squared, 0.0, 1.0)
    else:
        along = np.zeros_like(ys)
    distance_squared = (ys - (y0 + along * dy)) ** 2 + (xs - (x0 + along * dx)) ** 2
    mask[top : bottom + 1, left : right + 1] |= (distance_squared <= radius * radius).astype(np.uint8)


def stroke_mask(
    h: int,
    w: int,
    rng: np.random.Generator | int,
    min_strokes: int = 1,
    max_strokes: int = 4,
    min_thickness: int = 1,
    max_thickness: int = 14,
) -> np.ndarray:
    """The course reference holes: 1 to 4 straight lines between random points, each 1 to 14 pixels thick."""
    _check_bounds("strokes", min_strokes, max_strokes, 1)
    _check_bounds("thickness", min_thickness, max_thickness, 1)
    rng = np.random.default_rng(rng)  # an int seed works too; a Generator passes through unchanged
    mask = np.zeros((h, w), dtype=np.uint8)
    for _ in range(int(rng.integers(min_strokes, max_strokes + 1))):
        start = (rng.uniform(0, h - 1), rng.uniform(0, w - 1))
        end = (rng.uniform(0, h - 1), rng.uniform(0, w - 1))
        thickness = int(rng.integers(min_thickness, max_thickness + 1))
        paint_segment(mask, start, end, thickness)
    return mask


def rectangle_mask(
    h: int,
    w: int,
    rng: np.random.Generator | int,
    min_rectangles: int = 1,
    max_rectangles: int = 3,
    min_size: float = 0.1,
    max_size: float = 0.4,
) -> np.ndarray:
    """1 to 3 axis-aligned boxes whose sides are 10% to 40% of the image's height and width."""
    _check_bounds("rectangles", min_rectangles, max_rectangles, 1)
    _check_bounds("size", min_size, max_size, 0.0)
    if max_size > 1:
        raise ValueError(f"max_size is a fraction of the image side and must be at most 1, got {max_size}")
    rng = np.random.default_rng(rng)  # an int seed works too; a Generator passes through unchanged
    mask = np.zeros((h, w), dtype=np.uint8)
    for _ in range(int(rng.integers(min_rectangles, max_rectangles + 1))):
        box_h = max(1, round(rng.uniform(min_size, max_size) * h))
        box_w = max(1, round(rng.uniform(min_size, max_size) * w))
        top = int(rng.integers(h - box_h + 1))
        left = int(rng.integers(w - box_w + 1))
        mask[top : top + box_h, left : left + box_w] = 1
    return mask


def free_form_mask(
    h: int,
    w: int,
    rng: np.random.Generator | int,
    min_strokes: int = 1,
    max_strokes: int = 3,
    min_vertices: int = 4,
    max_vertices: int = 10,
    min_thickness: int = 8,
    max_thickness: int = 20,
    max_step: float = 0.25,
) -> np.ndarray:
    """Random brush strokes: each a random walk of thick connected segments with round joins.

    A stroke starts at a random point and takes 4 to 10 steps; each step turns by a random angle and
    moves up to `max_step` times the larger image side, staying inside the image. The brush width is
    drawn once per stroke, like a person scribbling over a photo.
    """
    _check_bounds("strokes", min_strokes, max_strokes, 1)
    _check_bounds("vertices", min_vertices, max_vertices, 2)
    _check_bounds("thickness", min_thickness, max_thickness, 1)
    if not 0 < max_step <= 1:
        raise ValueError(f"max_step is a fraction of the image side and must be in (0, 1], got {max_step}")
    rng = np.random.default_rng(rng)  # an int seed works too; a Generator passes through unchanged
    mask = np.zeros((h, w), dtype=np.uint8)
    longest_step = max_step * max(h, w)
    for _ in range(int(rng.integers(min_strokes, max_strokes + 1))):
        thickness = int(rng.integers(min_thickness, max_thickness + 1))
        point = (rng.uniform(0, h - 1), rng.uniform(0, w - 1))
        angle = rng.uniform(0, 2 * np.pi)
        for _ in range(int(rng.integers(min_vertices, max_vertices + 1)) - 1):
            # Turning by at most a right angle each step keeps the stroke wandering but not zig-zagging.
            angle += rng.uniform(-np.pi / 2, np.pi / 2)
            step = rng.uniform(0.2, 1.0) * longest_step
            end = (
                float(np.clip(point[0] + step * np.sin(angle), 0, h - 1)),
                float(np.clip(point[1] + step * np.cos(angle), 0, w - 1)),
            )
            paint_segment(mask, point, end, thickness)
            point = end
    return mask


def random_mask(
    kind: str, h: int, w: int, rng: np.random.Generator | int, thickness: int | None = None
) -> np.ndarray:
    """A mask of `kind` ("strokes", "rectangles", "free_form" or "mixed"), optionally with a fixed line thickness."""
    if kind not in MASK_KINDS:
        raise ValueError(f"mask_kind must be one of {MASK_KINDS}, got {kind!r}")
    rng = np.random.default_rng(rng)
    if kind == "mixed":
        kind = MASK_KINDS[int(rng.integers(3))]
    if kind == "rectangles":
        return rectangle_mask(h, w, rng)
    if kind == "strokes":
        if thickness is None:
            return stroke_mask(h, w, rng)
        return stroke_mask(h, w, rng, min_thickness=thickness, max_thickness=thickness)
    if thickness is None:
        return free_form_mask(h, w, rng)
    return free_form_mask(h, w, rng, min_thickness=thickness, max_thickness=thickness)


class InpaintingDataset(PhotoCrops):
    """(input, target, mask) triples: a photo crop with holes punched in it, the intact crop, and the holes.

    The masked pixels are painted white (the top of `value_range`), as in the course reference.
    input_channels=3 gives just that painted image; input_channels=4 adds the mask as a fourth channel,
    so the model need not guess which white pixels are holes and which are white in the photo.
    Training draws a new crop and a new mask every time an item is read; validation items are fixed by
    (seed, index). `thickness` fixes the line width of stroke and free-form masks, e.g. to measure how the
    error grows with thicker strokes.
    """

    def __init__(
        self,
        images: Sequence[ImageItem],
        crop_size: int = 256,
        mask_kind: str = "strokes",
        input_channels: int = 3,
        value_range: Sequence[float] = (-1.0, 1.0),
        seed: int = 0,
        train: bool = True,
        thickness: int | None = None,
        samples_per_epoch: int = 1000,
        crops_per_image: int = 4,
        layout: str = "random",
    ) -> None:
        if mask_kind not in MASK_KINDS:
            raise ValueError(f"mask_kind must be one of {MASK_KINDS}, got {mask_kind!r}")
        if input_channels not in (3, 4):
            raise ValueError(f"input_channels must be 3 (painted image) or 4 (plus mask), got {input_channels!r}")
        if thickness is not None:
            if mask_kind == "rectangles":
                raise ValueError("thickness applies to 'strokes', 'free_form' and 'mixed' masks, not 'rectangles'")
            if thickness < 1:
                raise ValueError(f"thickness must be at least 1 pixel, got {thickness}")
        self.mask_kind = mask_kind
        self.input_channels = int(input_channels)
        self.value_range = check_value_range(value_range)
        self.thickness = thickness
        super().__init__(
            images,
            crop_size,
            train=train,
            samples_per_epoch=samples_per_epoch,
            crops_per_image=crops_per_image,
            seed=seed,
            layout=layout,
        )

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        index = self._check_index(index)
        # One generator for crop and mask, so a validation item is fixed as a whole by (seed, index).
        rng = self.generator(index)
        target = from_unit(crop_to_tensor(self.crop(index, rng)), self.value_range)
        size = self.crop_size
        mask = torch.from_numpy(random_mask(self.mask_kind, size, size, rng, self.thickness)).float()[None]
        white = self.value_range[1]
        painted = torch.where(mask.bool(), torch.full_like(target, white), target)
        inputs = torch.cat([painted, mask]) if self.input_channels == 4 else painted
        return inputs, target, mask
