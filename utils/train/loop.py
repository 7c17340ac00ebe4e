"""The training loop every notebook uses: small enough to read in one sitting.

    history = fit(model, train_loader, loss_fn, steps=600, val_loader=val_loader,
                  metrics={"iou": iou}, eval_every=100)

Training is counted in optimisation steps, not epochs, so that the same budget means the same thing
for datasets of any size. A learning-rate schedule is passed in explicitly (``scheduler=``, e.g.
``utils.train.cosine_schedule``). Two speed switches, each with a per-device default
(``utils.train.devices``): ``channels_last`` memory layout (CPU and CUDA) and ``amp`` mixed precision
(on CUDA by default: bf16 where the GPU has it, else fp16 with loss scaling; on a CPU only with
``amp=True``, and only where the CPU has bf16 in hardware). Under ``torchrun`` with a
DistributedDataParallel model and a DistributedSampler (``utils.train.distributed``) it also works
unchanged: only rank 0 prints and shows a bar.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable, Iterator

import torch
from torch import nn
from tqdm.auto import tqdm

from utils.config import get_device
from utils.train.devices import autocast_context, autocast_dtype, channels_last_default, to_device
from utils.train.distributed import is_main_process, unwrap

Metric = Callable[[torch.Tensor, torch.Tensor], float]


@dataclass
class History:
    """Losses and validation metrics recorded during `fit`, ready for plotting."""

    train_steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_steps: list[int] = field(default_factory=list)
    val: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0

    def last(self, name: str) -> float:
        """Most recent value of a validation metric (or 'loss' for the training loss)."""
        return self.train_loss[-1] if name == "loss" else self.val[name][-1]

    def as_dict(self) -> dict:
        """Plain dict, e.g. for json.dump."""
        return asdict(self)


def main_output(output: torch.Tensor | tuple | list) -> torch.Tensor:
    """The prediction to score: U2Net returns (fused, side1, ..., side6), other models one tensor."""
    return output[0] if isinstance(output, (tuple, list)) else output


def _endless(loader: Iterable) -> Iterator:
    """Cycle through the loader, telling a DistributedSampler which epoch it is so shuffles differ."""
    epoch = 0
    while True:
        sampler = getattr(loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable,
    metrics: dict[str, Metric] | None = None,
    loss_fn: Callable | None = None,
    device: torch.device | None = None,
) -> dict[str, float]:
    """Average each metric (and the loss, if given) over a whole loader, weighting by batch size."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    totals: dict[str, float] = {}
    count = 0
    for batch in loader:
        inputs, targets = to_device(batch[:2], device, channels_last=False)
        output = model(inputs)
        n = inputs.shape[0]
        scores = {name: fn(main_output(output).float(), targets) for name, fn in (metrics or {}).items()}
        if loss_fn is not None:
            scores["loss"] = float(loss_fn(output, targets))
        for name, value in scores.items():
            totals[name] = totals.get(name, 0.0) + float(value) * n
        count += n
    model.train(was_training)
    if count == 0:
        raise ValueError("evaluate() got an empty loader")
    return {name: total / count for name, total in totals.items()}


