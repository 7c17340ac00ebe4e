"""Mixed precision and memory layout per device (utils.train.devices), on simulated GPUs."""
import pytest
import torch

from utils.train.devices import autocast_dtype


@pytest.mark.parametrize("capability, expected", [
    ((7, 5), torch.float16),   # T4 (Colab's free GPU): bf16 only emulated, although is_bf16_supported() says True
    ((7, 0), torch.float16),   # V100
    ((6, 1), torch.float16),   # GTX 10xx laptops
    ((8, 0), torch.bfloat16),  # A100
    ((8, 6), torch.bfloat16),  # RTX 30xx
    ((9, 0), torch.bfloat16),  # H100
])
def test_bf16_only_where_the_gpu_runs_it_natively(monkeypatch, capability, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert autocast_dtype(torch.device("cuda")) is expected
    assert autocast_dtype(torch.device("cuda", 0)) is expected


def test_no_autocast_on_the_cpu():
    assert autocast_dtype(torch.device("cpu")) is None


def test_fit_uses_loss_scaling_exactly_for_fp16(monkeypatch):
    """fit() builds its GradScaler from the chosen dtype: enabled for fp16 (T4), off for bf16 and fp32."""
    from utils.train import loop

    seen = []

    class RecordingScaler(torch.amp.GradScaler):
        def __init__(self, device="cuda", enabled=True, **kwargs):
            seen.append(enabled)
            super().__init__("cpu", enabled=False)

    monkeypatch.setattr(loop.torch.amp, "GradScaler", RecordingScaler)
    monkeypatch.setattr(loop, "autocast_dtype", lambda device, cpu=False: torch.float16)
    monkeypatch.setattr(loop, "autocast_context", lambda device, dtype: torch.autocast("cpu", enabled=False))
    model = torch.nn.Conv2d(1, 1, 3, padding=1)
    batch = [(torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8))]
    loop.fit(model, batch, torch.nn.functional.mse_loss, steps=1, device=torch.device("cpu"), progress=False)
    monkeypatch.setattr(loop, "autocast_dtype", lambda device, cpu=False: torch.bfloat16)
    loop.fit(model, batch, torch.nn.functional.mse_loss, steps=1, device=torch.device("cpu"), progress=False)
    assert seen == [True, False]
