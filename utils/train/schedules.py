"""Learning-rate schedules for `fit(..., scheduler=...)`: a decaying rate so the final number is not a noisy sample."""
from __future__ import annotations

import math

import torch


def cosine_schedule(optimizer: torch.optim.Optimizer, steps: int, warmup: int = 0) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over `warmup` steps, then a cosine from the optimizer's lr down to 0 at step `steps`."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if not 0 <= warmup < steps:
        raise ValueError(f"warmup must be in [0, steps), got {warmup} for {steps} steps")

    def factor(step: int) -> float:
        # LambdaLR calls this with the number of scheduler.step() calls so far (0 before the first step).
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / (steps - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
