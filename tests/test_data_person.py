"""Tests for person segmentation data: Kaggle layouts, the offline fallback, bad input and the synthetic set.

Everything runs offline on tiny files written into pytest's tmp_path.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from utils.data import kaggle
from utils.data.person import (
    PRIMARY_HANDLE,
    PersonSegmentationDataset,
    find_layout,
    get_person_datasets,
    load_person_pairs,
    pair_by_stem,
)
from utils.data.person import SyntheticPeopleDataset
from utils.data.synthetic import make_synthetic_person_image

H, W = 24, 32  # tiny and not square, so a swapped height/width would show


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test may reach the network or the user's real kagglehub cache."""
    monkeypatch.setenv(kaggle.OFFLINE_VARIABLE, "1")
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "empty_kagglehub_cache"))


# ----------------------------------------------------------------------------------------------
# Helpers that write tiny datasets
# ----------------------------------------------------------------------------------------------
def person_mask(height: int = H, width: int = W) -> np.ndarray:
    """An asymmetric 0/1 mask: a block in the left part plus a foot to the right."""
    mask = np.zeros((height, width), np.uint8)
    mask[4:18, 3:11] = 1
    mask[14:18, 11:16] = 1
    return mask


def person_image(mask: np.ndarray) -> np.ndarray:
    """Red where the mask is 1, blue elsewhere: alignment can be checked pixel by pixel."""
    image = np.zeros((*mask.shape, 3), np.uint8)
    image[mask == 1] = (220, 30, 30)
    image[mask == 0] = (30, 30, 220)
    return image


def write_pair(image_dir: Path, mask_dir: Path, stem: str, image_ext: str = ".jpg", mask_ext: str = ".png",
               mask_scale: int = 1, size: tuple[int, int] = (H, W)) -> None:
    """One image/mask pair; `mask_scale` 1 stores 0/1, 255 stores 0/255."""
    image_dir.mkdir(parents=True, exist_ok=True)
    mask_dir.mkdir(parents=True, exist_ok=True)
    mask = person_mask(*size)
    Image.fromarray(person_image(mask)).save(image_dir / f"{stem}{image_ext}", quality=95)
    Image.fromarray(mask * mask_scale).save(mask_dir / f"{stem}{mask_ext}", quality=90)


def make_nikhil_layout(root: Path, stems: tuple[str, ...] = ("a", "b", "c", "d")) -> Path:
    """people_segmentation/{images/*.jpg, masks/*.png (0/1), segmentation/train.txt + val.txt}."""
    base = root / "people_segmentation"
    for stem in stems:
        write_pair(base / "images", base / "masks", stem)
    (base / "segmentation").mkdir(parents=True)
    (base / "segmentation" / "train.txt").write_text("\n".join(stems[:-1]) + "\n")
    (base / "segmentation" / "val.txt").write_text(stems[-1] + "\n")
    return root


def make_coco_layout(root: Path, n: int = 5) -> Path:
    """train2017_new/*.jpg with JPEG masks (0/255) of the same name in train2017_ann/."""
    for i in range(n):
        write_pair(root / "train2017_new", root / "train2017_ann", f"0000{i}", mask_ext=".jpg", mask_scale=255)
    return root


def make_supervisely_layout(root: Path, n: int = 5) -> Path:
    """supervisely_person_clean_2667_img/supervisely_person_clean_2667_img/{images,masks}, PNG, 255 = person."""
    base = root / "supervisely_person_clean_2667_img" / "supervisely_person_clean_2667_img"
    for i in range(n):
        write_pair(base / "images", base / "masks", f"ds{i}_pexels-photo", image_ext=".png", mask_scale=255)
    return root


def make_folder_layout(root: Path, n: int = 5) -> Path:
    """A student's own data: images/ + masks/."""
    for i in range(n):
        write_pair(root / "images", root / "masks", f"img_{i:03d}")
    return root


def fill_kagglehub_cache(cache: Path, handle: str, version: int, complete: bool = True) -> Path:
    """Lay out a download the way kagglehub stores it: datasets/<owner>/<name>/versions/<N>/ + <N>.complete."""
    owner, name = handle.split("/")
    dataset_dir = cache / "datasets" / owner / name
    version_dir = dataset_dir / "versions" / str(version)
    version_dir.mkdir(parents=True)
    if complete:
        (dataset_dir / f"{version}.complete").touch()
    return version_dir


