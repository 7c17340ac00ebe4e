"""The course's data: person segmentation, natural photos, super-resolution pairs and inpainting masks.

Real data sets come through kagglehub when reachable; otherwise each loader says so in one line and
falls back to data generated or shipped offline. See data/README.md for every source and licence.
"""
from utils.data.kaggle import fetch_kaggle_dataset, find_cached_dataset
from utils.data.masks import MASK_KINDS, InpaintingDataset, free_form_mask, random_mask, rectangle_mask, stroke_mask
from utils.data.natural import (
    DenoisingDataset,
    PhotoCrops,
    SuperResolutionDataset,
    downscale,
    from_unit,
    get_natural_images,
    to_unit,
    upscale,
)
from utils.data.person import (
    PersonDataInfo,
    PersonSegmentationDataset,
    find_layout,
    get_person_datasets,
    load_person_pairs,
    pair_by_stem,
)
from utils.data.person import SyntheticPeopleDataset
from utils.data.synthetic import make_synthetic_person_image

__all__ = [
    "MASK_KINDS", "DenoisingDataset", "InpaintingDataset", "PersonDataInfo", "PersonSegmentationDataset",
    "PhotoCrops", "SuperResolutionDataset", "SyntheticPeopleDataset", "downscale", "fetch_kaggle_dataset",
    "find_cached_dataset", "find_layout", "free_form_mask", "from_unit", "get_natural_images",
    "get_person_datasets", "load_person_pairs", "make_synthetic_person_image", "pair_by_stem",
    "random_mask", "rectangle_mask", "stroke_mask", "to_unit", "upscale",
]
