"""Natural photographs for super-resolution and inpainting: where they come from and how crops are cut.

    train_images, val_images, info = get_natural_images("auto")   # DIV2K if Kaggle answers, else skimage
    train_set = SuperResolutionDataset(train_images, crop_size=256, scale=4)
    val_set = SuperResolutionDataset(val_images, crop_size=256, scale=4, train=False)

Sources:

* ``"skimage"``: a few photographs that scikit-image installs with itself, so it works with no network.
* ``"div2k"``: DIV2K, 800 training and 100 validation photos with 2040 pixels on the long side, via kagglehub.
* a folder path: your own photos (subfolders named train/ and val/ are used as the split if present).

A handful of photos is enough because training never sees a whole photo: every sample is a random square
crop, flipped and rotated, so four photos give many thousands of different samples. Held-out photos are only
ever cut into fixed crops, so validation numbers are comparable between runs and never come from training pixels.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Sequence, TypeVar, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from utils.data.images import IMAGE_SUFFIXES, load_rgb
from utils.data.cache import cached_photo  # decode each large photo once (issue 18)

__all__ = [
    "SKIMAGE_TRAIN_PHOTOS",
    "SKIMAGE_HELDOUT_PHOTOS",
    "DIV2K_HANDLE",
    "get_natural_images",
    "to_unit",
    "from_unit",
    "downscale",
    "upscale",
    "PhotoCrops",
    "SuperResolutionDataset",
    "DenoisingDataset",
]

# An image is either already in memory (uint8, H x W x 3) or a file that is read only when a crop needs it,
# because DIV2K's 900 photos would take about 8 GB of memory if all loaded at once.
ImageItem = Union[np.ndarray, Path]
ValueRange = tuple[float, float]
ArrayOrTensor = TypeVar("ArrayOrTensor", np.ndarray, torch.Tensor)

# Fixed lists, so that every run and every student trains and validates on the same photos: 13 real
# photographs that install with scikit-image and matplotlib (no drawings such as logo or colorwheel, no
# microscope slides, nothing whose licence is undocumented; see data/README.md). Greyscale photos (camera,
# clock, grass, gravel, brick, coins) are used as three equal channels. The split is by photo: the held-out
# four (a cat's fur, a portrait, a brick wall, coins with sharp rims) are never cropped for training.
SKIMAGE_TRAIN_PHOTOS: tuple[str, ...] = (
    "astronaut", "coffee", "rocket", "retina", "hubble_deep_field", "camera", "clock", "grass", "gravel",
)
SKIMAGE_HELDOUT_PHOTOS: tuple[str, ...] = ("chelsea", "grace_hopper", "brick", "coins")
# Not in scikit-image: loaded from matplotlib's sample data (file name there).
MATPLOTLIB_PHOTOS: dict[str, str] = {"grace_hopper": "grace_hopper.jpg"}
VAL_LAYOUTS = ("random", "grid")

DIV2K_HANDLE = "soumikrakshit/div2k-high-resolution-images"
SR_SCALES = (2, 4)
SR_MODES = ("reference", "lowres")
VALUE_RANGES: tuple[ValueRange, ...] = ((-1.0, 1.0), (0.0, 1.0))

_TRAIN_WORDS = {"train", "training"}
_VAL_WORDS = {"val", "valid", "validation", "test"}


# ----------------------------------------------------------------------------------------------------------
# Value ranges and resizing
# ----------------------------------------------------------------------------------------------------------


def check_value_range(value_range: Sequence[float]) -> ValueRange:
    """Return `value_range` as a (low, high) tuple of floats; raise unless it is (-1, 1) or (0, 1)."""
    try:
        low, high = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise ValueError(f"value_range must be (-1, 1) or (0, 1), got {value_range!r}") from None
    if (low, high) not in VALUE_RANGES:
        raise ValueError(f"value_range must be (-1, 1) or (0, 1), got {value_range!r}")
    return low, high


def to_unit(x: ArrayOrTensor, value_range: Sequence[float] = (-1.0, 1.0)) -> ArrayOrTensor:
    """Map values from `value_range` to [0, 1], e.g. a Tanh model's output before plotting or computing PSNR."""
    low, high = check_value_range(value_range)
    return (x - low) / (high - low)