# ----------------------------------------------------------------------------------------------
# Kaggle cache and offline fallback
# ----------------------------------------------------------------------------------------------
def test_cached_kaggle_dataset_is_found_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "kagglehub"
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(cache))
    old = fill_kagglehub_cache(cache, PRIMARY_HANDLE, 1)
    newest = fill_kagglehub_cache(cache, PRIMARY_HANDLE, 2)
    fill_kagglehub_cache(cache, PRIMARY_HANDLE, 3, complete=False)  # interrupted download: ignored
    assert kaggle.fetch_kaggle_dataset(PRIMARY_HANDLE) == newest
    assert kaggle.fetch_kaggle_dataset(f"{PRIMARY_HANDLE}/versions/1") == old
    assert kaggle.fetch_kaggle_dataset(f"{PRIMARY_HANDLE}/versions/3", verbose=False) is None


def test_cache_layout_matches_real_kagglehub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kagglehub = pytest.importorskip("kagglehub")
    cache = tmp_path / "kagglehub"
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(cache))
    version_dir = fill_kagglehub_cache(cache, "someone/some-data", 4)
    # A versioned handle with a complete cache entry is answered by kagglehub without the network.
    assert Path(kagglehub.dataset_download("someone/some-data/versions/4")) == version_dir
    assert kaggle.find_cached_dataset("someone/some-data") == version_dir


def test_offline_env_var_skips_network(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    kagglehub = pytest.importorskip("kagglehub")

    def must_not_be_called(*args, **kwargs):
        raise AssertionError("network used although UNET_COURSE_OFFLINE=1")

    monkeypatch.setattr(kagglehub, "dataset_download", must_not_be_called)
    monkeypatch.setattr(kaggle, "kaggle_reachable", must_not_be_called)
    assert kaggle.fetch_kaggle_dataset(PRIMARY_HANDLE) is None
    assert "UNET_COURSE_OFFLINE" in capsys.readouterr().out


def test_connection_error_falls_back_quickly_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    kagglehub = pytest.importorskip("kagglehub")
    requests = pytest.importorskip("requests")
    monkeypatch.delenv(kaggle.OFFLINE_VARIABLE)
    monkeypatch.setattr(kaggle, "kaggle_reachable", lambda timeout=0: True)  # get as far as kagglehub

    attempts = []

    def no_network(handle: str, *args, **kwargs):
        attempts.append(handle)
        raise requests.exceptions.ConnectionError("Failed to resolve 'www.kaggle.com'")

    monkeypatch.setattr(kagglehub, "dataset_download", no_network)
    assert kaggle.fetch_kaggle_dataset(PRIMARY_HANDLE) is None
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Kaggle dataset not available ({PRIMARY_HANDLE}: ConnectionError")
    assert "Failed to resolve" in lines[0] and "what to do" in lines[0] and "synthetic fallback" in lines[0]

    attempts.clear()
    train_ds, val_ds, info = get_person_datasets(image_size=32, n_train=4, n_val=2)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "ConnectionError" in lines[0] and "synthetic" in lines[0]
    assert info.source == "synthetic" and isinstance(train_ds, SyntheticPeopleDataset)
    assert (len(train_ds), len(val_ds)) == (4, 2)
    # No retries: each handle is tried at most once (how long that takes is measured in benchmarks/, not here).
    assert len(attempts) == len(set(attempts))


def test_auto_uses_cached_kaggle_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture) -> None:
    cache = tmp_path / "kagglehub"
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(cache))
    make_nikhil_layout(fill_kagglehub_cache(cache, PRIMARY_HANDLE, 2))
    train_ds, val_ds, info = get_person_datasets(image_size=16)
    assert info.source == "kaggle" and info.name == PRIMARY_HANDLE
    assert (len(train_ds), len(val_ds)) == (3, 1)
    assert "Using person data" in capsys.readouterr().out


def test_kaggle_source_raises_when_unavailable() -> None:
    with pytest.raises(RuntimeError, match="not available"):
        get_person_datasets(source="kaggle")


# ----------------------------------------------------------------------------------------------
# Every supported layout through the public API
# ----------------------------------------------------------------------------------------------
def test_nikhilroxtomar_layout_uses_its_split_lists(tmp_path: Path) -> None:
    root = make_nikhil_layout(tmp_path / "download")
    layout = find_layout(root)
    assert layout.name == PRIMARY_HANDLE
    train, val = load_person_pairs(root)
    assert [p[0].name for p in train] == ["a.jpg", "b.jpg", "c.jpg"]
    assert [(p[0].name, p[1].name) for p in val] == [("d.jpg", "d.png")]


