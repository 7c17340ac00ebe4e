"""Person segmentation data: real photos from Kaggle (or your own folder), with a synthetic fallback.

Every dataset here returns `(image, mask)` with
    image: float32 tensor (3, H, W), values in [0, 1]
    mask:  float32 tensor (1, H, W), values exactly 0 (background) or 1 (person)

Supported layouts of a downloaded or local folder (found a few levels below the folder you give):
    nikhilroxtomar/person-segmentation          people_segmentation/images/*.jpg, masks/*.png,
                                                segmentation/train.txt + val.txt (one name per line)
    oishee30/cocopersonsegmentation             train2017_new/*.jpg with masks in train2017_ann/*.jpg
    tapakah68/supervisely-filtered-...          supervisely_person_clean_2667_img/.../images + masks
    your own                                    any folder with images/ and masks/ (same file names)
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

# kaggle is used through the module (kaggle.xxx) so tests can stand in for the network in one place.
from . import kaggle
from .images import IMAGE_SUFFIXES, image_size as file_image_size, list_images, load_mask, load_rgb
from .synthetic.renderer import check_difficulty, make_synthetic_person_image
from .transforms import ImageSize, as_height_width, build_transform, to_tensors

Pair = tuple[Path, Path]

PRIMARY_HANDLE = "nikhilroxtomar/person-segmentation"
COCO_HANDLE = "oishee30/cocopersonsegmentation"
# Every person dataset whose layout the course reads (see the module docstring).
PERSON_KAGGLE_HANDLES = (
    PRIMARY_HANDLE,
    "tapakah68/supervisely-filtered-segmentation-person-dataset",
    COCO_HANDLE,
)
# The ones source="auto"/"kaggle" tries by themselves. The COCO repack is used only when asked for by name
# (source=COCO_HANDLE): 64k pictures, far bigger than the others, announced with its size before the download.
AUTOMATIC_HANDLES = PERSON_KAGGLE_HANDLES[:2]
LARGE_DATASETS = {COCO_HANDLE: "64,115 pictures with masks, an estimated 10+ GB download (see its Kaggle page)"}
# Folder names whose contents are images, so the layout search never wades through thousands of files.
_IMAGE_FOLDER_NAMES = {"images", "masks", "train2017_new", "train2017_ann"}
_MAX_NAMES_SHOWN = 5


# --------------------------------------------------------------------------------------------
# Real data
# --------------------------------------------------------------------------------------------
def _names(paths: Sequence[Path | str]) -> str:
    """'a.jpg, b.jpg, c.jpg and 7 more' for error messages."""
    names = [Path(p).name for p in paths]
    shown = ", ".join(names[:_MAX_NAMES_SHOWN])
    extra = len(names) - _MAX_NAMES_SHOWN
    return f"{shown} and {extra} more" if extra > 0 else shown


def load_pair(image_path: Path, mask_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one image and its mask, checking that they have the same size."""
    image = load_rgb(image_path)
    mask = load_mask(mask_path)
    if image.shape[:2] != mask.shape:
        (ih, iw), (mh, mw) = image.shape[:2], mask.shape
        raise ValueError(
            f"mask {mask_path} is {mw}x{mh} (width x height) but its image {image_path} is {iw}x{ih}; "
            "a mask must have exactly the size of its image"
        )
    return image, mask