def from_unit(x: ArrayOrTensor, value_range: Sequence[float] = (-1.0, 1.0)) -> ArrayOrTensor:
    """Map values from [0, 1] to `value_range`, the inverse of `to_unit`."""
    low, high = check_value_range(value_range)
    return x * (high - low) + low


def check_scale(scale: int) -> int:
    """Return `scale` if it is a super-resolution factor the course supports (2 or 4), else raise ValueError."""
    if isinstance(scale, bool) or scale not in SR_SCALES:
        raise ValueError(f"scale must be 2 or 4, got {scale!r}")
    return int(scale)


def downscale(images: torch.Tensor, scale: int) -> torch.Tensor:
    """Shrink (C, H, W) or (N, C, H, W) float images by `scale` with antialiased bicubic resampling."""
    scale = check_scale(scale)
    batch = images if images.dim() == 4 else images.unsqueeze(0)
    height, width = batch.shape[-2:]
    if height % scale or width % scale:
        raise ValueError(f"image size {height}x{width} is not divisible by scale {scale}")
    # torch rather than PIL: it works on float tensors (no rounding to 8 bits in between) and on whole GPU
    # batches. antialias=True widens the bicubic kernel to cover all the pixels each small pixel stands for,
    # as PIL's and MATLAB's resize do when shrinking (DIV2K's own low-resolution images were made that way);
    # without it each output pixel looks at only 4 input pixels and fine textures alias into false patterns.
    small = F.interpolate(
        batch, size=(height // scale, width // scale), mode="bicubic", antialias=True, align_corners=False
    )
    return small if images.dim() == 4 else small[0]


def upscale(images: torch.Tensor, scale: int, mode: str = "bilinear") -> torch.Tensor:
    """Enlarge (C, H, W) or (N, C, H, W) float images by `scale`; bilinear or bicubic (the classic baseline)."""
    scale = check_scale(scale)
    if mode not in ("bilinear", "bicubic"):
        raise ValueError(f"mode must be 'bilinear' or 'bicubic', got {mode!r}")
    batch = images if images.dim() == 4 else images.unsqueeze(0)
    large = F.interpolate(batch, scale_factor=scale, mode=mode, align_corners=False)
    return large if images.dim() == 4 else large[0]


# ----------------------------------------------------------------------------------------------------------
# Crops
# ----------------------------------------------------------------------------------------------------------


def _image_size(item: ImageItem) -> tuple[int, int]:
    """(height, width) of an image in memory or on disk; for a file only the header is read, which is fast."""
    if isinstance(item, np.ndarray):
        return int(item.shape[0]), int(item.shape[1])
    try:
        with Image.open(item) as img:
            width, height = img.size
    except FileNotFoundError:
        raise FileNotFoundError(f"image file not found: {item}") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"cannot read image file {item}: {err}") from err
    return height, width


def _usable_images(images: Sequence[ImageItem], crop_size: int) -> list[ImageItem]:
    """Check every image and keep those a crop fits in.

    An array that is too small is a mistake in the calling code, so it raises. A file that is too small is
    skipped with one warning: a folder of someone's photos may well hold a thumbnail, and that should not
    stop training on the rest.
    """
    if isinstance(images, (np.ndarray, str, Path)):
        raise ValueError("images must be a list of images or files, not a single image")
    kept: list[ImageItem] = []
    too_small: list[str] = []
    for index, item in enumerate(images):
        if isinstance(item, np.ndarray):
            if item.dtype != np.uint8 or item.ndim != 3 or item.shape[2] != 3:
                raise ValueError(
                    f"image {index} must be a uint8 array of shape (H, W, 3), got {item.dtype} {item.shape}; "
                    "load files with utils.data.images.load_rgb"
                )
            height, width = _image_size(item)
            if height < crop_size or width < crop_size:
                raise ValueError(
                    f"image {index} is {height}x{width} pixels, smaller than the {crop_size}x{crop_size} crop; "
                    "use a smaller crop_size or larger images"
                )
            kept.append(item)
        else:
            path = Path(item)
            height, width = _image_size(path)
            if height < crop_size or width < crop_size:
                too_small.append(f"{path.name} ({height}x{width})")
            else:
                kept.append(path)
    if too_small:
        shown = ", ".join(too_small[:5]) + (f" and {len(too_small) - 5} more" if len(too_small) > 5 else "")
        warnings.warn(
            f"skipped {len(too_small)} image file(s) smaller than the {crop_size}x{crop_size} crop: {shown}",
            stacklevel=3,
        )
    if not kept:
        raise ValueError(f"no image is at least {crop_size}x{crop_size} pixels ({len(images)} given)")
    return kept


