"""Run profiles, the offline switch, seeding and setup() (utils.config)."""
import pytest
import torch

from utils.config import PROFILES, get_profile, offline_mode, seed_everything, setup


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


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("YES", True), ("0", False), ("", False)])
def test_offline_switch_reads_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("UNET_COURSE_OFFLINE", value)
    assert offline_mode() is expected

