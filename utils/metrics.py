"""Evaluation metrics for segmentation and salient-object detection, computed on torch batches.

Every function takes `pred` and `target` batches of shape (N, C, H, W) (most also accept
(N, H, W) masks), scores each image on its own, and returns the mean over the batch as a
Python float. Pass `reduction="none"` to get the per-image scores as a tensor of shape (N,).

Averaging per-image scores (rather than pooling all pixels of the batch into one big image)
is what papers report, and it makes the result independent of the batch size.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "iou",
    "dice",
    "mae",
    "f_measure_curve",
    "max_f_measure",
    "psnr",
    "masked_psnr",
    "ssim",
]


# ---------------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------------
def _check_pair(pred: torch.Tensor, target: torch.Tensor, name: str) -> None:
    """Raise a ValueError unless `pred` and `target` are same-shaped (N, H, W) or (N, C, H, W) tensors."""
    if not isinstance(pred, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise ValueError(
            f"{name} expects torch tensors, got {type(pred).__name__} and {type(target).__name__}"
        )
    if pred.shape != target.shape:
        raise ValueError(
            f"{name}: pred and target must have the same shape, got pred {tuple(pred.shape)} "
            f"and target {tuple(target.shape)}"
        )
    if pred.dim() not in (3, 4):
        raise ValueError(
            f"{name} expects a batch of shape (N, H, W) or (N, C, H, W), got shape "
            f"{tuple(pred.shape)}; for one image use x.unsqueeze(0)"
        )


def _as_float(x: torch.Tensor) -> torch.Tensor:
    """Return `x` as float32, or float64 if it already is; bool/uint8/half are promoted."""
    # Summing 100k pixels in bf16/fp16 loses digits, so metrics never run in half precision.
    return x if x.dtype == torch.float64 else x.float()


def _reduce(per_image: torch.Tensor, reduction: str) -> float | torch.Tensor:
    """Turn per-image scores into the requested output: a float mean or the (N,) tensor."""
    # `reduction` was already validated by _check_reduction before any work was done.
    return per_image.mean().item() if reduction == "mean" else per_image


def _check_reduction(reduction: str) -> None:
    """Fail early (before any work) on a misspelt reduction."""
    if reduction not in ("mean", "none"):
        raise ValueError(f'reduction must be "mean" or "none", got {reduction!r}')


def _binarise_target(target: torch.Tensor) -> torch.Tensor:
    """Ground-truth masks as booleans: a pixel is foreground if its value is above 0.5."""
    # Masks saved as JPEG/PNG and resized have soft, anti-aliased edges; "> 0.5" treats a
    # pixel as foreground only if it is more object than background. Bool masks pass through.
    if target.dtype == torch.bool:
        return target
    return _as_float(target) > 0.5


# ---------------------------------------------------------------------------------------------
# Overlap metrics: IoU (Jaccard) and Dice (F1)
# ---------------------------------------------------------------------------------------------
def _overlap_sums(
    pred: torch.Tensor, target: torch.Tensor, threshold: float | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-image intersection, sum(pred) and sum(target), binarised or soft."""
    if threshold is None:
        # Soft version: probabilities are used as fractional memberships.
        p = _as_float(pred)
        t = _as_float(target)
    else:
        p = (_as_float(pred) >= threshold).float()
        t = _binarise_target(target).float()
    p = p.flatten(1)
    t = t.flatten(1)
    return (p * t).sum(dim=1), p.sum(dim=1), t.sum(dim=1)


