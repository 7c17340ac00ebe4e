"""Shared code for the UNet course notebooks: models, data, metrics, losses, training loop and plots."""
