"""Benchmarks for the course: model speed (`python -m benchmarks.models`), notebook run times
(`python -m benchmarks.notebooks`) and a DistributedDataParallel training example (`benchmarks/train_ddp.py`)."""