@torch.no_grad()
def predict(model: nn.Module, loader: Iterable, device: torch.device | None = None,
            limit: int | None = None) -> tuple[torch.Tensor, ...]:
    """Run the model over a loader; return (inputs, predictions, targets, *extras) on the CPU.

    `limit`: stop after that many images; pictures need a few, scores come from `evaluate` batch by batch.
    Each column is written into one tensor allocated up front, so the results are held once (joining lists of
    batches with torch.cat would hold them twice at the end).
    """
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        total = len(loader.dataset)  # type: ignore[attr-defined]
    except (AttributeError, TypeError):
        total = None
    if limit is not None:
        total = limit if total is None else min(total, limit)
    columns: list | None = None
    filled = 0
    for batch in loader:
        if limit is not None and filled >= limit:
            break
        prediction = main_output(model(batch[0].to(device))).float().cpu()
        row = [t.cpu() for t in (batch[0], prediction, *batch[1:])]
        n = row[0].shape[0] if limit is None else min(row[0].shape[0], limit - filled)
        if columns is None:
            columns = [torch.empty((total, *t.shape[1:]), dtype=t.dtype) if total is not None else [] for t in row]
        for column, tensor in zip(columns, row):
            if isinstance(column, list):
                column.append(tensor[:n])
            else:
                column[filled:filled + n] = tensor[:n]
        filled += n
    model.train(was_training)
    if columns is None:
        raise ValueError("predict() got an empty loader")
    return tuple(torch.cat(c) if isinstance(c, list) else c[:filled] for c in columns)


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: Iterable, count: int = 50,
                          device: torch.device | None = None) -> None:
    """Set every BatchNorm's running mean and variance to their plain average over `count` training batches.

    During training they are moving averages dominated by the last ~10 batches (momentum 0.1), so with training
    images as different as photos they keep jumping when the weights no longer change, and so does the held-out
    score. Call it after training, with the training batches (`(inputs, ...)` tuples); leaves the model in eval mode.
    """
    device = device or next(model.parameters()).device
    for layer in model.modules():
        if isinstance(layer, nn.BatchNorm2d):
            layer.reset_running_stats()
            layer.momentum = None  # None = a plain average over all batches seen from now on
    model.train()
    for _, batch in zip(range(count), batches):
        model(batch[0].to(device))
    model.eval()


def fit(
    model: nn.Module,
    train_loader: Iterable,
    loss_fn: Callable,
    *,
    steps: int,
    optimizer: torch.optim.Optimizer | None = None,
    lr: float = 1e-3,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    val_loader: Iterable | None = None,
    metrics: dict[str, Metric] | None = None,
    eval_every: int | None = None,
    device: torch.device | None = None,
    amp: bool | None = None,
    channels_last: bool | None = None,
    description: str = "training",
    progress: bool = True,
) -> History:
    """Train `model` for `steps` optimisation steps; evaluate every `eval_every` steps and at the end.

    `loss_fn(output, target)` gets the model's raw output (a tuple for U2Net). `scheduler.step()` is
    called after every optimisation step. `amp` (mixed precision) and `channels_last` default to what
    is fastest on the device (None); pass False to turn either off, or amp=True to allow bf16 on a CPU
    that computes it in hardware (see `autocast_dtype`). Returns a `History`.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    device = device or get_device()
    dtype = autocast_dtype(device, cpu=amp is True) if amp is not False else None
    channels_last = channels_last_default(device, dtype) if channels_last is None else channels_last
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    # fp16 gradients can underflow to zero; the scaler multiplies the loss up first. bf16 has fp32's range.
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    optimizer = optimizer or torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    eval_every = eval_every or steps
    history = History()
    show = progress and is_main_process()
    start = time.perf_counter()
    model.train()
    bar = tqdm(total=steps, desc=description, disable=not show, leave=True)
    batches = _endless(train_loader)
    for step in range(1, steps + 1):
        inputs, targets = to_device(next(batches)[:2], device, channels_last)
        with autocast_context(device, dtype):
            output = model(inputs)
        # The loss runs outside autocast: binary cross-entropy is not safe in half precision.
        loss = loss_fn(output, targets)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if scheduler is not None:
            scheduler.step()
        history.train_steps.append(step)
        history.train_loss.append(loss.item())
        bar.update(1)
        if val_loader is not None and (step % eval_every == 0 or step == steps):
            # Through DDP's wrapper a forward may broadcast buffers to all ranks; the wrapped module runs none,
            # so ranks may validate on their own (or, like rank 0 alone, at all) without deadlocking.
            scores = evaluate(unwrap(model), val_loader, metrics, loss_fn, device)
            history.val_steps.append(step)
            for name, value in scores.items():
                history.val.setdefault(name, []).append(value)
            bar.set_postfix({"loss": f"{loss.item():.4f}", **{k: f"{v:.4f}" for k, v in scores.items() if k != "loss"}})
        elif step % 10 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}")
    bar.close()
    history.seconds = time.perf_counter() - start
    return history
