"""The synthetic people renderer's difficulty knob (utils.data.synthetic.renderer)."""
import numpy as np
import pytest

from utils.data.synthetic import make_synthetic_person_image


def test_difficulty_one_is_the_default_set():
    for index in range(3):
        a = make_synthetic_person_image(0, index, 48)
        b = make_synthetic_person_image(0, index, 48, difficulty=1.0)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_lower_difficulty_has_larger_people_and_stays_deterministic():
    easy = [make_synthetic_person_image(0, i, 48, difficulty=0.0) for i in range(40)]
    hard = [make_synthetic_person_image(0, i, 48) for i in range(40)]
    assert np.mean([m.mean() for _, m in easy]) > np.mean([m.mean() for _, m in hard])
    again = make_synthetic_person_image(0, 5, 48, difficulty=0.0)
    assert np.array_equal(again[0], easy[5][0]) and np.array_equal(again[1], easy[5][1])
    assert all(m.any() and set(np.unique(m)) <= {0, 1} for _, m in easy)


@pytest.mark.parametrize("difficulty", [-0.1, 1.5])
def test_difficulty_out_of_range_is_rejected(difficulty):
    with pytest.raises(ValueError, match="difficulty"):
        make_synthetic_person_image(0, 0, 32, difficulty=difficulty)