class PersonSegmentationDataset(Dataset):
    """(image, mask) pairs read lazily from disk, resized to `image_size` and optionally augmented."""

    def __init__(self, pairs: Sequence[tuple[Path | str, Path | str]], image_size: ImageSize = 128,
                 augment: bool = False, validate: bool = False, check_sizes: bool = True) -> None:
        if len(pairs) == 0:
            raise ValueError("PersonSegmentationDataset got no (image, mask) pairs")
        self.pairs: list[Pair] = [(Path(image), Path(mask)) for image, mask in pairs]
        self.image_size = as_height_width(image_size)
        self.augment = augment
        self.transform = build_transform(self.image_size, augment)
        if validate:
            self.check_files()
        elif check_sizes:
            self.check_sizes()

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = load_pair(*self.pairs[index])
        return to_tensors(image, mask, self.transform)

    def check_sizes(self) -> None:
        """Compare every image's size with its mask's from the file headers (no decoding: ~0.1 ms a file) and
        raise one error naming the pairs that differ, here rather than at some batch in the middle of training."""
        problems = []
        for image_path, mask_path in self.pairs:
            try:
                image_wh, mask_wh = file_image_size(image_path), file_image_size(mask_path)
            except (FileNotFoundError, ValueError) as err:
                problems.append(str(err))
                continue
            if image_wh != mask_wh:
                problems.append(f"{image_path.name} is {image_wh[0]}x{image_wh[1]} but its mask {mask_path.name} is "
                                f"{mask_wh[0]}x{mask_wh[1]} (width x height)")
        if problems:
            listed = "\n  ".join(problems[:_MAX_NAMES_SHOWN])
            more = f"\n  ... and {len(problems) - _MAX_NAMES_SHOWN} more" if len(problems) > _MAX_NAMES_SHOWN else ""
            folder = self.pairs[0][0].parent
            raise ValueError(f"{len(problems)} of {len(self.pairs)} image/mask pairs (images in {folder}) cannot be "
                             f"used:\n  {listed}{more}\nA mask must have exactly the size of its image.")

    def check_files(self) -> None:
        """Decode every image and mask now and raise one error listing all broken pairs."""
        problems = []
        for image_path, mask_path in self.pairs:
            try:
                load_pair(image_path, mask_path)
            except (FileNotFoundError, ValueError) as err:
                problems.append(str(err))
        if problems:
            listed = "\n  ".join(problems[:_MAX_NAMES_SHOWN])
            more = f"\n  ... and {len(problems) - _MAX_NAMES_SHOWN} more" if len(problems) > _MAX_NAMES_SHOWN else ""
            raise ValueError(f"{len(problems)} of {len(self.pairs)} image/mask pairs cannot be used:\n  {listed}{more}")

    def __repr__(self) -> str:
        h, w = self.image_size
        return f"PersonSegmentationDataset({len(self)} pairs, image_size=({h}, {w}), augment={self.augment})"


def pair_by_stem(image_dir: str | Path, mask_dir: str | Path, skip_unpaired: bool = False) -> list[Pair]:
    """Match images to masks by file name without extension ('0001.jpg' <-> '0001.png').

    Unmatched files raise a ValueError naming them, or with `skip_unpaired=True` are left out
    with a one-line warning (handy for downloaded datasets with a few stray files).
    """
    images, masks = list_images(image_dir), list_images(mask_dir)
    image_by_stem = _by_stem(images, image_dir)
    mask_by_stem = _by_stem(masks, mask_dir)
    lonely_images = [image_by_stem[s] for s in sorted(image_by_stem.keys() - mask_by_stem.keys())]
    lonely_masks = [mask_by_stem[s] for s in sorted(mask_by_stem.keys() - image_by_stem.keys())]
    problems = []
    if lonely_images:
        problems.append(
            f"{len(lonely_images)} image(s) in {image_dir} have no mask in {mask_dir}: {_names(lonely_images)}"
        )
    if lonely_masks:
        problems.append(
            f"{len(lonely_masks)} mask(s) in {mask_dir} have no image in {image_dir}: {_names(lonely_masks)}"
        )
    if problems and not skip_unpaired:
        raise ValueError("; ".join(problems) + " (images and masks are matched by file name without extension)")
    if problems:
        print("Skipping unmatched files: " + "; ".join(problems))
    return [(image_by_stem[s], mask_by_stem[s]) for s in sorted(image_by_stem.keys() & mask_by_stem.keys())]


def _by_stem(files: list[Path], folder: str | Path) -> dict[str, Path]:
    """{stem: path}, refusing two files with the same stem (e.g. a.jpg and a.png) since the match would be a guess."""
    by_stem: dict[str, Path] = {}
    for path in files:
        if path.stem in by_stem:
            raise ValueError(
                f"two files in {folder} share the name {path.stem!r}: {by_stem[path.stem].name} and {path.name}"
            )
        by_stem[path.stem] = path
    return by_stem


@dataclass
class PersonLayout:
    """Where the images, masks and (if any) split lists of a person dataset live."""

    name: str
    root: Path
    image_dir: Path
    mask_dir: Path
    train_list: Path | None = None
    val_list: Path | None = None