class PhotoCrops(Dataset):
    """Square uint8 crops of photos: random with flips and rotations for training, fixed for validation.

    Training: `samples_per_epoch` items, each a random photo, position and orientation, drawn anew every
    time an item is read. Validation: `crops_per_image` crops per photo whose positions depend only on
    (seed, index), so every evaluation sees exactly the same pixels. With layout="grid" the validation crops
    are tiles of a grid that do not overlap (at most `crops_per_image` per photo, spread evenly over it), so
    every held-out pixel is scored at most once; `distinct_pixels()` says how many pixels the crops cover.
    """

    def __init__(
        self,
        images: Sequence[ImageItem],
        crop_size: int = 256,
        *,
        train: bool = True,
        samples_per_epoch: int = 1000,
        crops_per_image: int = 4,
        seed: int = 0,
        layout: str = "random",
    ) -> None:
        if layout not in VAL_LAYOUTS:
            raise ValueError(f"layout must be one of {VAL_LAYOUTS}, got {layout!r}")
        if crop_size < 1:
            raise ValueError(f"crop_size must be positive, got {crop_size}")
        if samples_per_epoch < 1 or crops_per_image < 1:
            raise ValueError(
                f"samples_per_epoch and crops_per_image must be positive, got {samples_per_epoch} and "
                f"{crops_per_image}"
            )
        self.images = _usable_images(images, crop_size)
        self.crop_size = int(crop_size)
        self.train = bool(train)
        self.samples_per_epoch = int(samples_per_epoch)
        self.crops_per_image = int(crops_per_image)
        self.seed = int(seed)
        self.layout = layout
        # (photo index, top, left) of every validation tile, worked out once from the photo sizes.
        self.tiles = [] if self.train or layout == "random" else self._grid_tiles()

    def _grid_tiles(self) -> list[tuple[int, int, int]]:
        """Non-overlapping crop positions: a centred grid per photo, thinned evenly to `crops_per_image`."""
        size, tiles = self.crop_size, []
        for photo_index, item in enumerate(self.images):
            height, width = _image_size(item)
            rows, cols = height // size, width // size
            top0, left0 = (height - rows * size) // 2, (width - cols * size) // 2
            grid = [(top0 + r * size, left0 + c * size) for r in range(rows) for c in range(cols)]
            keep = np.unique(np.linspace(0, len(grid) - 1, min(len(grid), self.crops_per_image)).round().astype(int))
            tiles += [(photo_index, *grid[k]) for k in keep]
        return tiles

    def distinct_pixels(self) -> tuple[int, int]:
        """(distinct photo pixels covered by the validation crops, pixels in all crops together)."""
        if self.train:
            raise ValueError("distinct_pixels() describes the fixed validation crops (train=False)")
        covered = {}
        for index in range(len(self)):
            photo_index, top, left = self.position(index, self.generator(index))
            if photo_index not in covered:
                covered[photo_index] = np.zeros(_image_size(self.images[photo_index]), dtype=bool)
            covered[photo_index][top : top + self.crop_size, left : left + self.crop_size] = True
        return int(sum(c.sum() for c in covered.values())), len(self) * self.crop_size**2

    def __len__(self) -> int:
        if self.train:
            return self.samples_per_epoch
        return len(self.tiles) if self.layout == "grid" else len(self.images) * self.crops_per_image

    def generator(self, index: int) -> np.random.Generator:
        """Random numbers for item `index`: fixed by (seed, index) for validation, fresh on every training read."""
        if not self.train:
            return np.random.default_rng([self.seed, index])
        # Taking the fresh part from torch's global generator means torch.manual_seed repeats a whole run,
        # and DataLoader workers (which PyTorch seeds differently) cut different crops, not the same ones.
        fresh = int(torch.randint(0, 2**62, ()).item())
        return np.random.default_rng([self.seed, fresh])

    def photo(self, photo_index: int) -> np.ndarray:
        """The whole photo number `photo_index` as uint8 (H, W, 3), read from disk if it is a file."""
        item = self.images[photo_index]
        return item if isinstance(item, np.ndarray) else cached_photo(item)

    def position(self, index: int, rng: np.random.Generator) -> tuple[int, int, int]:
        """(photo index, top, left) of item `index`: a grid tile, or drawn with `rng`."""
        if self.tiles:
            return self.tiles[index]
        photo_index = int(rng.integers(len(self.images))) if self.train else index // self.crops_per_image
        height, width = _image_size(self.images[photo_index])
        if height < self.crop_size or width < self.crop_size:  # a file may have changed on disk since the check
            raise ValueError(f"image {self.images[photo_index]} is {height}x{width}, smaller than crop {self.crop_size}")
        return photo_index, int(rng.integers(height - self.crop_size + 1)), int(rng.integers(width - self.crop_size + 1))

    def crop(self, index: int, rng: np.random.Generator) -> np.ndarray:
        """Cut the crop for item `index` using `rng` for every random choice."""
        size = self.crop_size
        photo_index, top, left = self.position(index, rng)
        photo = self.photo(photo_index)
        patch = photo[top : top + size, left : left + size]
        if patch.shape[:2] != (size, size):  # a file may have changed on disk since the size check
            raise ValueError(f"image {self.images[photo_index]} is smaller than crop {size}")
        if self.train:
            # Restoring fine detail depends on local texture, which is just as realistic mirrored or turned,
            # so the 8 flips/rotations multiply the variety of a few photos for free (standard in SR training).
            patch = np.rot90(patch, k=int(rng.integers(4)))
            if rng.random() < 0.5:
                patch = patch[:, ::-1]
        return np.ascontiguousarray(patch)

    def _check_index(self, index: int) -> int:
        """Allow negative indices like a list, and raise IndexError past the end so for-loops stop."""
        length = len(self)
        if index < 0:
            index += length
        if not 0 <= index < length:
            raise IndexError(f"index {index} out of range for {length} items")
        return index

    def __getitem__(self, index: int) -> np.ndarray:
        index = self._check_index(index)
        return self.crop(index, self.generator(index))