@pytest.mark.parametrize("make_layout, expected", [
    (make_coco_layout, "oishee30/cocopersonsegmentation"),
    (make_supervisely_layout, "tapakah68/supervisely-filtered-segmentation-person-dataset"),
    (make_folder_layout, "images + masks folder"),
])
def test_layouts_load_through_public_api(tmp_path: Path, make_layout, expected: str) -> None:
    # Kaggle wraps downloads in extra folders, so put the data one level down.
    root = make_layout(tmp_path / "download" / "extra")
    assert find_layout(tmp_path / "download").name == expected
    train, val = load_person_pairs(tmp_path / "download", val_fraction=0.2, seed=0)
    assert (len(train), len(val)) == (4, 1)
    assert load_person_pairs(root, val_fraction=0.2, seed=0) == (train, val)  # fixed, seeded split
    train_ds, _, info = get_person_datasets(image_size=(16, 20), root=tmp_path / "download")
    assert info.source == "folder" and info.name == expected
    image, mask = train_ds[0]
    assert image.shape == (3, 16, 20) and image.dtype == torch.float32
    assert mask.shape == (1, 16, 20) and mask.dtype == torch.float32
    assert 0 <= image.min() and image.max() <= 1
    assert set(mask.unique().tolist()) == {0.0, 1.0}


def test_n_train_and_n_val_limit_real_data(tmp_path: Path) -> None:
    root = make_folder_layout(tmp_path / "data", n=10)
    train_ds, val_ds, _ = get_person_datasets(image_size=16, n_train=3, n_val=1, root=root)
    assert (len(train_ds), len(val_ds)) == (3, 1)


# ----------------------------------------------------------------------------------------------
# Bad input: one clear error each, naming the file or folder
# ----------------------------------------------------------------------------------------------
def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not_there"):
        get_person_datasets(root=tmp_path / "not_there")
    with pytest.raises(FileNotFoundError, match="not_there"):
        pair_by_stem(tmp_path / "not_there", tmp_path)


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "nothing").mkdir()
    with pytest.raises(FileNotFoundError, match="no person segmentation data found in .*nothing"):
        find_layout(tmp_path / "nothing")
    (tmp_path / "data" / "images").mkdir(parents=True)
    (tmp_path / "data" / "masks").mkdir()
    with pytest.raises(FileNotFoundError, match="no images .* in folder: .*images"):
        load_person_pairs(tmp_path / "data")


def test_images_without_masks_are_named_and_counted(tmp_path: Path) -> None:
    root = make_folder_layout(tmp_path, n=2)
    for i in range(7):
        Image.fromarray(person_image(person_mask())).save(root / "images" / f"lonely_{i}.jpg")
    with pytest.raises(ValueError) as info:
        load_person_pairs(root)
    message = str(info.value)
    assert "7 image(s)" in message and "have no mask" in message
    assert "lonely_0.jpg" in message and "and 2 more" in message
    assert "lonely_6.jpg" not in message  # only the first few names


def test_masks_without_images_are_named_and_counted(tmp_path: Path) -> None:
    root = make_folder_layout(tmp_path, n=2)
    Image.fromarray(person_mask()).save(root / "masks" / "orphan.png")
    with pytest.raises(ValueError, match=r"1 mask\(s\) in .*masks have no image in .*images: orphan.png"):
        load_person_pairs(root)
    # Downloaded data may opt in to skipping strays, with a warning.
    train, val = load_person_pairs(root, skip_unpaired=True)
    assert len(train) + len(val) == 2


def test_unreadable_image_file(tmp_path: Path) -> None:
    root = make_folder_layout(tmp_path, n=2)
    broken = root / "images" / "img_001.jpg"
    broken.write_bytes(b"this is not a picture")
    pairs = sorted(pair_by_stem(root / "images", root / "masks"))
    with pytest.raises(ValueError, match="(?s)1 of 2 image/mask pairs .*cannot read image file .*img_001.jpg"):
        PersonSegmentationDataset(pairs, 16)  # the header check at build already finds it
    dataset = PersonSegmentationDataset(pairs, 16, check_sizes=False)
    with pytest.raises(ValueError, match="cannot read image file .*img_001.jpg"):
        dataset[1]
    with pytest.raises(ValueError, match="(?s)1 of 2 image/mask pairs .*img_001.jpg"):
        PersonSegmentationDataset(dataset.pairs, 16, validate=True)