def _layout_at(folder: Path) -> PersonLayout | None:
    """The layout whose folders sit directly in `folder`, or None."""
    if (folder / "images").is_dir() and (folder / "masks").is_dir():
        lists = folder / "segmentation"
        if (lists / "train.txt").is_file() and (lists / "val.txt").is_file():
            return PersonLayout(PRIMARY_HANDLE, folder, folder / "images", folder / "masks",
                                lists / "train.txt", lists / "val.txt")
        if folder.name.startswith("supervisely_person_clean"):
            return PersonLayout(PERSON_KAGGLE_HANDLES[1], folder, folder / "images", folder / "masks")
        return PersonLayout("images + masks folder", folder, folder / "images", folder / "masks")
    if (folder / "train2017_new").is_dir() and (folder / "train2017_ann").is_dir():
        return PersonLayout(PERSON_KAGGLE_HANDLES[2], folder, folder / "train2017_new", folder / "train2017_ann")
    return None


def find_layout(root: str | Path, max_depth: int = 4) -> PersonLayout:
    """Find which supported layout `root` holds, looking up to `max_depth` folders down (shallowest wins)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"person data folder not found: {root}")
    # Breadth-first, because Kaggle downloads wrap the data in one or two extra folders.
    level = [root]
    for _depth in range(max_depth + 1):
        next_level = []
        for folder in level:
            layout = _layout_at(folder)
            if layout is not None:
                return layout
            try:
                children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
            except OSError:
                continue
            next_level += [c for c in children if c.name not in _IMAGE_FOLDER_NAMES]
        level = next_level
    raise FileNotFoundError(
        f"no person segmentation data found in {root}: expected a folder with images/ and masks/ "
        "(matching file names), people_segmentation/ from nikhilroxtomar/person-segmentation, or "
        "train2017_new/ + train2017_ann/ from oishee30/cocopersonsegmentation"
    )


def _read_split_list(path: Path) -> list[str]:
    """Names listed one per line (extensions tolerated, blank lines ignored)."""
    names = []
    for line in path.read_text().splitlines():
        name = line.strip()
        if name:
            names.append(Path(name).stem if Path(name).suffix.lower() in IMAGE_SUFFIXES else name)
    return names


def load_person_pairs(root: str | Path, val_fraction: float = 0.1, seed: int = 0,
                      skip_unpaired: bool = False) -> tuple[list[Pair], list[Pair]]:
    """(train_pairs, val_pairs) for a supported folder: the dataset's own split lists if it has them,
    otherwise a fixed split of `val_fraction` shuffled with `seed`."""
    layout = find_layout(root)
    pairs = pair_by_stem(layout.image_dir, layout.mask_dir, skip_unpaired=skip_unpaired)
    if layout.train_list is not None and layout.val_list is not None:
        by_stem = {image.stem: (image, mask) for image, mask in pairs}
        splits = []
        for list_file in (layout.train_list, layout.val_list):
            names = _read_split_list(list_file)
            missing = [n for n in names if n not in by_stem]
            if missing and not skip_unpaired:
                raise ValueError(f"{len(missing)} name(s) in {list_file} have no image/mask pair: {_names(missing)}")
            splits.append([by_stem[n] for n in names if n in by_stem])
        if splits[0] and splits[1]:
            return splits[0], splits[1]
        print(f"Split lists in {layout.train_list.parent} match no files; making a random split instead.")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    shuffled = list(pairs)
    random.Random(seed).shuffle(shuffled)
    n_val = max(1, round(len(shuffled) * val_fraction)) if len(shuffled) > 1 else 0
    return shuffled[n_val:], shuffled[:n_val]


# --------------------------------------------------------------------------------------------
# One entry point for the notebooks
# --------------------------------------------------------------------------------------------
@dataclass
class PersonDataInfo:
    """Which data `get_person_datasets` ended up using."""

    source: str  # "kaggle", "folder" or "synthetic"
    name: str  # Kaggle handle, folder layout name or "synthetic people"
    root: Path | None
    n_train: int
    n_val: int

    def __str__(self) -> str:
        where = f" from {self.root}" if self.root else ""
        return f"{self.name} ({self.n_train:,} train / {self.n_val:,} val){where}"


def _subset(pairs: list[Pair], n: int | None, seed: int) -> list[Pair]:
    """At most `n` pairs, a seeded random choice so small subsets still span the whole dataset."""
    if n is None or n >= len(pairs):
        return pairs
    chosen = sorted(random.Random(seed).sample(range(len(pairs)), n))
    return [pairs[i] for i in chosen]


def _real_datasets(root: Path, image_size: ImageSize, n_train: int | None, n_val: int | None, seed: int,
                   augment: bool, skip_unpaired: bool, validate: bool
                   ) -> tuple[PersonSegmentationDataset, PersonSegmentationDataset, PersonLayout]:
    """Train/val PersonSegmentationDatasets for a folder, plus the layout found there."""
    layout = find_layout(root)
    train_pairs, val_pairs = load_person_pairs(layout.root, seed=seed, skip_unpaired=skip_unpaired)
    train_pairs, val_pairs = _subset(train_pairs, n_train, seed), _subset(val_pairs, n_val, seed + 1)
    train_ds = PersonSegmentationDataset(train_pairs, image_size, augment=augment, validate=validate)
    val_ds = PersonSegmentationDataset(val_pairs, image_size, augment=False, validate=validate)
    return train_ds, val_ds, layout


def _find_kaggle_person_data() -> tuple[str | None, Path | None, str]:
    """(handle, folder, "") for the first automatic person dataset cached or downloadable, else (None, None, reason).

    Only AUTOMATIC_HANDLES are tried (never the COCO repack); the reason names every handle tried and why it failed.
    """
    for handle in AUTOMATIC_HANDLES:
        cached = kaggle.find_cached_dataset(handle)
        if cached is not None:
            return handle, cached, ""
    tried = " and ".join(AUTOMATIC_HANDLES)
    if kaggle.offline_mode():
        return None, None, f"{tried}: {kaggle.OFFLINE_VARIABLE}=1 and not in the kagglehub cache"
    if not kaggle.kaggle_reachable():
        return None, None, (f"{tried}: no connection to {kaggle.KAGGLE_HOST}; check the internet connection, "
                            f"or set {kaggle.OFFLINE_VARIABLE}=1 to skip the attempt")
    reasons = []
    for handle in AUTOMATIC_HANDLES:
        folder, reason = kaggle.download_kaggle_dataset(handle)
        if folder is not None:
            return handle, folder, ""
        reasons.append(reason if reason.startswith(handle) else f"{handle}: {reason}")
    return None, None, " | ".join(reasons)


def get_person_datasets(image_size: ImageSize = 128, n_train: int | None = None, n_val: int | None = None,
                        source: str = "auto", root: str | Path | None = None, seed: int = 0,
                        augment: bool = True, validate: bool = False,
                        difficulty: float = 1.0) -> tuple[Dataset, Dataset, PersonDataInfo]:
    """Train and validation datasets for person segmentation, plus a PersonDataInfo saying which data is used.

    source: "auto" (Kaggle if cached or reachable, else synthetic), "kaggle" (fail if unavailable),
    "synthetic", or a Kaggle handle such as "oishee30/cocopersonsegmentation".
    root: a local folder in any supported layout; takes precedence over Kaggle.
    n_train / n_val: use at most this many pairs (synthetic default: 2,000 / 200).
    augment: random crops, flips and colour jitter on the training set only.
    difficulty: clutter of the synthetic fallback in [0, 1] (1.0: the standard set; see utils.data.synthetic);
    real data is what it is, so it ignores this.
    """
    if source not in ("auto", "kaggle", "synthetic") and "/" not in source:
        raise ValueError(f"source must be 'auto', 'kaggle', 'synthetic' or a Kaggle handle, got {source!r}")
    if root is not None and source == "synthetic":
        raise ValueError("root= points to real data but source='synthetic'; pass only one of them")

    if root is not None:
        train_ds, val_ds, layout = _real_datasets(Path(root).expanduser(), image_size, n_train, n_val, seed,
                                                  augment, skip_unpaired=False, validate=validate)
        info = PersonDataInfo("folder", layout.name, layout.root, len(train_ds), len(val_ds))
        print(f"Using person data: {info}")
        return train_ds, val_ds, info

    fallback_note = ""
    if source != "synthetic":
        if "/" in source:
            handle = source
            if source in LARGE_DATASETS and kaggle.find_cached_dataset(source) is None and not kaggle.offline_mode():
                print(f"Downloading {source}: {LARGE_DATASETS[source]}. Interrupt the kernel to stop it.")
            folder, reason = kaggle.locate_kaggle_dataset(source)
        else:
            handle, folder, reason = _find_kaggle_person_data()
        if folder is not None:
            try:
                # A few stray files in someone else's upload should not cost us the whole dataset.
                train_ds, val_ds, layout = _real_datasets(folder, image_size, n_train, n_val, seed, augment,
                                                          skip_unpaired=True, validate=validate)
            except (FileNotFoundError, ValueError) as err:
                if source != "auto":
                    raise
                fallback_note = f"Kaggle dataset {handle} at {folder} could not be read ({err})"
            else:
                info = PersonDataInfo("kaggle", handle, layout.root, len(train_ds), len(val_ds))
                print(f"Using person data: {info}")
                return train_ds, val_ds, info
        else:
            if source != "auto":
                raise RuntimeError(f"Kaggle person data is not available ({reason})")
            fallback_note = f"Kaggle person data not available ({reason})"

    n_train = 2000 if n_train is None else n_train
    n_val = 200 if n_val is None else n_val
    # A distant seed for validation keeps its pictures different from the training pictures.
    train_ds = SyntheticPeopleDataset(n_train, image_size, seed=seed, augment=augment, difficulty=difficulty)
    val_ds = SyntheticPeopleDataset(n_val, image_size, seed=seed + 100_003, augment=False, difficulty=difficulty)
    name = "synthetic people" if difficulty == 1.0 else f"synthetic people (difficulty {difficulty:g})"
    info = PersonDataInfo("synthetic", name, None, n_train, n_val)
    if fallback_note:
        # One line for the whole story: why not Kaggle, and what we use instead.
        print(f"{fallback_note}; using the synthetic fallback instead: {info}, drawn on the fly.")
    else:
        print(f"Using person data: {info}, drawn on the fly.")
    return train_ds, val_ds, info


class SyntheticPeopleDataset(Dataset):
    """`n` synthetic pictures of people, item i fixed by (seed, i); same output format as PersonSegmentationDataset."""

    def __init__(self, n: int, image_size: ImageSize = 128, seed: int = 0, augment: bool = False,
                 cache: bool = False, difficulty: float = 1.0) -> None:
        if n < 1:
            raise ValueError(f"a synthetic dataset needs at least one picture, got n={n}")
        self.difficulty = check_difficulty(difficulty)  # at construction, not at the first picture drawn
        self.n = int(n)
        self.image_size = as_height_width(image_size)
        self.seed = int(seed)
        self.augment = augment
        self.transform = build_transform(self.image_size, augment)
        # Caching trades memory (4 bytes per pixel, n * H * W * 4 allocated at once) for the milliseconds of drawing.
        # The cache lives in shared memory, so DataLoader workers fill one cache that every worker, every later epoch
        # and the main process read (a dict would be copied into each worker and lost when the worker ends).
        self._pixels: torch.Tensor | None = None
        self._filled: torch.Tensor | None = None
        if cache:
            height, width = self.image_size
            self._pixels = torch.zeros((self.n, height, width, 4), dtype=torch.uint8).share_memory_()
            self._filled = torch.zeros(self.n, dtype=torch.bool).share_memory_()

    def __len__(self) -> int:
        return self.n

    def picture(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The un-augmented picture `index` as numpy arrays (image uint8 (H, W, 3), mask uint8 (H, W))."""
        if not -self.n <= index < self.n:
            raise IndexError(f"index {index} out of range for a dataset of {self.n} pictures")
        index %= self.n
        if self._pixels is not None and bool(self._filled[index]):
            stored = self._pixels[index].numpy()
            return stored[..., :3].copy(), stored[..., 3].copy()
        image, mask = make_synthetic_person_image(self.seed, index, self.image_size, self.difficulty)
        if self._pixels is not None:
            # Pixels first, flag last: a worker that sees the flag sees the whole picture. Two workers drawing the
            # same picture at once write the same bytes.
            self._pixels[index, ..., :3] = torch.tensor(image)
            self._pixels[index, ..., 3] = torch.tensor(mask)
            self._filled[index] = True
        return image, mask

    def cached_count(self) -> int:
        """How many pictures the shared cache holds (0 without cache=True)."""
        return 0 if self._filled is None else int(self._filled.sum())

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self.picture(index)
        return to_tensors(image, mask, self.transform)

    def __repr__(self) -> str:
        h, w = self.image_size
        extra = "" if self.difficulty == 1.0 else f", difficulty={self.difficulty:g}"
        return f"SyntheticPeopleDataset(n={self.n}, image_size=({h}, {w}), seed={self.seed}, augment={self.augment}{extra})"
