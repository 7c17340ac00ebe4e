"""Helpers for the visible checks in the exercise notebooks: each failure says what was expected and what came.

Every helper raises an AssertionError with a message a student can act on, so a failing check cell ends in
one readable line rather than a bare `assert` with no explanation.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import nn


def fixed_rand(*shape: int, seed: int = 0, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    """Uniform random tensor from its own generator, so the values do not depend on what ran before."""
    generator = torch.Generator().manual_seed(seed)
    return low + (high - low) * torch.rand(*shape, generator=generator)


def _with_hint(message: str, hint: str) -> str:
    return f"{message}\n  Hint: {hint}" if hint else message


def expect_type(got: Any, expected: type | tuple[type, ...], what: str, hint: str = "") -> None:
    """Fail unless `got` is an instance of `expected`."""
    if not isinstance(got, expected):
        names = expected.__name__ if isinstance(expected, type) else " or ".join(t.__name__ for t in expected)
        raise AssertionError(_with_hint(f"{what}: expected a {names}, got {type(got).__name__}", hint))


def expect_shape(got: torch.Tensor, expected: Sequence[int], what: str, hint: str = "") -> None:
    """Fail unless `got` is a tensor of exactly this shape."""
    expect_type(got, torch.Tensor, what, hint)
    if tuple(got.shape) != tuple(expected):
        raise AssertionError(_with_hint(f"{what}: expected shape {tuple(expected)}, got {tuple(got.shape)}", hint))


def expect_equal(got: Any, expected: Any, what: str, hint: str = "") -> None:
    """Fail unless `got == expected` (for plain Python values: ints, strings, lists, tuples)."""
    if got != expected:
        raise AssertionError(_with_hint(f"{what}: expected {expected!r}, got {got!r}", hint))


def expect_close(
    got: float | torch.Tensor, expected: float | torch.Tensor, what: str, atol: float = 1e-5, rtol: float = 1e-4,
    hint: str = "",
) -> None:
    """Fail unless `got` matches `expected` within atol + rtol * |expected|, element by element."""
    if isinstance(expected, torch.Tensor):
        expect_type(got, torch.Tensor, what, hint)
        expect_shape(got, expected.shape, what, hint)
        got_d, expected_d = got.detach().double(), expected.detach().double()
        if torch.isnan(got_d).any():
            raise AssertionError(_with_hint(f"{what}: the result contains NaN", hint))
        difference = (got_d - expected_d).abs()
        allowed = atol + rtol * expected_d.abs()
        if (difference > allowed).any():
            worst = int((difference - allowed).flatten().argmax())
            raise AssertionError(_with_hint(
                f"{what}: {int((difference > allowed).sum())} of {difference.numel()} values differ; the worst is "
                f"{got_d.flatten()[worst].item():.6g} where {expected_d.flatten()[worst].item():.6g} was expected "
                f"(tolerance {atol:g} + {rtol:g} x |expected|)", hint))
        return
    try:
        value = float(got)
    except (TypeError, ValueError):
        raise AssertionError(_with_hint(f"{what}: expected a number, got {type(got).__name__}", hint)) from None
    expected = float(expected)
    same_infinity = value == expected  # inf == inf is the only way an infinite value can be right
    if not same_infinity and not abs(value - expected) <= atol + rtol * abs(expected):
        raise AssertionError(_with_hint(
            f"{what}: expected {expected:.6g}, got {value:.6g} (tolerance {atol:g} + {rtol:g} x |expected|)", hint))


def expect_parameters(model: nn.Module, expected: int, what: str, hint: str = "") -> None:
    """Fail unless `model` has exactly `expected` parameters; the difference often points at the mistake."""
    expect_type(model, nn.Module, what, hint)
    got = sum(p.numel() for p in model.parameters())
    if got != expected:
        raise AssertionError(_with_hint(
            f"{what}: expected {expected:,} parameters, got {got:,} (difference {got - expected:+,})", hint))


def _mentions_shape(message: str, shape: Sequence[int]) -> bool:
    """True if the numbers of `shape` appear one after the other in `message`, in any notation."""
    numbers = re.findall(r"\d+", message)
    wanted = [str(int(n)) for n in shape]
    return any(numbers[i : i + len(wanted)] == wanted for i in range(len(numbers) - len(wanted) + 1))


def expect_raises(
    exception: type[BaseException], function: Callable[..., Any], *args: Any, what: str, hint: str = "",
    shapes: Sequence[Sequence[int]] = (), **kwargs: Any
) -> None:
    """Fail unless calling `function(*args, **kwargs)` raises `exception` (whose message names every shape in
    `shapes`, if given)."""
    try:
        function(*args, **kwargs)
    except NotImplementedError:
        raise  # a stub is not an answer, even where RuntimeError (its parent) is expected
    except exception as error:
        missing = [tuple(shape) for shape in shapes if not _mentions_shape(str(error), shape)]
        if missing:
            raise AssertionError(_with_hint(
                f"{what}: the {exception.__name__} must name the shapes {', '.join(map(str, missing))}; "
                f"its message was {str(error)!r}", hint)) from None
        return
    except Exception as error:  # a different error is a mistake worth naming
        raise AssertionError(_with_hint(
            f"{what}: expected {exception.__name__}, got {type(error).__name__}: {error}", hint)) from None
    raise AssertionError(_with_hint(f"{what}: expected {exception.__name__}, but nothing was raised", hint))


def expect_true(condition: bool, message: str, hint: str = "") -> None:
    """Fail with `message` unless `condition` holds."""
    if not condition:
        raise AssertionError(_with_hint(message, hint))


@contextmanager
def explain(what: str, hint: str = "") -> Iterator[None]:
    """Turn an error raised inside the block into a check failure that says what was being done, with the hint.

    A raw PyTorch error (a shape mismatch deep inside a layer, say) becomes one line naming the call that failed,
    followed by the hint; failed checks and NotImplementedError (not answered yet) pass through unchanged."""
    try:
        yield
    except (AssertionError, NotImplementedError):
        raise
    except Exception as error:  # noqa: BLE001 (any error of the student's code is worth explaining)
        message = " ".join(str(error).split())[:300]
        raise AssertionError(_with_hint(f"{what}: raised {type(error).__name__}: {message}", hint)) from None


def passed(exercise: str) -> None:
    """Say that every visible check of an exercise passed (the grader also runs hidden tests)."""
    print(f"OK: {exercise}: all visible checks passed.")
