"""Classical baselines: interpolation, TV denoising, biharmonic and diffusion inpainting."""
import pytest
import torch
import torch.nn.functional as F

from utils.baselines import bicubic, biharmonic_fill, diffusion_fill, tv_denoise
from utils.metrics import masked_psnr, psnr


def smooth_images(n=2, size=32):
    """Smooth colour ramps and a blob, in [-1, 1]: what smooth fills should reconstruct well."""
    y, x = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    channels = [0.6 * x, 0.5 * y, 0.8 * torch.exp(-(x**2 + y**2) * 2) - 0.4]
    return torch.stack(channels)[None].repeat(n, 1, 1, 1)


def box_mask(n=2, size=32):
    mask = torch.zeros(n, 1, size, size)
    mask[:, :, 10:20, 8:22] = 1
    return mask


def test_bicubic_enlarges_and_keeps_constants():
    small = torch.full((1, 3, 8, 8), 0.3)
    big = bicubic(small, 4)
    assert big.shape == (1, 3, 32, 32) and torch.allclose(big, torch.full_like(big, 0.3), atol=1e-6)


@pytest.mark.parametrize("fill", [diffusion_fill, biharmonic_fill])
def test_fills_keep_known_pixels_and_beat_white_holes(fill):
    images, mask = smooth_images(), box_mask()
    painted = torch.where(mask.bool(), torch.ones_like(images), images)
    filled = fill(painted, mask)
    assert filled.shape == images.shape
    assert torch.equal(filled[~mask.bool().expand_as(images)], images[~mask.bool().expand_as(images)])
    assert masked_psnr(filled, images, mask, data_range=2.0) > masked_psnr(painted, images, mask, data_range=2.0) + 15


def test_diffusion_fill_is_differentiable_and_fills_large_holes():
    images = smooth_images(1, 37)  # odd size: the pyramid must handle it
    mask = torch.zeros(1, 1, 37, 37)
    mask[..., 3:34, 3:34] = 1
    painted = (images * (1 - mask)).requires_grad_(True)
    filled = diffusion_fill(painted, mask)
    assert torch.isfinite(filled).all()
    filled.sum().backward()
    assert painted.grad is not None and painted.grad.abs().sum() > 0


def test_fills_reject_mismatched_masks():
    with pytest.raises(ValueError, match="mask"):
        diffusion_fill(smooth_images(), torch.zeros(2, 3, 32, 32))


def test_tv_denoise_removes_noise_and_keeps_the_range():
    torch.manual_seed(0)
    clean = smooth_images()
    noisy = (clean + 0.2 * torch.randn_like(clean)).clamp(-1, 1)
    denoised = tv_denoise(noisy, weight=0.1)
    assert denoised.shape == clean.shape and denoised.dtype == torch.float32
    assert psnr(denoised, clean, data_range=2.0) > psnr(noisy, clean, data_range=2.0) + 3
    # Same result on the [0, 1] scale.
    unit = tv_denoise((noisy + 1) / 2, weight=0.1, value_range=(0, 1))
    assert torch.allclose(unit * 2 - 1, denoised, atol=1e-5)


def test_baselines_reject_non_batches():
    with pytest.raises(ValueError, match="batch"):
        bicubic(torch.zeros(3, 8, 8), 2)
    with pytest.raises(ValueError, match="batch"):
        tv_denoise(torch.zeros(3, 8, 8))
