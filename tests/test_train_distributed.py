"""DistributedDataParallel on the CPU: two gloo processes started by torchrun train like one process would."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from benchmarks.train_ddp import build_model, build_parser, train
from utils.config import seed_everything
from utils.train.distributed import DistributedContext, distributed_loader, init_distributed, unwrap, wrap_ddp

REPO_ROOT = Path(__file__).resolve().parent.parent
TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
# 16 images, 2 per rank: a global batch of 4, so 6 steps cross an epoch boundary (set_epoch reshuffles).
# --n-val makes rank 0 alone validate, which deadlocks if fit() validates through DDP's wrapper.
# --cpu: gloo and fp32 on every machine, also where CUDA would give a single process bf16 autocast.
RUN = ["--model", "tiny", "--steps", "6", "--n-train", "16", "--image-size", "16", "--lr", "1e-2", "--quiet", "--cpu"]
PER_RANK_BATCH, WORLD_SIZE = 2, 2


def run_torchrun(state_dir: Path, timeout_s: float = 180.0) -> subprocess.CompletedProcess:
    """torchrun with two CPU processes; on timeout the whole process group is killed, so nothing hangs on."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={WORLD_SIZE}",
        str(REPO_ROOT / "benchmarks" / "train_ddp.py"), *RUN, "--batch-size", str(PER_RANK_BATCH),
        "--n-val", "4", "--eval-every", "3", "--state-dir", str(state_dir), "--timeout", "60",
    ]
    # One thread per rank: two ranks share a small CI machine. --standalone picks a free localhost port.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"torchrun did not finish within {timeout_s} s:\n{output[-3000:]}")
    return subprocess.CompletedProcess(command, process.returncode, output)


def train_in_this_process(batch_size: int) -> nn.Module:
    """The same run as one process (no process group) with the given batch."""
    model, summary = train(build_parser().parse_args([*RUN, "--batch-size", str(batch_size)]))
    assert summary["world_size"] == 1
    return model


def test_two_gloo_ranks_agree_and_match_one_process_on_the_global_batch(tmp_path, monkeypatch):
    for name in TORCHRUN_ENV:
        monkeypatch.delenv(name, raising=False)
    result = run_torchrun(tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "2 process(es) x batch 2" in result.stdout and "val iou" in result.stdout  # rank 0 reports, once
    assert result.stdout.count("images/s") == 1
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)

    # DDP all-reduces the gradients, so both ranks take bit-identical optimiser steps.
    assert rank0.keys() == rank1.keys()
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)

    # The model has no BatchNorm (see TinySegmenter), so 2 ranks x 2 images is, up to float rounding, one
    # process with batch 4: each rank's mean loss over its shard, averaged over ranks, is the global mean.
    single = train_in_this_process(PER_RANK_BATCH * WORLD_SIZE).state_dict()
    for key, value in single.items():
        torch.testing.assert_close(rank0[key], value, rtol=1e-5, atol=1e-6)

    # Control: the comparison can fail. Training moved the weights, and batch 2 in one process ends elsewhere.
    seed_everything(0)
    initial = build_model("tiny").state_dict()
    assert max((rank0[k] - initial[k]).abs().max() for k in initial) > 1e-2
    per_rank_only = train_in_this_process(PER_RANK_BATCH).state_dict()
    assert max((rank0[k] - per_rank_only[k]).abs().max() for k in rank0) > 1e-4


def test_without_torchrun_everything_is_a_single_process(monkeypatch):
    for name in TORCHRUN_ENV:
        monkeypatch.delenv(name, raising=False)
    context = init_distributed()
    assert (context.rank, context.world_size, context.is_main, context.distributed) == (0, 1, True, False)
    cpu = DistributedContext(rank=0, local_rank=0, world_size=1, device=torch.device("cpu"))
    model = nn.Conv2d(3, 1, 1)
    assert wrap_ddp(model, cpu) is model and unwrap(model) is model
    dataset = torch.utils.data.TensorDataset(torch.arange(10.0))
    loader = distributed_loader(dataset, batch_size=4, shuffle=False)
    assert [batch[0].tolist() for batch in loader] == [[0, 1, 2, 3], [4, 5, 6, 7]]  # drop_last: full batches only