def iou(
    pred: torch.Tensor,
    target: torch.Tensor,
    threshold: float | None = 0.5,
    eps: float = 1e-7,
    reduction: str = "mean",
) -> float | torch.Tensor:
    """Intersection over union |P∩T| / |P∪T| per image, averaged over the batch.

    `pred` holds probabilities; a pixel counts as foreground when `pred >= threshold`, and a
    target pixel when `target > 0.5`. With `threshold=None` the "soft IoU"
    sum(p*t) / (sum(p) + sum(t) - sum(p*t)) is computed on the raw probabilities instead.
    Soft IoU is a training signal, not an evaluation metric: an uncertain model that outputs
    0.5 everywhere is penalised even when its thresholded mask would be perfect.

    Convention: if both masks of an image are empty (union is 0) its IoU is 1.0 -- the
    model correctly predicted "nothing here". `eps` only guards the division; it never shifts
    a score, so a perfect non-empty prediction scores exactly 1.0.
    """
    _check_pair(pred, target, "iou")
    _check_reduction(reduction)
    intersection, pred_sum, target_sum = _overlap_sums(pred, target, threshold)
    union = pred_sum + target_sum - intersection
    per_image = intersection / union.clamp_min(eps)
    per_image = torch.where(union > 0, per_image, torch.ones_like(per_image))
    return _reduce(per_image, reduction)


def dice(
    pred: torch.Tensor,
    target: torch.Tensor,
    threshold: float | None = 0.5,
    eps: float = 1e-7,
    reduction: str = "mean",
) -> float | torch.Tensor:
    """Dice coefficient 2|P∩T| / (|P| + |T|) per image, averaged over the batch.

    Same conventions as `iou`: `pred >= threshold` and `target > 0.5` define the masks,
    `threshold=None` gives the soft Dice on raw probabilities, and an image where both masks
    are empty scores 1.0. For one image Dice = 2 IoU / (1 + IoU), so Dice >= IoU always.
    """
    _check_pair(pred, target, "dice")
    _check_reduction(reduction)
    intersection, pred_sum, target_sum = _overlap_sums(pred, target, threshold)
    total = pred_sum + target_sum
    per_image = 2 * intersection / total.clamp_min(eps)
    per_image = torch.where(total > 0, per_image, torch.ones_like(per_image))
    return _reduce(per_image, reduction)