@pytest.mark.parametrize("folder, suffix", [("images", ".jpg"), ("masks", ".png")])
def test_truncated_files(tmp_path: Path, folder: str, suffix: str) -> None:
    root = make_folder_layout(tmp_path, n=1)
    path = root / folder / f"img_000{suffix}"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    pairs = pair_by_stem(root / "images", root / "masks")
    try:
        dataset = PersonSegmentationDataset(pairs, 16)  # reads headers only
    except ValueError as err:  # the cut reached the header: found at build, with the file's name
        assert f"img_000{suffix}" in str(err)
    else:
        with pytest.raises(ValueError, match=f"img_000{suffix}"):
            dataset[0]
    with pytest.raises(ValueError, match=f"(?s)1 of 1 image/mask pairs .*img_000{suffix}"):
        PersonSegmentationDataset(pairs, 16, validate=True)


def test_mask_of_other_size_names_both_sizes(tmp_path: Path) -> None:
    root = make_folder_layout(tmp_path, n=1)
    Image.fromarray(person_mask(20, 30)).save(root / "masks" / "img_000.png")
    pairs = pair_by_stem(root / "images", root / "masks")
    # Found when the dataset is built, from the file headers, with both names and sizes.
    with pytest.raises(ValueError, match=r"(?s)1 of 1 image/mask pairs .*img_000.jpg is 32x24 but its mask img_000.png is 30x20"):
        PersonSegmentationDataset(pairs, 16)
    dataset = PersonSegmentationDataset(pairs, 16, check_sizes=False)
    with pytest.raises(ValueError, match=r"img_000.png is 30x20 .*img_000.jpg is 32x24"):
        dataset[0]


def test_no_pairs_at_all() -> None:
    with pytest.raises(ValueError, match="no \\(image, mask\\) pairs"):
        PersonSegmentationDataset([], 16)


# ----------------------------------------------------------------------------------------------
# Image modes and mask encodings
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "LA"])
def test_image_modes_become_rgb(tmp_path: Path, mode: str) -> None:
    root = make_folder_layout(tmp_path, n=1)
    rgb = Image.open(root / "images" / "img_000.jpg").convert("RGB")
    converted = rgb.convert(mode) if mode != "P" else rgb.quantize(8)
    (root / "images" / "img_000.jpg").unlink()
    converted.save(root / "images" / "img_000.png")
    image, _ = PersonSegmentationDataset(pair_by_stem(root / "images", root / "masks"), (H, W))[0]
    assert image.shape == (3, H, W) and image.dtype == torch.float32
    assert 0 <= image.min() and image.max() <= 1


@pytest.mark.parametrize("scale, suffix", [(1, ".png"), (255, ".png"), (255, ".jpg")])
def test_mask_encodings_become_0_1(tmp_path: Path, scale: int, suffix: str) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    truth = person_mask()
    Image.fromarray(person_image(truth)).save(tmp_path / "images" / "x.png")
    # JPEG at low quality: the mask comes back with grey ringing around the edges.
    Image.fromarray(truth * scale).save(tmp_path / "masks" / f"x{suffix}", quality=60)
    _, mask = PersonSegmentationDataset(pair_by_stem(tmp_path / "images", tmp_path / "masks"), (H, W))[0]
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    agreement = (mask[0].numpy() == truth).mean()
    assert agreement == 1.0 if suffix == ".png" else agreement > 0.97


# ----------------------------------------------------------------------------------------------
# Augmentation keeps image and mask aligned
# ----------------------------------------------------------------------------------------------
def _alignment(image: torch.Tensor, mask: torch.Tensor) -> float:
    """Share of pixels away from mask edges where "red" in the image agrees with mask == 1.

    Pixels right on an edge are left out: there the image is interpolated (a red-blue mix) while
    the mask is resized nearest-neighbour, so either answer is fine.
    """
    from scipy.ndimage import binary_dilation, binary_erosion

    person = mask[0].numpy() > 0.5
    edge = binary_dilation(person) & ~binary_erosion(person)
    red = (image[0] > image[2]).numpy()
    return float((red == person)[~edge].mean())


