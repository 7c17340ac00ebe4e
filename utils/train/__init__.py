"""Training: the loop students read (`loop`), plus schedules, checkpoints, device tricks and multi-GPU helpers.

    from utils.train import fit, cosine_schedule
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    history = fit(model, train_loader, loss_fn, steps=600, optimizer=optimizer,
                  scheduler=cosine_schedule(optimizer, 600), val_loader=val_loader)
"""
from utils.train.checkpoints import load_checkpoint, save_checkpoint
from utils.train.devices import autocast_context, autocast_dtype, channels_last_default
from utils.train.distributed import unwrap
from utils.train.loop import History, evaluate, fit, main_output, predict, recalibrate_batchnorm
from utils.train.schedules import cosine_schedule

__all__ = [
    "History", "autocast_context", "autocast_dtype", "channels_last_default", "cosine_schedule", "evaluate", "fit",
    "load_checkpoint", "main_output", "predict", "recalibrate_batchnorm", "save_checkpoint", "unwrap",
]
