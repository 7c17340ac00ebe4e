"""Tests for utils.metrics against scikit-image and plain-numpy reference implementations."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage import data, filters
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from utils.metrics import dice, f_measure_curve, iou, mae, masked_psnr, max_f_measure, psnr, ssim

# Tolerances for float32 inputs (what a model produces); float64 inputs must agree to
# rounding error, which FLOAT64_TOL checks (achieved: ~1e-15 for SSIM, 0 for PSNR).
PSNR_TOL_DB = 1e-3
SSIM_TOL = 1e-4
FLOAT64_TOL = 1e-9


# ---------------------------------------------------------------------------------------------
# Real test images
# ---------------------------------------------------------------------------------------------
def _colour_images() -> list[np.ndarray]:
    """Three colour photos from skimage.data, halved in size for speed, as float64 in [0, 1]."""
    return [getattr(data, name)()[::2, ::2] / 255.0 for name in ("astronaut", "coffee", "chelsea")]


def _degrade(image: np.ndarray, seed: int) -> np.ndarray:
    """Blur then add Gaussian noise, clipped to [0, 1], so the pair is similar but not equal."""
    rng = np.random.default_rng(seed)
    channel_axis = -1 if image.ndim == 3 else None
    blurred = filters.gaussian(image, sigma=1.0, channel_axis=channel_axis)
    return np.clip(blurred + rng.normal(0, 0.05, image.shape), 0, 1)


def _to_batch(image: np.ndarray) -> torch.Tensor:
    """(H, W, C) or (H, W) numpy image -> (1, C, H, W) torch tensor, keeping the dtype."""
    tensor = torch.from_numpy(np.ascontiguousarray(image))
    if tensor.dim() == 2:
        tensor = tensor.unsqueeze(-1)
    return tensor.permute(2, 0, 1).unsqueeze(0)


def _horse_mask(size: int = 2) -> np.ndarray:
    """The horse silhouette from skimage.data as a bool mask, horse = True, downscaled by `size`."""
    return ~data.horse()[::size, ::size]


def _horse_prediction(seed: int) -> np.ndarray:
    """A realistic 'network output': the blurred, shifted horse mask plus noise, in [0, 1]."""
    rng = np.random.default_rng(seed)
    mask = _horse_mask().astype(np.float64)
    shifted = np.roll(mask, shift=(seed, -2 * seed), axis=(0, 1))
    blurred = ndimage.gaussian_filter(shifted, sigma=2.0)
    return np.clip(blurred + rng.normal(0, 0.15, mask.shape), 0, 1)


# ---------------------------------------------------------------------------------------------
# PSNR and SSIM against scikit-image
# ---------------------------------------------------------------------------------------------
def test_psnr_matches_skimage_on_real_images() -> None:
    for seed, image in enumerate(_colour_images()):
        noisy = _degrade(image, seed)
        expected = peak_signal_noise_ratio(image, noisy, data_range=1.0)
        got = psnr(_to_batch(noisy), _to_batch(image))
        assert abs(got - expected) < FLOAT64_TOL
        # float32 inputs (what a model produces) must stay within the same tolerance
        got32 = psnr(_to_batch(noisy).float(), _to_batch(image).float())
        assert abs(got32 - expected) < PSNR_TOL_DB


def test_psnr_batch_is_mean_of_per_image_values() -> None:
    clean = _to_batch(_horse_mask().astype(np.float64))
    batch_clean = clean.repeat(3, 1, 1, 1)
    noisy = [_degrade(clean[0, 0].numpy(), seed) for seed in range(3)]
    batch_noisy = torch.cat([_to_batch(n) for n in noisy])
    expected = [peak_signal_noise_ratio(clean[0, 0].numpy(), n, data_range=1.0) for n in noisy]
    per_image = psnr(batch_noisy, batch_clean, reduction="none")
    assert per_image.shape == (3,)
    np.testing.assert_allclose(per_image.numpy(), expected, atol=PSNR_TOL_DB)
    assert psnr(batch_noisy, batch_clean) == pytest.approx(float(np.mean(expected)), abs=PSNR_TOL_DB)


def test_psnr_data_range_255() -> None:
    camera = data.camera()[::4, ::4].astype(np.float64)
    noisy = np.clip(camera + np.random.default_rng(0).normal(0, 10, camera.shape), 0, 255)
    expected = peak_signal_noise_ratio(camera, noisy, data_range=255)
    got = psnr(_to_batch(noisy), _to_batch(camera), data_range=255)
    assert abs(got - expected) < FLOAT64_TOL


def test_psnr_identical_images_give_inf_not_nan() -> None:
    image = _to_batch(_colour_images()[0])
    other = _to_batch(_degrade(_colour_images()[0], 0))
    per_image = psnr(torch.cat([image, other]), torch.cat([image, image]), reduction="none")
    assert math.isinf(per_image[0].item()) and per_image[0] > 0
    assert math.isfinite(per_image[1].item())
    assert psnr(image, image) == math.inf


def test_ssim_matches_skimage_on_colour_images() -> None:
    for seed, image in enumerate(_colour_images()):
        degraded = _degrade(image, seed)
        expected = structural_similarity(
            image, degraded, gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False, data_range=1.0, channel_axis=-1,
        )
        got = ssim(_to_batch(degraded), _to_batch(image))
        assert abs(got - expected) < FLOAT64_TOL
        got32 = ssim(_to_batch(degraded).float(), _to_batch(image).float())
        assert abs(got32 - expected) < SSIM_TOL


def test_ssim_matches_skimage_on_grayscale_batch_without_channel_dim() -> None:
    camera = data.camera()[::2, ::2] / 255.0
    degraded = [_degrade(camera, seed) for seed in range(3)]
    expected = [
        structural_similarity(camera, d, gaussian_weights=True, sigma=1.5,
                              use_sample_covariance=False, data_range=1.0)
        for d in degraded
    ]
    # (N, H, W) batch: no channel dimension
    pred = torch.from_numpy(np.stack(degraded))
    target = torch.from_numpy(camera).expand_as(pred)
    per_image = ssim(pred, target, reduction="none")
    np.testing.assert_allclose(per_image.numpy(), expected, atol=FLOAT64_TOL)
    assert ssim(pred, target) == pytest.approx(float(np.mean(expected)), abs=FLOAT64_TOL)


def test_ssim_data_range_255_and_identical_images() -> None:
    chelsea = data.chelsea()[::2, ::2].astype(np.float64)
    noisy = np.clip(chelsea + np.random.default_rng(1).normal(0, 15, chelsea.shape), 0, 255)
    expected = structural_similarity(
        chelsea, noisy, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, data_range=255, channel_axis=-1,
    )
    got = ssim(_to_batch(noisy), _to_batch(chelsea), data_range=255)
    assert abs(got - expected) < FLOAT64_TOL
    assert ssim(_to_batch(chelsea), _to_batch(chelsea), data_range=255) == pytest.approx(1.0, abs=1e-12)


def test_ssim_rejects_images_smaller_than_window() -> None:
    with pytest.raises(ValueError, match="11x11"):
        ssim(torch.rand(1, 1, 8, 32), torch.rand(1, 1, 8, 32))


# ---------------------------------------------------------------------------------------------
# IoU and Dice
# ---------------------------------------------------------------------------------------------
def _numpy_iou_dice(pred_mask: np.ndarray, target_mask: np.ndarray) -> tuple[float, float]:
    """Reference IoU and Dice from numpy logical operations on two bool masks."""
    intersection = np.logical_and(pred_mask, target_mask).sum()
    union = np.logical_or(pred_mask, target_mask).sum()
    total = pred_mask.sum() + target_mask.sum()
    return intersection / union, 2 * intersection / total


def test_iou_and_dice_hand_computed_case() -> None:
    pred = torch.tensor([[[1.0, 1.0], [0.0, 0.0]]])  # (N, H, W)
    target = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])
    # intersection 1, union 3, |P| + |T| = 4
    assert iou(pred, target) == pytest.approx(1 / 3)
    assert dice(pred, target) == pytest.approx(2 / 4)


def test_iou_and_dice_match_numpy_on_horse_silhouette() -> None:
    target_mask = _horse_mask()
    predictions = [_horse_prediction(seed) for seed in range(1, 5)]
    expected = [_numpy_iou_dice(p >= 0.5, target_mask) for p in predictions]

    pred = torch.from_numpy(np.stack(predictions)).unsqueeze(1)  # (4, 1, H, W)
    target = torch.from_numpy(target_mask).expand_as(pred)  # bool target is accepted
    np.testing.assert_allclose(iou(pred, target, reduction="none").numpy(), [e[0] for e in expected], rtol=1e-6)
    np.testing.assert_allclose(dice(pred, target, reduction="none").numpy(), [e[1] for e in expected], rtol=1e-6)
    assert iou(pred, target) == pytest.approx(np.mean([e[0] for e in expected]), rel=1e-6)
    # float32 predictions and a float {0, 1} target give the same numbers
    assert iou(pred.float(), target.float()) == pytest.approx(iou(pred, target), rel=1e-6)


def test_iou_dice_identity_for_each_image() -> None:
    pred = torch.from_numpy(np.stack([_horse_prediction(s) for s in range(1, 4)]))
    target = torch.from_numpy(_horse_mask()).expand_as(pred)
    j = iou(pred, target, reduction="none")
    d = dice(pred, target, reduction="none")
    torch.testing.assert_close(d, 2 * j / (1 + j))


def test_threshold_changes_the_result() -> None:
    pred = torch.from_numpy(_horse_prediction(1)).unsqueeze(0)
    target = torch.from_numpy(_horse_mask()).unsqueeze(0)
    expected_low, _ = _numpy_iou_dice(pred[0].numpy() >= 0.3, target[0].numpy())
    assert iou(pred, target, threshold=0.3) == pytest.approx(expected_low, rel=1e-6)
    assert iou(pred, target, threshold=0.3) != pytest.approx(iou(pred, target, threshold=0.7))


def test_empty_masks() -> None:
    empty = torch.zeros(1, 1, 16, 16)
    full = torch.ones(1, 1, 16, 16)
    # both empty: defined as a perfect score
    assert iou(empty, empty) == 1.0 and dice(empty, empty) == 1.0
    assert iou(empty, empty, threshold=None) == 1.0 and dice(empty, empty, threshold=None) == 1.0
    # only one of them empty: no overlap at all
    assert iou(full, empty) == 0.0 and dice(full, empty) == 0.0
    assert iou(empty, full) == 0.0 and dice(empty, full) == 0.0
    # an empty image in a batch counts as 1.0 in the mean
    pred = torch.cat([empty, full])
    target = torch.cat([empty, empty])
    assert iou(pred, target, reduction="none").tolist() == [1.0, 0.0]
    assert iou(pred, target) == 0.5


def test_soft_and_thresholded_iou_differ() -> None:
    target = torch.from_numpy(_horse_mask()).float()[None, None]
    # an under-confident but perfectly ranked model: 0.6 on the horse, 0.4 elsewhere
    pred = 0.4 + 0.2 * target
    assert iou(pred, target) == 1.0
    assert dice(pred, target) == 1.0
    fg = target.sum().item()
    n_pixels = target.numel()
    intersection = 0.6 * fg
    soft_union = (0.6 * fg + 0.4 * (n_pixels - fg)) + fg - intersection
    assert iou(pred, target, threshold=None) == pytest.approx(intersection / soft_union, rel=1e-5)
    assert iou(pred, target, threshold=None) < 0.6
    assert dice(pred, target, threshold=None) < 0.8


def test_perfect_prediction_scores_exactly_one() -> None:
    target = torch.from_numpy(_horse_mask()).float()[None, None]
    assert iou(target, target) == 1.0
    assert dice(target, target) == 1.0
    assert iou(target, target, threshold=None) == 1.0


# ---------------------------------------------------------------------------------------------
# MAE
# ---------------------------------------------------------------------------------------------
def test_mae() -> None:
    pred = torch.tensor([[[0.0, 0.5], [1.0, 1.0]], [[0.2, 0.2], [0.2, 0.2]]])
    target = torch.tensor([[[0.0, 1.0], [1.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    # image 0: (0 + 0.5 + 0 + 1) / 4; image 1: 0.2
    torch.testing.assert_close(mae(pred, target, reduction="none"), torch.tensor([0.375, 0.2]))
    assert mae(pred, target) == pytest.approx(0.2875)


def test_mae_on_horse_matches_numpy() -> None:
    predictions = np.stack([_horse_prediction(s) for s in range(1, 4)])
    target = _horse_mask().astype(np.float64)
    expected = np.abs(predictions - target).mean(axis=(1, 2))
    got = mae(torch.from_numpy(predictions), torch.from_numpy(target).expand(3, -1, -1), reduction="none")
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# max F-measure against a slow numpy loop
# ---------------------------------------------------------------------------------------------
def _reference_f_curve(pred: np.ndarray, target: np.ndarray, beta2: float, num_thresholds: int) -> np.ndarray:
    """Plain loop over images and thresholds: mean F-measure at each threshold."""
    curve = np.zeros(num_thresholds)
    for k in range(num_thresholds):
        threshold = k / (num_thresholds - 1)
        scores = []
        for p, t in zip(pred, target):
            predicted = p >= threshold
            actual = t > 0.5
            true_pos = np.logical_and(predicted, actual).sum()
            precision = true_pos / predicted.sum() if predicted.sum() > 0 else 0.0
            recall = true_pos / actual.sum() if actual.sum() > 0 else 0.0
            denominator = beta2 * precision + recall
            scores.append((1 + beta2) * precision * recall / denominator if denominator > 0 else 0.0)
        curve[k] = np.mean(scores)
    return curve


def test_max_f_measure_matches_numpy_loop() -> None:
    pred = np.stack([_horse_prediction(s) for s in range(0, 4)])
    target = np.broadcast_to(_horse_mask(), pred.shape)
    expected_curve = _reference_f_curve(pred, target, beta2=0.3, num_thresholds=256)

    pred_t = torch.from_numpy(pred).unsqueeze(1)
    target_t = torch.from_numpy(np.ascontiguousarray(target)).unsqueeze(1).float()
    np.testing.assert_allclose(f_measure_curve(pred_t, target_t).numpy(), expected_curve, atol=1e-12)

    value, threshold = max_f_measure(pred_t, target_t, return_threshold=True)
    assert value == pytest.approx(expected_curve.max(), abs=1e-12)
    assert threshold == pytest.approx(np.argmax(expected_curve) / 255)
    # float32 predictions (what a model gives) agree closely as well
    assert max_f_measure(pred_t.float(), target_t) == pytest.approx(expected_curve.max(), abs=1e-4)


def test_max_f_measure_with_8bit_predictions_on_threshold_boundaries() -> None:
    # Predictions saved as 8-bit PNGs are exactly k/255, i.e. exactly on the thresholds.
    rng = np.random.default_rng(0)
    target = np.stack([_horse_mask()] * 3)
    pred = np.stack([np.round(_horse_prediction(s) * 255) / 255 for s in range(3)])
    pred[0, :5, :5] = 1.0  # make sure the top threshold is used too
    expected = _reference_f_curve(pred, target, beta2=0.3, num_thresholds=256)
    got = f_measure_curve(torch.from_numpy(pred), torch.from_numpy(target))
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-12)
    # a coarser grid and another beta
    pred_coarse = rng.random(pred.shape)
    expected = _reference_f_curve(pred_coarse, target, beta2=1.0, num_thresholds=11)
    got = f_measure_curve(torch.from_numpy(pred_coarse), torch.from_numpy(target), beta2=1.0, num_thresholds=11)
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-12)


def test_max_f_measure_per_image_values_and_perfect_prediction() -> None:
    pred = torch.from_numpy(np.stack([_horse_prediction(s) for s in range(3)]))
    target = torch.from_numpy(_horse_mask()).expand_as(pred)
    per_image = max_f_measure(pred, target, reduction="none")
    assert per_image.shape == (3,)
    assert per_image.mean().item() == pytest.approx(max_f_measure(pred, target))

    perfect = target.double()
    value, threshold = max_f_measure(perfect, target, return_threshold=True)
    assert value == 1.0
    assert 0 < threshold <= 1
    # empty target: recall is undefined, counted as F = 0
    assert max_f_measure(pred[:1], torch.zeros_like(pred[:1])) == 0.0


def test_max_f_measure_is_fast_on_a_batch() -> None:
    generator = torch.Generator().manual_seed(0)
    pred = torch.rand(8, 1, 320, 320, generator=generator)
    target = torch.rand(8, 1, 320, 320, generator=generator) > 0.7
    value = max_f_measure(pred, target)  # timed implicitly by the test suite's 30 s budget
    assert 0.0 < value <= 1.0


# ---------------------------------------------------------------------------------------------
# Input handling
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("metric", [iou, dice, mae, max_f_measure, psnr, ssim])
def test_shape_mismatch_raises_value_error_naming_both_shapes(metric) -> None:
    pred = torch.rand(2, 1, 32, 32)
    target = torch.rand(2, 1, 32, 31)
    with pytest.raises(ValueError, match=r"\(2, 1, 32, 32\).*\(2, 1, 32, 31\)"):
        metric(pred, target)


@pytest.mark.parametrize("metric", [iou, dice, mae, max_f_measure, psnr, ssim])
def test_bad_reduction_and_bad_rank_raise(metric) -> None:
    x = torch.rand(2, 1, 16, 16)
    with pytest.raises(ValueError, match="reduction"):
        metric(x, x, reduction="sum")
    with pytest.raises(ValueError, match="shape"):
        metric(x[0, 0], x[0, 0])


@pytest.mark.parametrize("metric", [iou, dice, mae, max_f_measure, psnr, ssim])
def test_half_precision_inputs_are_accepted(metric) -> None:
    pred = torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    target = (pred + 0.1 * torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    reference = metric(pred, target)
    got = metric(pred.bfloat16(), target.bfloat16())
    assert isinstance(got, float)
    assert got == pytest.approx(reference, abs=0.05)


# ---------------------------------------------------------------------------------------------
# masked_psnr
# ---------------------------------------------------------------------------------------------
def test_masked_psnr_counts_only_the_holes():
    target = torch.zeros(2, 3, 4, 4)
    mask = torch.zeros(2, 1, 4, 4)
    mask[:, :, :2] = 1
    pred = target.clone()
    pred[:, :, :2] = 0.2  # MSE 0.04 in the holes: 10 log10(4 / 0.04) = 20 dB with data_range 2
    pred[:, :, 2:] = 5.0  # outside the holes: must not count
    assert masked_psnr(pred, target, mask, data_range=2.0) == pytest.approx(20.0, abs=1e-4)
    pred[1, :, :2] = 0.02
    assert masked_psnr(pred, target, mask, data_range=2.0, reduction="none").tolist() == pytest.approx([20.0, 40.0], abs=1e-4)


def test_masked_psnr_with_a_full_mask_is_plain_psnr():
    generator = torch.Generator().manual_seed(0)
    pred, target = torch.rand(3, 3, 6, 6, generator=generator), torch.rand(3, 3, 6, 6, generator=generator)
    assert masked_psnr(pred, target, torch.ones(3, 1, 6, 6)) == pytest.approx(psnr(pred, target), abs=1e-5)


def test_masked_psnr_skips_images_without_holes():
    pred, target = torch.full((2, 3, 4, 4), 0.1), torch.zeros(2, 3, 4, 4)
    mask = torch.zeros(2, 1, 4, 4)
    mask[0, :, 1, 1] = 1
    per_image = masked_psnr(pred, target, mask, reduction="none")
    assert per_image[0].item() == pytest.approx(20.0, abs=1e-4) and torch.isnan(per_image[1])
    assert masked_psnr(pred, target, mask) == pytest.approx(20.0, abs=1e-4)
    assert math.isnan(masked_psnr(pred, target, torch.zeros(2, 1, 4, 4)))
    with pytest.raises(ValueError, match="mask"):
        masked_psnr(pred, target, torch.ones(2, 1, 3, 3))
