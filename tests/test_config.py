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



# --- the gpu profile sized from the GPU, loader workers from the machine (issue 18) ---

from utils import config as config_module  # noqa: E402


def _simulate_gpu(monkeypatch, gib):
    class Properties:
        total_memory = int(gib * 2**30)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index=0: Properties())


@pytest.mark.parametrize("gib", [4, 6, 15.6, 80])
def test_gpu_profile_follows_gpu_memory(monkeypatch, gib):
    monkeypatch.setenv("UNET_COURSE_PROFILE", "gpu")
    _simulate_gpu(monkeypatch, gib)
    profile = get_profile()
    assert profile.name == "gpu" and f"{gib:.0f} GiB" in profile.sized_for


def test_small_gpu_gets_less_than_t4_gets_less_than_h100(monkeypatch):
    sizes = {}
    for gib in (6, 15.6, 80):
        _simulate_gpu(monkeypatch, gib)
        p = get_profile("gpu")
        sizes[gib] = p.batch_size * p.image_size**2 * p.base_channels
    assert sizes[6] < sizes[15.6] < sizes[80]
    assert get_profile("gpu").train_steps == PROFILES["gpu"].train_steps  # same budget, comparable results


def test_setup_line_says_what_the_gpu_profile_is_sized_for(monkeypatch, capsys):
    _simulate_gpu(monkeypatch, 6)
    monkeypatch.setattr(config_module, "get_device", lambda: torch.device("cpu"))
    setup(profile="gpu")
    out = capsys.readouterr().out
    assert "profile: gpu (GPU with 6 GiB: 192 px, batch 8)" in out and "loader workers:" in out


@pytest.mark.parametrize("cores, expected", [(1, 0), (2, 1), (4, 3), (16, 4)])
def test_loader_workers_follow_the_usable_cores(monkeypatch, cores, expected):
    monkeypatch.setattr(config_module.os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    monkeypatch.setattr(config_module.multiprocessing, "get_start_method", lambda allow_none=False: "fork")
    assert config_module.loader_workers() == expected


def test_no_worker_processes_where_they_are_spawned(monkeypatch):
    """Windows/macOS spawn workers, which cannot re-import a dataset defined in a notebook: load in-process."""
    monkeypatch.setattr(config_module.os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    monkeypatch.setattr(config_module.multiprocessing, "get_start_method", lambda allow_none=False: "spawn")
    assert config_module.loader_workers() == 0


def test_usable_cpus_is_the_affinity_not_the_host(monkeypatch):
    monkeypatch.setattr(config_module.os, "sched_getaffinity", lambda pid: {3}, raising=False)
    assert config_module.usable_cpus() == 1


def test_threads_are_set_passive_before_torch_starts():
    import os
    assert os.environ.get("OMP_WAIT_POLICY") == "PASSIVE"
    assert os.environ.get("GOMP_SPINCOUNT") == "10000"  # libgomp spins briefly first: PASSIVE alone is slow when quiet
