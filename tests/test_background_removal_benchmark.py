"""Smoke test of benchmarks/background_removal.py: every path runs and the report is complete (toy size)."""
from __future__ import annotations

import json

import pytest

from benchmarks import background_removal as bench


def test_benchmark_runs_every_path_and_compares_masks(tmp_path, restore_threads):
    path = tmp_path / "background_removal.json"
    status = bench.main(["--models", "u2netp", "--size", "64", "--rounds", "1", "--images", "1", "--batch", "1,2",
                         "--threads", "1", "--json", str(path), "--quiet"])
    assert status == 0
    report = json.loads(path.read_text())
    (result,) = report["results"]
    paths = [row["path"] for row in result["rows"]]
    assert paths[0] in ("rembg", "rembg recipe") and result["reference"] == paths[0]
    assert paths[1:] == ["torch eager", "onnxruntime, batch 1", "onnxruntime, batch 2"]
    assert all(row["images_per_s"] > 0 for row in result["rows"])
    assert result["rows"][0]["ratio_to_reference"] == pytest.approx(1.0)
    differences = result["differences"]
    assert differences["onnxruntime batch 1 vs torch eager"]["max_levels"] <= 1
    assert differences["onnxruntime batch 2 vs torch eager"]["max_levels"] <= 1
    assert differences[f"onnxruntime batch 1 vs {paths[0]}"]["max_levels"] <= 2
    assert report["machine"]["usable_cores"] >= 1
