"""The model-speed and notebook-timing benchmarks, run at toy sizes so that they take seconds."""
import json

import nbformat
import pytest
import torch
from nbformat.v4 import new_code_cell, new_notebook

from benchmarks import models as model_bench
from benchmarks import notebooks as notebook_bench
from utils.models import U2NetP, UNet, count_parameters

TIMINGS = ("median_ms", "min_ms", "max_ms", "mean_ms", "first_call_ms", "images_per_s")


def test_model_benchmark_writes_a_complete_json_report(tmp_path, restore_threads):
    path = tmp_path / "speed.json"
    status = model_bench.main([
        "--models", "unet,u2netp", "--size", "32", "--batch", "2", "--repeats", "2", "--warmup", "1",
        "--variants", "eager,channels_last,bf16", "--passes", "forward,forward_backward", "--threads", "1",
        "--device", "cpu", "--json", str(path), "--quiet",
    ])
    assert status == 0
    report = json.loads(path.read_text())
    assert {"settings", "results", "skipped", "best", "machine"} <= report.keys()
    assert {"usable_cores", "torch", "device", "torch_threads"} <= report["machine"].keys()
    assert report["machine"]["torch_threads"] == 1
    rows = report["results"]
    # 2 models x 2 CPU variants x 2 passes x 1 batch; bf16 autocast is for CUDA only and is skipped with a note.
    assert len(rows) == 8
    assert [s["variant"] for s in report["skipped"]] == ["bf16"]
    assert "CUDA" in report["skipped"][0]["reason"]
    expected_params = {"unet": count_parameters(UNet(3, 3)), "u2netp": count_parameters(U2NetP())}
    for row in rows:
        assert row["error"] is None
        assert all(row[key] > 0 for key in TIMINGS), row
        assert row["min_ms"] <= row["median_ms"] <= row["max_ms"]
        assert (row["height"], row["width"], row["batch"], row["repeats"]) == (32, 32, 2, 2)
        assert row["params"] == expected_params[row["model"]]
        assert row["gflops_per_image"] > 0
        assert row["images_per_s"] == pytest.approx(2 / (row["median_ms"] / 1000))
    # One best variant per (model, pass, batch), chosen among the timed rows.
    assert len(report["best"]) == 4
    assert {b["variant"] for b in report["best"]} <= {"eager", "channels_last"}


def test_a_failing_configuration_is_recorded_not_raised():
    # Training-mode BatchNorm cannot normalise a single value per channel: U2NetP's 1x1 bottleneck at 32x32.
    report = model_bench.benchmark(["u2netp"], size=(32, 32), batches=[1], passes=["forward_backward"], repeats=1,
                                   warmup=1, device=torch.device("cpu"), flops=False, log=None)
    (row,) = report["results"]
    assert "Expected more than 1 value per channel" in row["error"]
    assert row["median_ms"] is None and report["best"] == []


def test_variant_names_parse_into_features():
    variant = model_bench.parse_variant("compile+channels_last+bf16")
    assert (variant.channels_last, variant.dtype, variant.compile) == (True, torch.bfloat16, True)
    assert model_bench.parse_variant("eager") == model_bench.Variant("eager")
    assert model_bench.skip_reason(model_bench.parse_variant("channels_last"), torch.device("cpu")) is None
    assert model_bench.skip_reason(model_bench.parse_variant("fp16"), torch.device("cpu"))
    for bad in ("bf16+fp16", "turbo", ""):
        with pytest.raises(ValueError):
            model_bench.parse_variant(bad)


def test_reference_mode_times_the_reference_configuration(tmp_path, restore_threads):
    path = tmp_path / "reference.json"
    model_bench.main(["--reference-size", "--models", "u2netp", "--variants", "eager", "--repeats", "1",
                      "--warmup", "1", "--no-flops", "--json", str(path), "--quiet"])
    report = json.loads(path.read_text())
    assert report["settings"]["threads"] == model_bench.REFERENCE_THREADS == 2
    (row,) = report["results"]
    assert (row["model"], row["pass"], row["batch"], row["height"], row["width"]) == ("u2netp", "forward", 1, 320, 320)
    (comparison,) = report["reference"]["comparison"]
    assert comparison["reference_ms"] == 453.0
    assert comparison["ratio"] == pytest.approx(row["median_ms"] / 453.0)
    assert comparison["ours_params"] == comparison["reference_params"] == 1_131_181


def test_reference_comparison_only_pairs_like_with_like():
    row = {"model": "u2net", "variant": "eager", "pass": "forward", "batch": 1, "height": 320, "width": 320,
           "median_ms": 900.0, "params": 44_009_869, "error": None}
    (faster,) = model_bench.reference_comparison([row])
    assert faster["at_least_as_fast"] and faster["ratio"] == pytest.approx(900 / 967)
    assert model_bench.reference_comparison([{**row, "batch": 8}, {**row, "height": 256}, {**row, "variant": "bf16"},
                                              {**row, "model": "unet"}]) == []


def _write_notebook(path, *sources):
    nbformat.write(new_notebook(cells=[new_code_cell(source) for source in sources]), path)
    return path


def test_notebook_runner_times_passes_and_records_failures(tmp_path, monkeypatch):
    good = _write_notebook(tmp_path / "good.ipynb", "import os\nprint(os.environ['UNET_COURSE_PROFILE'])")
    bad = _write_notebook(tmp_path / "bad.ipynb", "x = 1", "raise RuntimeError('boom')", "y = 2")
    committed = {path: path.read_bytes() for path in (good, bad)}
    report_path = tmp_path / "times.json"
    monkeypatch.setenv("UNET_COURSE_PROFILE", "smoke")

    status = notebook_bench.main([str(good), str(bad), "--profile", "cpu", "--json", str(report_path),
                                  "--output-dir", str(tmp_path / "executed")])

    assert status == 1  # one notebook failed
    report = json.loads(report_path.read_text())
    assert (report["passed"], report["failed"]) == (1, 1)
    assert {"usable_cores", "torch", "device"} <= report["machine"].keys()
    passed, failed = report["results"]
    assert passed["status"] == "pass" and passed["error"] is None and passed["seconds"] > 0
    assert failed["status"] == "fail" and failed["error"] == "RuntimeError: boom" and failed["failed_cell"] == 1
    # The kernel saw the chosen profile; this process got its own value back.
    executed = nbformat.read(tmp_path / "executed" / "good.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"].strip() == "cpu"
    assert notebook_bench.os.environ["UNET_COURSE_PROFILE"] == "smoke"
    # The notebooks themselves were not touched.
    assert all(path.read_bytes() == content for path, content in committed.items())
