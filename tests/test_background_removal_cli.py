"""Tests for the `python -m background_removal` command, called through main(argv)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from utils.models.u2net import U2NetP
from background_removal.cli import main
from utils.train import save_checkpoint

FAST = ["--size", "32"]  # the network input size does not change what the command does, only its speed


pytestmark = pytest.mark.usefixtures("one_cpu_thread")


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """Random U2NetP weights saved like the official file (a bare state_dict)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "u2netp.pth"
    torch.save(U2NetP().state_dict(), path)
    return path


def _save_image(path: Path, height: int, width: int, seed: int) -> np.ndarray:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return pixels


def _all_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_folder_and_single_file_give_rgba_cutouts_of_the_original_size(weights, tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    first = _save_image(folder / "a.png", 30, 41, seed=1)
    _save_image(folder / "b.jpg", 23, 17, seed=2)
    (folder / "notes.txt").write_text("not an image, and not picked up from a folder")
    single = _save_image(tmp_path / "c.png", 19, 26, seed=3)
    out = tmp_path / "out" / "nested"  # created on demand

    code = main([str(folder), str(tmp_path / "c.png"), "--out", str(out), "--weights", str(weights), *FAST])

    assert code == 0, capsys.readouterr().err
    assert [p.name for p in _all_files(out)] == ["a.png", "b.png", "c.png"]
    sizes = {}
    for name in ("a", "b", "c"):
        with Image.open(out / f"{name}.png") as img:
            assert img.mode == "RGBA"
            sizes[name] = img.size[::-1]
    assert sizes == {"a": (30, 41), "b": (23, 17), "c": (19, 26)}
    cut_a = np.asarray(Image.open(out / "a.png"))
    np.testing.assert_array_equal(cut_a[..., :3], first)  # lossless input: colours kept exactly
    np.testing.assert_array_equal(np.asarray(Image.open(out / "c.png"))[..., :3], single)
    assert len(np.unique(cut_a[..., 3])) > 2  # soft alpha by default


def test_threshold_gives_hard_alpha_and_course_checkpoints_work(weights, tmp_path, capsys):
    torch.manual_seed(0)
    checkpoint = save_checkpoint(tmp_path / "course.pt", U2NetP(), step=10)
    _save_image(tmp_path / "x.png", 21, 33, seed=4)
    out = tmp_path / "out"

    code = main([str(tmp_path / "x.png"), "--out", str(out), "--weights", str(checkpoint),
                 "--threshold", "0.5", *FAST])

    assert code == 0, capsys.readouterr().err
    alpha = np.asarray(Image.open(out / "x.png"))[..., 3]
    assert set(np.unique(alpha).tolist()) <= {0, 255}


def test_unreadable_image_is_reported_and_the_others_are_written(weights, tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    _save_image(folder / "good.png", 20, 20, seed=5)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff this is not really a JPEG")
    out = tmp_path / "out"

    code = main([str(folder), "--out", str(out), "--weights", str(weights), *FAST])

    err = capsys.readouterr().err
    assert code == 1
    assert [p.name for p in _all_files(out)] == ["good.png"]  # no partial file for the broken one
    assert "broken.jpg" in err and "1 of 2 image(s) could not be read" in err
    assert "Traceback" not in err


def test_missing_weights_say_where_to_download_and_create_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "empty_home"))
    _save_image(tmp_path / "x.png", 16, 16, seed=6)
    out = tmp_path / "out"

    code = main([str(tmp_path / "x.png"), "--out", str(out), *FAST])

    err = capsys.readouterr().err
    assert code == 2
    assert "drive.google.com" in err and "u2netp.pth" in err
    assert "Traceback" not in err
    assert not out.exists()


def test_weights_of_the_other_model_are_a_usage_error(weights, tmp_path, capsys):
    _save_image(tmp_path / "x.png", 16, 16, seed=7)
    code = main([str(tmp_path / "x.png"), "--out", str(tmp_path / "out"), "--model", "u2net",
                 "--weights", str(weights), *FAST])
    assert code == 2
    assert "--model u2netp" in capsys.readouterr().err


@pytest.mark.parametrize("layout", ["parent_is_a_file", "out_is_a_file"])
def test_output_folder_that_cannot_be_written(weights, tmp_path, capsys, layout):
    # A path below a regular file cannot be created even by root (chmod would not stop root).
    blocker = tmp_path / "blocker.txt"
    blocker.write_text("a file, not a folder")
    out = blocker / "cutouts" if layout == "parent_is_a_file" else blocker
    source = tmp_path / "in"
    source.mkdir()
    _save_image(source / "x.png", 16, 16, seed=8)
    before = _all_files(tmp_path)

    code = main([str(source), "--out", str(out), "--weights", str(weights), *FAST])

    err = capsys.readouterr().err
    assert code == 2
    assert str(blocker) in err and "Traceback" not in err
    assert _all_files(tmp_path) == before  # nothing written anywhere
    assert blocker.read_text() == "a file, not a folder"