def test_augmentation_keeps_image_and_mask_aligned(tmp_path: Path) -> None:
    root = make_folder_layout(tmp_path, n=1)
    pairs = pair_by_stem(root / "images", root / "masks")
    dataset = PersonSegmentationDataset(pairs, (H, W), augment=True)
    plain_image, plain_mask = PersonSegmentationDataset(pairs, (H, W))[0]
    torch.manual_seed(0)
    saw_flip = False
    for _ in range(30):
        image, mask = dataset[0]
        assert set(mask.unique().tolist()) <= {0.0, 1.0}
        assert _alignment(image, mask) > 0.99
        # The person sits in the left part of the picture; after a flip it is on the right.
        left, right = mask[0, :, : W // 2].sum(), mask[0, :, W // 2:].sum()
        saw_flip |= bool(right > left)
    assert saw_flip
    assert _alignment(plain_image, plain_mask) == 1.0


def test_flipped_pair_stays_aligned() -> None:
    from torchvision.transforms import v2

    from utils.data.person import to_tensors

    mask = person_mask()
    image, flipped = to_tensors(person_image(mask), mask, v2.RandomHorizontalFlip(p=1.0))
    assert torch.equal(flipped[0], torch.from_numpy(mask[:, ::-1].copy()).float())
    assert _alignment(image, flipped) == 1.0


# ----------------------------------------------------------------------------------------------
# Synthetic people
# ----------------------------------------------------------------------------------------------
def test_synthetic_is_deterministic_by_seed_and_index() -> None:
    first = SyntheticPeopleDataset(6, 48, seed=3)
    again = SyntheticPeopleDataset(6, 48, seed=3)
    other = SyntheticPeopleDataset(6, 48, seed=4)
    for i in (5, 0, 2):  # any order gives the same pictures
        image, mask = first[i]
        image2, mask2 = again[i]
        assert torch.equal(image, image2) and torch.equal(mask, mask2)
        assert not torch.equal(image, other[i][0])
    assert not torch.equal(first[0][0], first[1][0])


def test_synthetic_output_format() -> None:
    image, mask = SyntheticPeopleDataset(2, (40, 56), seed=0)[0]
    assert image.shape == (3, 40, 56) and image.dtype == torch.float32
    assert mask.shape == (1, 40, 56) and mask.dtype == torch.float32
    assert 0 <= image.min() and image.max() <= 1


def test_synthetic_mask_agrees_with_image() -> None:
    differences = []
    for i in range(12):
        image, mask = make_synthetic_person_image(seed=0, index=i, image_size=64)
        assert set(np.unique(mask).tolist()) == {0, 1}  # binary and never empty
        inside = image[mask == 1].astype(float).mean(axis=0)
        outside = image[mask == 0].astype(float).mean(axis=0)
        differences.append(np.abs(inside - outside).sum())
    # People are painted on top of the background, so their colours differ from it.
    assert np.median(differences) > 20


def test_synthetic_edges_are_soft_but_mask_is_binary() -> None:
    image, mask = make_synthetic_person_image(seed=1, index=0, image_size=64)
    assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1}
    # Anti-aliased edges leave in-between colours; a hard-edged drawing would not have many.
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 1000


def test_synthetic_pictures_vary() -> None:
    from skimage.measure import label

    fractions, touches_border, several_people = [], 0, 0
    for i in range(24):
        _, mask = make_synthetic_person_image(seed=0, index=i, image_size=64)
        fractions.append(mask.mean())
        touches_border += bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())
        several_people += label(mask).max() > 1
    assert np.std(fractions) > 0.03 and min(fractions) < 0.1 < max(fractions)
    assert 0 < touches_border < 24
    assert several_people > 0


def test_synthetic_augmentation_keeps_format() -> None:
    torch.manual_seed(0)
    dataset = SyntheticPeopleDataset(3, 32, seed=0, augment=True, cache=True)
    for i in range(3):
        image, mask = dataset[i]
        assert image.shape == (3, 32, 32) and mask.shape == (1, 32, 32)
        assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert dataset.cached_count() == 3


def test_synthetic_source(capsys: pytest.CaptureFixture) -> None:
    train_ds, val_ds, info = get_person_datasets(image_size=32, n_train=5, n_val=3, source="synthetic")
    assert (len(train_ds), len(val_ds), info.source) == (5, 3, "synthetic")
    assert not torch.equal(train_ds[0][0], val_ds[0][0])  # validation pictures are different ones
    assert capsys.readouterr().out.count("\n") == 1


