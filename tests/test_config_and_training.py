"""Profiles, seeding, the training loop and checkpoints."""
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from utils.config import PROFILES, get_profile, seed_everything, setup
from utils.models import UNet
from utils.train import evaluate, fit, load_checkpoint, main_output, predict, save_checkpoint


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv("UNET_COURSE_PROFILE", "cpu")
    assert get_profile().name == "cpu"
    assert get_profile("smoke").train_steps < get_profile("cpu").train_steps < get_profile("gpu").train_steps
    assert get_profile("smoke", batch_size=2).batch_size == 2


def test_profile_default_without_cuda(monkeypatch):
    monkeypatch.delenv("UNET_COURSE_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert get_profile().name == "cpu"


def test_unknown_profile_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("UNET_COURSE_PROFILE", "turbo")
    with pytest.raises(ValueError, match="smoke"):
        get_profile()


def test_setup_prints_profile_and_device(capsys, monkeypatch):
    monkeypatch.setenv("UNET_COURSE_PROFILE", "smoke")
    config, device = setup(seed=3)
    out = capsys.readouterr().out
    assert "profile: smoke" in out and f"device: {device}" in out
    assert config == PROFILES["smoke"]


def test_seeding_repeats_random_numbers():
    seed_everything(7)
    a = torch.rand(3)
    seed_everything(7)
    assert torch.equal(a, torch.rand(3))


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


def test_cosine_adam_decays_to_zero_over_the_given_steps():
    from utils.train import cosine_adam

    model = torch.nn.Linear(2, 1)
    optimizer = cosine_adam(model, steps=10, lr=0.5, betas=(0.5, 0.999))
    assert optimizer.param_groups[0]["betas"] == (0.5, 0.999)
    rates = []
    for _ in range(10):
        model(torch.ones(1, 2)).sum().backward()
        optimizer.step()
        rates.append(optimizer.param_groups[0]["lr"])
    assert rates[4] == pytest.approx(0.25)  # half-way down the cosine
    assert rates[-1] == pytest.approx(0.0, abs=1e-12)
    assert all(a > b for a, b in zip(rates, rates[1:]))
    with pytest.raises(ValueError):
        cosine_adam(model, steps=0)