def test_no_inputs_found(weights, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code = main([str(empty), "--out", str(tmp_path / "out"), "--weights", str(weights)])
    assert code == 2
    assert "no images" in capsys.readouterr().err

    code = main([str(tmp_path / "missing.jpg"), "--out", str(tmp_path / "out"), "--weights", str(weights)])
    assert code == 2
    assert "input not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_two_inputs_with_the_same_stem_are_refused(weights, tmp_path, capsys):
    _save_image(tmp_path / "same.png", 16, 16, seed=9)
    _save_image(tmp_path / "same.jpg", 16, 16, seed=10)
    code = main([str(tmp_path / "same.png"), str(tmp_path / "same.jpg"), "--out", str(tmp_path / "out"),
                 "--weights", str(weights)])
    assert code == 2
    assert "same.png" in capsys.readouterr().err


def test_bad_arguments_exit_with_2(tmp_path, capsys):
    assert main(["x.png", "--out", str(tmp_path), "--model", "u3net"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    assert main(["x.png", "--out", str(tmp_path), "--threshold", "1.5"]) == 2
    assert "--threshold" in capsys.readouterr().err


def test_an_input_png_is_never_overwritten(weights, tmp_path, capsys):
    original = _save_image(tmp_path / "photo.png", 16, 16, seed=11)
    code = main([str(tmp_path), "--out", str(tmp_path), "--weights", str(weights), *FAST])
    assert code == 2
    assert "overwrite" in capsys.readouterr().err
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "photo.png")), original)


def _run_without_torch_check(*args: str) -> tuple[int, str, bool]:
    """Run the command in a fresh interpreter; (exit code, stderr, whether torch got imported)."""
    import subprocess
    import sys

    probe = ("import sys, runpy\nsys.argv = ['background_removal', *sys.argv[1:]]\n"
             "try:\n    runpy.run_module('background_removal', run_name='__main__')\n"
             "except SystemExit as stop:\n    code = stop.code\n"
             "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\nsys.exit(code)\n")
    done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])
    return done.returncode, done.stderr, "NO-TORCH" in done.stdout


def test_help_and_usage_errors_do_not_import_torch(tmp_path):
    code, _, torch_free = _run_without_torch_check("--help")
    assert code == 0 and torch_free
    code, err, torch_free = _run_without_torch_check(str(tmp_path / "missing.jpg"), "--out", str(tmp_path / "out"))
    assert code == 2 and "input not found" in err and torch_free
    code, err, torch_free = _run_without_torch_check("x.png", "--out", str(tmp_path), "--model", "u3net")
    assert code == 2 and "invalid choice" in err and torch_free


def test_model_names_are_the_weights_modules():
    from background_removal.names import MODEL_NAMES
    from background_removal.weights import MODEL_CLASSES

    assert sorted(MODEL_NAMES) == sorted(MODEL_CLASSES)


def test_all_inputs_unreadable_is_exit_2_and_creates_no_folder(weights, tmp_path, capsys):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff not a JPEG")
    out = tmp_path / "out"
    code = main([str(tmp_path / "broken.jpg"), "--out", str(out), "--weights", str(weights), *FAST])
    assert code == 2
    assert "nothing was written" in capsys.readouterr().err
    assert not out.exists()


def test_a_folder_in_the_way_of_an_output_is_refused_before_writing(weights, tmp_path, capsys):
    source = tmp_path / "in"
    source.mkdir()
    _save_image(source / "a.png", 16, 16, seed=12)
    _save_image(source / "b.png", 16, 16, seed=13)
    out = tmp_path / "out"
    (out / "b.png").mkdir(parents=True)
    code = main([str(source), "--out", str(out), "--weights", str(weights), *FAST])
    assert code == 2
    assert "b.png" in capsys.readouterr().err
    assert _all_files(out) == []  # a.png was not written before the problem was found


def test_rgba_input_keeps_transparent_pixels_transparent(weights, tmp_path, capsys):
    rgba = np.random.default_rng(14).integers(0, 256, size=(20, 24, 4), dtype=np.uint8)
    rgba[:10, :, 3] = 0
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "t.png")
    code = main([str(tmp_path / "t.png"), "--out", str(tmp_path / "out"), "--weights", str(weights), *FAST])
    assert code == 0, capsys.readouterr().err
    cut = np.asarray(Image.open(tmp_path / "out" / "t.png"))
    assert (cut[:10, :, 3] == 0).all()
    np.testing.assert_array_equal(cut[..., :3], rgba[..., :3])


def test_onnxruntime_engine_gives_the_torch_engines_cutouts(weights, tmp_path, capsys, monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("BACKGROUND_REMOVAL_CACHE", str(tmp_path / "cache"))
    _save_image(tmp_path / "x.png", 40, 30, seed=15)
    _save_image(tmp_path / "y.png", 25, 35, seed=16)
    inputs = [str(tmp_path / "x.png"), str(tmp_path / "y.png")]
    assert main([*inputs, "--out", str(tmp_path / "torch"), "--weights", str(weights), *FAST]) == 0
    assert main([*inputs, "--out", str(tmp_path / "ort"), "--weights", str(weights), *FAST,
                 "--engine", "onnxruntime", "--threads", "1", "--batch", "2"]) == 0
    for name in ("x.png", "y.png"):
        a = np.asarray(Image.open(tmp_path / "torch" / name)).astype(int)
        b = np.asarray(Image.open(tmp_path / "ort" / name)).astype(int)
        assert np.abs(a - b).max() <= 1
    (onnx_file,) = (tmp_path / "cache").glob("*.onnx")
    # The cached export runs directly (onnxruntime implied); its input size is its own.
    assert main([inputs[0], "--out", str(tmp_path / "direct"), "--weights", str(onnx_file)]) == 0
    capsys.readouterr()
    assert main([inputs[0], "--out", str(tmp_path / "bad"), "--weights", str(onnx_file), "--engine", "torch"]) == 2
    assert "--engine onnxruntime" in capsys.readouterr().err
