"""Cut-outs, compositing and PNG saving."""
import numpy as np
import pytest
import torch
from PIL import Image

from utils.cutout import composite, make_cutout, save_png


def test_soft_and_hard_alpha():
    image = torch.rand(3, 4, 5)
    probability = torch.linspace(0, 1, 20).view(1, 4, 5)
    soft = make_cutout(image, probability)
    hard = make_cutout(image, probability, threshold=0.5)
    assert soft.shape == hard.shape == (4, 5, 4) and soft.dtype == np.uint8
    assert soft[0, 0, 3] == 0 and soft[-1, -1, 3] == 255 and 0 < soft[2, 0, 3] < 255
    assert set(np.unique(hard[..., 3])) == {0, 255}
    assert np.array_equal(soft[..., :3], (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))


def test_composite_blends_by_alpha():
    person = np.full((2, 2, 3), 200, np.uint8)
    cutout = make_cutout(person, np.array([[1.0, 0.0], [0.5, 1.0]]))
    out = composite(cutout, np.zeros((2, 2, 3), np.uint8))
    assert out[0, 0, 0] == 200 and out[0, 1, 0] == 0 and abs(int(out[1, 0, 0]) - 100) <= 1


def test_size_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="differ in size"):
        make_cutout(torch.rand(3, 4, 4), torch.rand(1, 5, 4))
    with pytest.raises(ValueError, match="differ in size"):
        composite(np.zeros((4, 4, 4), np.uint8), np.zeros((3, 3, 3), np.uint8))


def test_save_png_round_trip_leaves_no_partial_file(tmp_path):
    rgba = make_cutout(torch.rand(3, 6, 7), torch.rand(1, 6, 7))
    path = save_png(rgba, tmp_path / "out" / "person.png")
    assert np.array_equal(np.asarray(Image.open(path)), rgba)
    assert [p.name for p in path.parent.iterdir()] == ["person.png"]


def test_checkerboard_alternates_two_greys_in_square_cells():
    from utils.cutout import checkerboard

    board = checkerboard(5, 7, cell=2, dark=10, light=20)
    assert board.shape == (5, 7, 3) and board.dtype == np.uint8
    assert (board[..., 0] == board[..., 2]).all()  # grey
    assert board[0, 0, 0] == 10 and board[0, 2, 0] == 20 and board[2, 0, 0] == 20 and board[2, 2, 0] == 10
    assert board[1, 1, 0] == 10 and board[4, 6, 0] == 20  # cell (2, 3): 2 + 3 is odd, a light square
    with pytest.raises(ValueError, match="positive"):
        checkerboard(4, 4, cell=0)