def crop_to_tensor(patch: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) array to float (3, H, W) tensor in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(patch)).permute(2, 0, 1).float().div_(255.0)


class SuperResolutionDataset(PhotoCrops):
    """(input, target) pairs for super-resolution: a high-resolution crop and a shrunk copy of it.

    mode="reference" (the course reference setup): the crop is shrunk by `scale` (256 -> 64 for scale 4)
    and resized back up bilinearly, so input and target are both crop_size x crop_size and the UNet only
    has to sharpen. mode="lowres": the input is the small image itself, for models that upsample inside
    (pixel shuffle). Values are in `value_range`: (-1, 1) for models ending in Tanh, or (0, 1).
    """

    def __init__(
        self,
        images: Sequence[ImageItem],
        crop_size: int = 256,
        scale: int = 4,
        samples_per_epoch: int = 1000,
        mode: str = "reference",
        value_range: Sequence[float] = (-1.0, 1.0),
        seed: int = 0,
        train: bool = True,
        crops_per_image: int = 4,
        layout: str = "random",
    ) -> None:
        self.scale = check_scale(scale)
        if crop_size % self.scale:
            raise ValueError(f"crop_size {crop_size} must be divisible by scale {self.scale}")
        if mode not in SR_MODES:
            raise ValueError(f"mode must be 'reference' or 'lowres', got {mode!r}")
        self.mode = mode
        self.value_range = check_value_range(value_range)
        super().__init__(
            images,
            crop_size,
            train=train,
            samples_per_epoch=samples_per_epoch,
            crops_per_image=crops_per_image,
            seed=seed,
            layout=layout,
        )

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        target = crop_to_tensor(super().__getitem__(index))
        # Bicubic overshoots a little next to sharp edges; clamping keeps the input a valid image.
        small = downscale(target, self.scale).clamp_(0.0, 1.0)
        inputs = upscale(small, self.scale, "bilinear") if self.mode == "reference" else small
        return from_unit(inputs, self.value_range), from_unit(target, self.value_range)


