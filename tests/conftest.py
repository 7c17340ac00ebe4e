"""Fixtures shared by several test files."""
import pytest
import torch


@pytest.fixture(scope="module")
def one_cpu_thread():
    """Tiny images gain nothing from threads, and on a busy shared runner extra threads only wait on each other."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def restore_threads():
    """For tests of commands whose main() sets torch's thread count for the whole process: later tests must not inherit it."""
    previous = torch.get_num_threads()
    yield
    torch.set_num_threads(previous)
