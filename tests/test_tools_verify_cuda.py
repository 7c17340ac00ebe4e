"""The CUDA verification script's CPU-side logic (tools.verify_cuda): plan, report, refusal, probe code path."""
import json
from pathlib import Path

import torch

from tools import verify_cuda


def test_plan_fits_the_eight_minute_budget_and_covers_every_notebook_folder():
    steps = verify_cuda.plan()
    assert [s.name for s in steps] == ["unit tests", "nbval", "probe"]
    assert sum(s.timeout_s for s in steps) <= 8 * 60
    nbval = steps[1].command
    assert "--nbval-lax" in nbval and all(folder in nbval for folder in ("notebooks", "solutions", "exercises"))
    assert all(test in steps[0].command for test in ("tests/test_train_devices.py", "tests/test_train.py"))
    assert steps[2].env["UNET_COURSE_PROFILE"] == "gpu" and all(s.env["OMP_WAIT_POLICY"] == "PASSIVE" and s.env["GOMP_SPINCOUNT"] == "10000" for s in steps)


def test_refuses_politely_without_cuda(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert verify_cuda.main(["--report", "unused.md"]) == 2
    assert "No CUDA device" in capsys.readouterr().err


def test_report_has_readme_tables_and_failure_tails(tmp_path: Path):
    outcomes = [verify_cuda.Outcome("unit tests", 0, 12.0, True, False, "ok"),
                verify_cuda.Outcome("nbval", None, 288.0, False, True, "cell 7 ran out of time")]
    probe = {"device": "cuda", "gpu": "Tesla T4", "capability": [7, 5], "gpu_memory_gib": 14.6,
             "autocast_dtype": "torch.float16", "profile": {"sized_for": "GPU with 15 GiB"},
             "train_steps": {"01 UNet": {"batch": 16, "size": 256, "ms_per_step": 210.0, "peak_gpu_memory_gib": 4.1}},
             "loaders": {"01 denoising crops": {"samples_per_s": 300.0, "workers": 1}}}
    path = verify_cuda.write_report(outcomes, probe, tmp_path / "cuda.md")
    text = path.read_text()
    assert "| nbval | TIMED OUT | 288 |" in text and "Tesla T4" in text and "torch.float16" in text
    assert "| 01 UNet | 16 | 256 | 210.0 | 4.1 |" in text and "cell 7 ran out of time" in text
    assert json.loads(path.with_suffix(".json").read_text())["probe"]["gpu"] == "Tesla T4"


def test_probe_code_path_runs_on_the_cpu(one_cpu_thread):
    result = verify_cuda.probe("cpu", quick=True)
    assert set(result["train_steps"]) == {"01 UNet", "02 VGG16UNet", "03 U2NetP"}
    assert all(t["ms_per_step"] > 0 for t in result["train_steps"].values())
    assert all(r["samples_per_s"] > 0 for r in result["loaders"].values())
    assert result["autocast_dtype"] == "None"