class DenoisingDataset(PhotoCrops):
    """(noisy, clean) pairs: Gaussian noise of std `noise_std` (on the [0, 1] scale) added to photo crops.

    Validation items are fixed by (seed, index), noise included, so both models of a comparison are scored
    on exactly the same noisy pixels. Values are in `value_range`.
    """

    def __init__(
        self,
        images: Sequence[ImageItem],
        crop_size: int = 128,
        noise_std: float = 0.1,
        value_range: Sequence[float] = (-1.0, 1.0),
        **crop_options,
    ) -> None:
        if noise_std < 0:
            raise ValueError(f"noise_std must be non-negative, got {noise_std}")
        self.noise_std = float(noise_std)
        self.value_range = check_value_range(value_range)
        super().__init__(images, crop_size, **crop_options)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = self._check_index(index)
        rng = self.generator(index)  # one generator for crop and noise: a validation item is fixed as a whole
        clean = crop_to_tensor(self.crop(index, rng))
        noise = torch.from_numpy(rng.standard_normal(clean.shape, dtype=np.float32)) * self.noise_std
        noisy = (clean + noise).clamp_(0.0, 1.0)  # a camera cannot record values outside its range either
        return from_unit(noisy, self.value_range), from_unit(clean, self.value_range)


# ----------------------------------------------------------------------------------------------------------
# Sources
# ----------------------------------------------------------------------------------------------------------


def bundled_photo(name: str) -> np.ndarray:
    """A photograph bundled with scikit-image (or matplotlib, e.g. "grace_hopper") as uint8 (H, W, 3); greyscale becomes 3 channels."""
    if name in MATPLOTLIB_PHOTOS:
        from matplotlib import cbook

        return load_rgb(Path(cbook.get_sample_data(MATPLOTLIB_PHOTOS[name], asfileobj=False)))
    from skimage import data

    photo = np.asarray(getattr(data, name)(), dtype=np.uint8)
    if photo.ndim == 2:
        photo = np.stack([photo] * 3, axis=-1)
    return np.ascontiguousarray(photo)


def _from_skimage() -> tuple[list[ImageItem], list[ImageItem], dict]:
    """The fixed scikit-image train and held-out photographs, loaded into memory (they are small)."""
    train = [bundled_photo(name) for name in SKIMAGE_TRAIN_PHOTOS]
    val = [bundled_photo(name) for name in SKIMAGE_HELDOUT_PHOTOS]
    info = {
        "source": "skimage",
        "description": "scikit-image and matplotlib sample photos",
        "root": None,
        "train_names": list(SKIMAGE_TRAIN_PHOTOS),
        "val_names": list(SKIMAGE_HELDOUT_PHOTOS),
    }
    return train, val, info


def _images_below(root: Path) -> list[Path]:
    """Sorted image files in `root` and all its subfolders, ignoring hidden ones such as .ipynb_checkpoints."""
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    files = sorted(
        path
        for path in root.rglob("*")
        if path.is_file()
        and path.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
    )
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder or its subfolders: {root}")
    return files


def _folder_words(path: Path, root: Path) -> set[str]:
    """Lower-case words in the folder names between `root` and `path`: DIV2K_valid_HR -> {div2k, valid, hr}."""
    words: set[str] = set()
    for part in path.relative_to(root).parts[:-1]:
        words.update(word for word in re.split(r"[^a-z0-9]+", part.lower()) if word)
    return words


def _split_by_folder_names(root: Path, files: list[Path]) -> tuple[list[Path], list[Path]]:
    """Files under a folder whose name says train, and files under one whose name says val/valid/test."""
    # Some uploads of DIV2K also carry ready-made low-resolution copies (DIV2K_train_LR_bicubic/X4); we make
    # our own from the high-resolution photos, so those folders must not count as training photos.
    high_res = [path for path in files if "lr" not in _folder_words(path, root)]
    train = [path for path in high_res if _folder_words(path, root) & _TRAIN_WORDS]
    val = [path for path in high_res if _folder_words(path, root) & _VAL_WORDS]
    return train, val