# ----------------------------------------------------------------------------------------------
# Issue 18: the COCO repack only by name, download errors that say what to do, the synthetic cache with workers
# ----------------------------------------------------------------------------------------------
def test_auto_never_tries_the_coco_repack(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from utils.data import person

    kagglehub = pytest.importorskip("kagglehub")
    monkeypatch.delenv(kaggle.OFFLINE_VARIABLE)
    monkeypatch.setattr(kaggle, "kaggle_reachable", lambda timeout=0: True)
    tried = []

    def refuse(handle, *args, **kwargs):
        tried.append(handle)
        raise RuntimeError("403 Client Error")

    monkeypatch.setattr(kagglehub, "dataset_download", refuse)
    get_person_datasets(image_size=16, n_train=2, n_val=1)
    assert person.COCO_HANDLE not in tried and tried == list(person.AUTOMATIC_HANDLES)
    line = capsys.readouterr().out
    assert all(handle in line for handle in person.AUTOMATIC_HANDLES)  # every handle tried is named with its reason


def test_coco_by_name_says_its_size_first(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from utils.data import person

    monkeypatch.delenv(kaggle.OFFLINE_VARIABLE)
    monkeypatch.setattr(kaggle, "locate_kaggle_dataset", lambda handle, download=True: (None, f"{handle}: stop"))
    with pytest.raises(RuntimeError, match="stop"):
        get_person_datasets(source=person.COCO_HANDLE)
    assert capsys.readouterr().out.startswith(f"Downloading {person.COCO_HANDLE}: 64,115 pictures")


@pytest.mark.parametrize("status, hint", [(403, "sign in"), (404, "renamed"), (503, "try again")])
def test_download_failure_names_handle_status_and_what_to_do(monkeypatch: pytest.MonkeyPatch, status, hint) -> None:
    kagglehub = pytest.importorskip("kagglehub")
    requests = pytest.importorskip("requests")

    def http_error(handle, *args, **kwargs):
        response = requests.Response()
        response.status_code = status
        raise requests.exceptions.HTTPError(f"{status} Client Error: for url: https://www.kaggle.com/x", response=response)

    monkeypatch.setattr(kagglehub, "dataset_download", http_error)
    folder, reason = kaggle.download_kaggle_dataset("someone/data")
    assert folder is None
    assert reason.startswith("someone/data: HTTP ") and str(status) in reason and hint in reason


def _first_items(dataset, workers: int) -> int:
    from torch.utils.data import DataLoader

    for _ in DataLoader(dataset, batch_size=2, num_workers=workers):
        pass
    return dataset.cached_count()


def test_synthetic_cache_is_filled_by_loader_workers() -> None:
    """cache=True with DataLoader workers: the pictures drawn in the workers are in the main process's cache."""
    dataset = SyntheticPeopleDataset(6, 16, seed=0, cache=True)
    assert _first_items(dataset, workers=2) == 6
    direct = SyntheticPeopleDataset(6, 16, seed=0)
    for i in range(6):
        assert np.array_equal(dataset.picture(i)[0], direct.picture(i)[0])
        assert np.array_equal(dataset.picture(i)[1], direct.picture(i)[1])


def test_synthetic_difficulty_reaches_the_renderer(capsys: pytest.CaptureFixture) -> None:
    easy = SyntheticPeopleDataset(3, 48, seed=5, difficulty=0.0)
    image, mask = easy.picture(1)
    expected_image, expected_mask = make_synthetic_person_image(5, 1, 48, difficulty=0.0)
    np.testing.assert_array_equal(image, expected_image)
    np.testing.assert_array_equal(mask, expected_mask)
    standard_image, _ = SyntheticPeopleDataset(3, 48, seed=5).picture(1)
    assert not np.array_equal(image, standard_image)
    assert "difficulty=0" in repr(easy) and "difficulty" not in repr(SyntheticPeopleDataset(3, 48, seed=5))
    with pytest.raises(ValueError, match="between 0 and 1"):
        SyntheticPeopleDataset(3, 48, difficulty=1.5)
    train_set, val_set, info = get_person_datasets(48, n_train=4, n_val=2, source="synthetic", difficulty=0.25)
    assert train_set.difficulty == val_set.difficulty == 0.25
    assert "difficulty 0.25" in info.name and "difficulty 0.25" in capsys.readouterr().out
