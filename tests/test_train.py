"""The training loop, schedules, device switches and checkpoints (utils.train)."""
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from utils.config import seed_everything
from utils.models import UNet
from utils.train import (
    channels_last_default, cosine_schedule, evaluate, fit, load_checkpoint, main_output, predict, save_checkpoint,
)


def make_denoising_loaders(n=32, size=16):
    torch.manual_seed(0)
    clean = torch.rand(n, 1, size, size)
    noisy = clean + 0.1 * torch.randn_like(clean)
    return DataLoader(TensorDataset(noisy, clean), batch_size=8, shuffle=True), DataLoader(TensorDataset(noisy, clean), batch_size=8)


def l1(output, target):
    return (main_output(output) - target).abs().mean()


def test_fit_reduces_the_loss_and_records_history():
    seed_everything(0)
    train, val = make_denoising_loaders()
    model = UNet(1, 1, base_channels=8, depth=2, final_activation="sigmoid")
    mae = lambda p, t: (p - t).abs().mean().item()
    before = evaluate(model, val, {"mae": mae})["mae"]
    history = fit(model, train, l1, steps=40, lr=3e-3, val_loader=val, metrics={"mae": mae}, eval_every=20,
                  device=torch.device("cpu"), progress=False)
    assert history.train_steps == list(range(1, 41))
    assert history.val_steps == [20, 40]
    assert history.last("mae") < before
    assert history.seconds > 0
    assert set(history.val) == {"mae", "loss"}


def test_fit_rejects_zero_steps():
    train, _ = make_denoising_loaders()
    with pytest.raises(ValueError):
        fit(UNet(1, 1, base_channels=4, depth=1), train, l1, steps=0, progress=False)


def test_predict_returns_all_columns():
    _, val = make_denoising_loaders(n=10)
    inputs, predictions, targets = predict(UNet(1, 1, base_channels=4, depth=1), val, torch.device("cpu"))
    assert inputs.shape == predictions.shape == targets.shape == (10, 1, 16, 16)


def test_checkpoint_round_trip(tmp_path):
    seed_everything(0)
    model = UNet(3, 1, base_channels=4, depth=2)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.rand(2, 3, 16, 16)).mean().backward()
    optimizer.step()
    path = save_checkpoint(tmp_path / "run" / "model.pt", model, optimizer, step=5)
    assert not list(path.parent.glob("*.tmp"))
    restored = UNet(3, 1, base_channels=4, depth=2)
    restored_optimizer = torch.optim.Adam(restored.parameters())
    extra = load_checkpoint(path, restored, restored_optimizer)
    assert extra == {"step": 5}
    for (name, a), b in zip(model.state_dict().items(), restored.state_dict().values()):
        assert torch.equal(a, b), name
    assert restored_optimizer.state_dict()["state"].keys() == optimizer.state_dict()["state"].keys()


def test_load_checkpoint_errors(tmp_path):
    model = UNet(3, 1, base_channels=4, depth=1)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt", model)
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="save_checkpoint"):
        load_checkpoint(tmp_path / "other.pt", model)


def test_cosine_schedule_decays_to_zero_over_the_given_steps():
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.5)
    schedule = cosine_schedule(optimizer, steps=10)
    rates = []
    for _ in range(10):
        model(torch.ones(1, 2)).sum().backward()
        optimizer.step()
        schedule.step()
        rates.append(optimizer.param_groups[0]["lr"])
    assert rates[4] == pytest.approx(0.25)  # half-way down the cosine
    assert rates[-1] == pytest.approx(0.0, abs=1e-12)
    assert all(a > b for a, b in zip(rates, rates[1:]))
    with pytest.raises(ValueError):
        cosine_schedule(optimizer, steps=0)


def test_cosine_schedule_warms_up_linearly():
    optimizer = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=1.0)
    schedule = cosine_schedule(optimizer, steps=10, warmup=4)
    rates = [optimizer.param_groups[0]["lr"]]
    for _ in range(5):
        optimizer.step()
        schedule.step()
        rates.append(optimizer.param_groups[0]["lr"])
    assert rates[:5] == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0])
    with pytest.raises(ValueError):
        cosine_schedule(optimizer, steps=10, warmup=10)