# ---------------------------------------------------------------------------------------------
# Salient-object detection metrics: MAE and max F-measure
# ---------------------------------------------------------------------------------------------
def mae(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> float | torch.Tensor:
    """Mean absolute error between prediction and target, per image, averaged over the batch."""
    _check_pair(pred, target, "mae")
    _check_reduction(reduction)
    diff = (_as_float(pred) - _as_float(target)).abs()
    return _reduce(diff.flatten(1).mean(dim=1), reduction)


def _thresholds(num_thresholds: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The grid 0, 1/(K-1), ..., 1 used by the F-measure."""
    if num_thresholds < 2:
        raise ValueError(f"num_thresholds must be at least 2, got {num_thresholds}")
    # k / (K-1) with an exact integer numerator: unlike linspace this gives exactly the value an
    # 8-bit prediction k/255 has, so such predictions never land on the wrong side of a threshold.
    return torch.arange(num_thresholds, dtype=dtype, device=device) / (num_thresholds - 1)


def f_measure_curve(
    pred: torch.Tensor,
    target: torch.Tensor,
    beta2: float = 0.3,
    num_thresholds: int = 256,
    reduction: str = "mean",
) -> torch.Tensor:
    """F-measure at every threshold of a `num_thresholds`-level grid over [0, 1].

    Returns the batch-mean curve of shape (num_thresholds,), or with `reduction="none"` the
    per-image curves of shape (N, num_thresholds). Useful for a whole data set: add up the
    per-image curves batch by batch, divide by the number of images, then take the max.
    See `max_f_measure` for the definition and conventions.
    """
    _check_pair(pred, target, "f_measure_curve")
    _check_reduction(reduction)
    p = _as_float(pred).flatten(1)
    is_fg = _binarise_target(target).flatten(1)
    n_images = p.shape[0]
    thresholds = _thresholds(num_thresholds, p.dtype, p.device)

    # Instead of comparing every pixel with every threshold (N x K x H x W booleans), put each
    # pixel into a bucket once: bucket b = number of thresholds <= pixel value (0..K). A pixel
    # is predicted foreground at threshold k exactly when its bucket is > k.
    bucket = torch.bucketize(p, thresholds, right=True)
    # One histogram per image: offset each image's buckets so that a single bincount does all.
    n_buckets = num_thresholds + 1
    offsets = torch.arange(n_images, device=p.device).unsqueeze(1) * n_buckets
    flat = (bucket + offsets).flatten()
    hist_fg = torch.bincount(flat[is_fg.flatten()], minlength=n_images * n_buckets)
    hist_all = torch.bincount(flat, minlength=n_images * n_buckets)
    hist_fg = hist_fg.view(n_images, n_buckets).double()
    hist_all = hist_all.view(n_images, n_buckets).double()

    # Reverse cumulative sum: count of pixels whose bucket is >= j; drop bucket 0 so that
    # column k holds the count with bucket > k, i.e. the pixels with pred >= thresholds[k].
    true_pos = hist_fg.flip(1).cumsum(1).flip(1)[:, 1:]
    pred_pos = hist_all.flip(1).cumsum(1).flip(1)[:, 1:]
    actual_pos = hist_fg.sum(dim=1, keepdim=True)

    # Conventions for 0/0: no predicted foreground -> precision 0; empty target -> recall 0;
    # P = R = 0 -> F = 0. (Salient-object benchmarks have an object in every image.)
    precision = true_pos / pred_pos.clamp_min(1)
    recall = true_pos / actual_pos.clamp_min(1)
    numerator = (1 + beta2) * precision * recall
    denominator = beta2 * precision + recall
    f = numerator / denominator.clamp_min(1e-12)
    f = torch.where(denominator > 0, f, torch.zeros_like(f))
    f = f.to(p.dtype)
    return f.mean(dim=0) if reduction == "mean" else f


def max_f_measure(
    pred: torch.Tensor,
    target: torch.Tensor,
    beta2: float = 0.3,
    num_thresholds: int = 256,
    return_threshold: bool = False,
    reduction: str = "mean",
) -> float | torch.Tensor | tuple[float | torch.Tensor, float]:
    """Maximum F-measure over thresholds, as reported in salient-object papers (e.g. U2-Net).

    For each threshold t in {0, 1/255, ..., 1} (for the default 256 levels) a pixel is
    foreground when `pred >= t`; precision P and recall R are computed per image against
    `target > 0.5`, F = (1 + beta2) P R / (beta2 P + R) with beta2 = 0.3 (precision weighted
    more than recall), F is averaged over the images, and the best threshold is picked.

    Note the threshold is chosen for the whole batch at once, so the maximum over a data set
    is not the mean of per-batch maxima: use `f_measure_curve` to accumulate a data set.
    With `reduction="none"` the per-image F-measures at the batch's best threshold are
    returned (their mean is the max F). `return_threshold=True` also returns that threshold.
    """
    _check_reduction(reduction)
    curves = f_measure_curve(pred, target, beta2=beta2, num_thresholds=num_thresholds, reduction="none")
    mean_curve = curves.mean(dim=0)
    best = int(torch.argmax(mean_curve).item())
    best_threshold = best / (num_thresholds - 1)
    result = _reduce(curves[:, best], reduction)
    if return_threshold:
        return result, best_threshold
    return result


# ---------------------------------------------------------------------------------------------
# Image-quality metrics: PSNR and SSIM (for restoration / denoising experiments)
# ---------------------------------------------------------------------------------------------
def psnr(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float = 1.0,
    reduction: str = "mean",
) -> float | torch.Tensor:
    """Peak signal-to-noise ratio 10 log10(data_range² / MSE) in dB, per image, averaged.

    Matches `skimage.metrics.peak_signal_noise_ratio` image by image. An image identical to
    its target has MSE 0 and PSNR +inf (as in scikit-image, but without a warning); the batch
    mean is then +inf too, so use `reduction="none"` if such images can occur.
    """
    _check_pair(pred, target, "psnr")
    _check_reduction(reduction)
    diff = _as_float(pred) - _as_float(target)
    mse = diff.pow(2).flatten(1).mean(dim=1)
    # data_range²/0 = inf and log10(inf) = inf, so no special case (and no NaN) is needed.
    per_image = 10 * torch.log10(data_range**2 / mse)
    return _reduce(per_image, reduction)


def masked_psnr(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    data_range: float = 1.0,
    reduction: str = "mean",
) -> float | torch.Tensor:
    """PSNR in dB over the pixels where `mask` is on (all channels), per image; for scoring inpainting.

    `mask` is (N, 1, H, W) (or (N, C, H, W)), non-zero inside the holes. An image without any masked
    pixel has nothing to score: its per-image value is NaN and the mean skips it (NaN if no image has holes).
    """
    _check_pair(pred, target, "masked_psnr")
    _check_reduction(reduction)
    if mask.dim() != pred.dim() or mask.shape[0] != pred.shape[0] or mask.shape[-2:] != pred.shape[-2:]:
        raise ValueError(f"masked_psnr: mask {tuple(mask.shape)} does not fit pred {tuple(pred.shape)}")
    holes = mask.bool().expand_as(pred).flatten(1)
    squared = (_as_float(pred) - _as_float(target)).pow(2).flatten(1)
    count = holes.sum(dim=1)
    mse = (squared * holes).sum(dim=1) / count.clamp_min(1)
    per_image = 10 * torch.log10(data_range**2 / mse)
    per_image = torch.where(count > 0, per_image, torch.full_like(per_image, float("nan")))
    if reduction == "none":
        return per_image
    scored = per_image[count > 0]
    return scored.mean().item() if scored.numel() else float("nan")


def _gaussian_window(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """1-D Gaussian weights of length `size`, summing to 1."""
    x = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    w = torch.exp(-0.5 * (x / sigma) ** 2)
    return (w / w.sum()).to(dtype)


def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float = 1.0,
    win_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    reduction: str = "mean",
) -> float | torch.Tensor:
    """Structural similarity (Wang et al. 2004) per image, averaged over channels then batch.

    Local means, variances and covariance are taken under an 11x11 Gaussian window
    (sigma 1.5), with C1 = (k1 data_range)², C2 = (k2 data_range)². Like scikit-image, the
    SSIM map is only averaged where the window lies fully inside the image (a border of
    (win_size - 1) // 2 pixels is dropped), so the result matches
    `structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=..., channel_axis=...)`.
    """
    _check_pair(pred, target, "ssim")
    _check_reduction(reduction)
    if win_size % 2 != 1:
        raise ValueError(f"win_size must be odd, got {win_size}")
    x = _as_float(pred)
    y = _as_float(target).to(x.dtype)
    if x.dim() == 3:
        x, y = x.unsqueeze(1), y.unsqueeze(1)
    n_images, channels, height, width = x.shape
    if height < win_size or width < win_size:
        raise ValueError(
            f"ssim needs images at least {win_size}x{win_size}, got {height}x{width} "
            f"(shape {tuple(pred.shape)})"
        )

    # The 2-D Gaussian is separable, so two 1-D convolutions (rows, then columns) do the job
    # with 2*11 instead of 121 multiplications per pixel. groups=channels filters every
    # channel on its own. No padding: skimage crops the border where its padding would
    # matter, which is exactly the "valid" part of the convolution.
    w = _gaussian_window(win_size, sigma, x.dtype, x.device)
    w_rows = w.view(1, 1, 1, win_size).repeat(channels, 1, 1, 1)
    w_cols = w.view(1, 1, win_size, 1).repeat(channels, 1, 1, 1)

    def local_mean(img: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(img, w_rows, groups=channels), w_cols, groups=channels)

    # Filter all five quantities in one call by stacking them along the batch dimension.
    stacked = torch.cat([x, y, x * x, y * y, x * y], dim=0)
    mu_x, mu_y, mean_xx, mean_yy, mean_xy = local_mean(stacked).split(n_images, dim=0)
    # Population (biased) statistics, i.e. use_sample_covariance=False in skimage.
    var_x = mean_xx - mu_x * mu_x
    var_y = mean_yy - mu_y * mu_y
    cov_xy = mean_xy - mu_x * mu_y

    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / (
        (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    )
    # Mean over the map of each channel, then over channels (all maps have the same size, so
    # one mean over C, H, W does both).
    per_image = ssim_map.flatten(1).mean(dim=1)
    return _reduce(per_image, reduction)