def _from_folder(root: Path, val_fraction: float) -> tuple[list[ImageItem], list[ImageItem], dict]:
    """Photos in `root`: its own train/val subfolders if it has them (DIV2K does), else a fixed random split."""
    files = _images_below(root)
    train, val = _split_by_folder_names(root, files)
    how = "split by subfolder names"
    if not (train and val):
        if len(files) < 2:
            raise ValueError(f"need at least 2 images in {root} to hold one out for validation, found 1")
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
        n_val = min(len(files) - 1, max(1, round(val_fraction * len(files))))
        # A fixed seed, so the same folder always gives the same held-out photos.
        held_out = set(np.random.default_rng(0).permutation(len(files))[:n_val].tolist())
        train = [path for index, path in enumerate(files) if index not in held_out]
        val = [path for index, path in enumerate(files) if index in held_out]
        how = f"{n_val} of {len(files)} held out at random (fixed seed)"
    info = {
        "source": "folder",
        "description": f"folder {root} ({how})",
        "root": str(root),
        "train_names": [str(path.relative_to(root)) for path in train],
        "val_names": [str(path.relative_to(root)) for path in val],
    }
    return list(train), list(val), info


def _from_div2k(root: Path) -> tuple[list[ImageItem], list[ImageItem], dict]:
    """DIV2K's own split: DIV2K_train_HR (800 photos) for training, DIV2K_valid_HR (100) held out."""
    files = _images_below(root)
    train, val = _split_by_folder_names(root, files)
    if not (train and val):
        raise FileNotFoundError(
            f"expected DIV2K_train_HR and DIV2K_valid_HR folders of images below {root}; "
            f"found {len(train)} train and {len(val)} validation images"
        )
    info = {
        "source": "div2k",
        "description": f"DIV2K from {root}",
        "root": str(root),
        "train_names": [path.name for path in train],
        "val_names": [path.name for path in val],
    }
    return list(train), list(val), info


def get_natural_images(
    source: str | Path = "auto",
    *,
    max_train: int | None = None,
    max_val: int | None = None,
    val_fraction: float = 0.1,
    verbose: bool = True,
) -> tuple[list[ImageItem], list[ImageItem], dict]:
    """Train and held-out photos from DIV2K, scikit-image or a folder, plus a dict saying which; prints one line.

    source: "auto" or "div2k" (DIV2K through kagglehub when it can be had, else the scikit-image photos),
    "skimage", or a folder path. scikit-image photos come back as uint8 (H, W, 3) arrays; folder and DIV2K
    photos as file paths, read when a crop needs them. max_train / max_val keep only the first photos
    (in sorted order) for shorter runs; val_fraction is used only for a folder without train/val subfolders.
    """
    name = source.lower() if isinstance(source, str) else None
    note = ""
    if name in ("auto", "div2k"):
        # Imported here so that the skimage and folder sources never touch the network code.
        from utils.config import large_downloads_allowed
        from utils.data.kaggle import locate_kaggle_dataset

        # "auto" in the cpu/smoke profiles uses DIV2K only if already downloaded (it is 3.7 GB); "div2k" fetches it.
        folder, reason = locate_kaggle_dataset(DIV2K_HANDLE, download=name == "div2k" or large_downloads_allowed())
        if folder is not None:
            train, val, info = _from_div2k(Path(folder))
        else:
            train, val, info = _from_skimage()
            note = f"DIV2K not available: {reason}"
    elif name == "skimage":
        train, val, info = _from_skimage()
    else:
        root = Path(source).expanduser()
        # A DIV2K download unpacked by hand is recognised by its folders and keeps the "div2k" label.
        if root.is_dir() and any(child.name.lower().startswith("div2k") for child in root.iterdir()):
            train, val, info = _from_div2k(root)
        else:
            train, val, info = _from_folder(root, val_fraction)
    for limit in (max_train, max_val):
        if limit is not None and limit < 1:
            raise ValueError(f"max_train and max_val must be positive, got {limit}")
    train, val = train[:max_train], val[:max_val]
    info["train_names"] = info["train_names"][:max_train]
    info["val_names"] = info["val_names"][:max_val]
    info["note"] = note
    if verbose:
        if info["source"] == "skimage":
            counts = f"train: {', '.join(info['train_names'])} | held-out: {', '.join(info['val_names'])}"
        else:
            counts = f"{len(train)} train, {len(val)} held-out photos"
        because = f" ({note})" if note else ""
        print(f"Natural images: {info['description']}{because} | {counts}")
    return train, val, info