def test_fit_steps_the_scheduler_once_per_step():
    train, _ = make_denoising_loaders()
    model = UNet(1, 1, base_channels=4, depth=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    schedule = cosine_schedule(optimizer, steps=6)
    fit(model, train, l1, steps=6, optimizer=optimizer, scheduler=schedule, device=torch.device("cpu"), progress=False)
    assert schedule.last_epoch == 6
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def _a_3x3_kernel(model):
    # A kernel whose two layouts differ in memory (1x1 kernels and single channels look the same in both).
    return next(p for p in model.parameters() if p.dim() == 4 and p.shape[-1] == 3 and p.shape[1] > 1)


def test_channels_last_is_a_separate_switch_on_by_default_on_the_cpu():
    assert channels_last_default(torch.device("cpu")) and channels_last_default(torch.device("cuda"))
    train, _ = make_denoising_loaders()
    cpu = torch.device("cpu")
    model = UNet(1, 1, base_channels=4, depth=1)
    fit(model, train, l1, steps=1, device=cpu, progress=False)
    weight = _a_3x3_kernel(model)
    assert weight.is_contiguous(memory_format=torch.channels_last)
    plain = UNet(1, 1, base_channels=4, depth=1)
    fit(plain, train, l1, steps=1, device=cpu, channels_last=False, amp=True, progress=False)
    weight = _a_3x3_kernel(plain)
    assert weight.is_contiguous() and not weight.is_contiguous(memory_format=torch.channels_last)


def test_channels_last_training_matches_the_plain_layout():
    """Same seed, same batches: the memory layout changes the speed, not what is learned (up to float rounding)."""
    results = []
    for channels_last in (False, True):
        seed_everything(0)
        train, _ = make_denoising_loaders()
        model = UNet(1, 1, base_channels=4, depth=2)
        seed_everything(1)
        history = fit(model, train, l1, steps=5, device=torch.device("cpu"), channels_last=channels_last, progress=False)
        results.append(history.train_loss)
    assert results[0] == pytest.approx(results[1], rel=1e-4)


def test_predict_limit_and_plain_lists_of_batches():
    """predict(limit=) stops after that many images (pictures for a figure); loaders without a dataset work too."""
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    x, y = torch.rand(10, 1, 8, 8), torch.rand(10, 1, 8, 8)
    model = torch.nn.Conv2d(1, 1, 3, padding=1)
    loader = DataLoader(TensorDataset(x, y), batch_size=4)
    inputs, predictions, targets = predict(model, loader, torch.device("cpu"))
    assert torch.equal(inputs, x) and torch.equal(targets, y)
    assert torch.allclose(predictions, model(x).detach(), atol=1e-6)
    few = predict(model, loader, torch.device("cpu"), limit=5)
    assert [t.shape[0] for t in few] == [5, 5, 5] and torch.equal(few[0], x[:5])
    as_list = predict(model, [(x[:4], y[:4]), (x[4:], y[4:])], torch.device("cpu"))
    assert torch.equal(as_list[2], y)


def test_bf16_on_a_cpu_only_when_asked_and_only_in_hardware(monkeypatch):
    from utils.train import devices

    cpu = torch.device("cpu")
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: True)
    assert devices.autocast_dtype(cpu) is None  # the default stays full precision: the same numbers everywhere
    assert devices.autocast_dtype(cpu, cpu=True) == torch.bfloat16
    assert not channels_last_default(cpu, torch.bfloat16) and channels_last_default(torch.device("cuda"), torch.bfloat16)
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: False)  # a laptop CPU without AVX512-BF16 / AMX
    assert devices.autocast_dtype(cpu, cpu=True) is None

    seen = []
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: True)
    train, _ = make_denoising_loaders()
    model = UNet(1, 1, base_channels=4, depth=1)
    model.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    fit(model, train, l1, steps=1, device=cpu, progress=False)  # amp=None: full precision
    fit(model, train, l1, steps=1, device=cpu, progress=False, amp=True)
    assert seen == [torch.float32, torch.bfloat16]


def test_recalibrate_batchnorm_sets_plain_averages_over_the_batches():
    from utils.train import recalibrate_batchnorm

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.BatchNorm2d(2))
    batches = [(torch.randn(4, 1, 5, 5) * (i + 1), None) for i in range(6)]
    recalibrate_batchnorm(model, batches, count=4)
    norm = model[1]
    assert not model.training and norm.momentum is None and int(norm.num_batches_tracked) == 4
    with torch.no_grad():
        features = [model[0](x) for x, _ in batches[:4]]
    expected_mean = torch.stack([f.mean(dim=(0, 2, 3)) for f in features]).mean(0)
    expected_var = torch.stack([f.var(dim=(0, 2, 3), unbiased=True) for f in features]).mean(0)
    assert torch.allclose(norm.running_mean, expected_mean, atol=1e-5)
    assert torch.allclose(norm.running_var, expected_var, atol=1e-4)
