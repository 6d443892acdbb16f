"""MATLAB-compatible bicubic imresize: reference loops, hand-derived and published values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from srda.data.degrade import (
    cubic,
    downscale,
    imresize,
    output_length,
    resize_matrix,
    upscale,
)

# ---------------------------------------------------------------------------------------------
# An independent, deliberately slow reference written from the description of MATLAB's
# imresize (contributions + resizeAlongDim): scalar loops, 1-based indices, the aux list
# [1..n, n..1] for out-of-range indices.


def _cubic_scalar(t: float) -> float:
    t = abs(t)
    if t <= 1:
        return 1.5 * t**3 - 2.5 * t**2 + 1
    if t <= 2:
        return -0.5 * t**3 + 2.5 * t**2 - 4 * t + 2
    return 0.0


def _ref_contributions(n_in: int, n_out: int, scale: float) -> list[list[tuple[int, float]]]:
    width = 4.0 / scale if scale < 1 else 4.0
    aux = list(range(1, n_in + 1)) + list(range(n_in, 0, -1))
    rows = []
    for x in range(1, n_out + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        taps = []
        for k in range(math.ceil(width) + 2):
            j = left + k
            d = u - j
            w = scale * _cubic_scalar(scale * d) if scale < 1 else _cubic_scalar(d)
            taps.append((aux[(j - 1) % len(aux)] - 1, w))
        total = sum(w for _, w in taps)
        rows.append([(src, w / total) for src, w in taps])
    return rows


def _ref_imresize(img: np.ndarray, scale: float, out_shape: tuple[int, int]) -> np.ndarray:
    h, w = img.shape
    oh, ow = out_shape
    tmp = np.zeros((oh, w))
    for i, taps in enumerate(_ref_contributions(h, oh, scale)):  # rows first
        for c in range(w):
            tmp[i, c] = sum(wt * img[src, c] for src, wt in taps)
    out = np.zeros((oh, ow))
    for j, taps in enumerate(_ref_contributions(w, ow, scale)):
        for r in range(oh):
            out[r, j] = sum(wt * tmp[r, src] for src, wt in taps)
    return out


@pytest.mark.parametrize(
    ("shape", "scale", "out_shape"),
    [
        ((16, 12), 1 / 4, (4, 3)),
        ((18, 9), 1 / 3, (6, 3)),
        ((10, 14), 1 / 2, (5, 7)),
        ((24, 16), 1 / 8, (3, 2)),
        ((13, 10), 1 / 4, (4, 3)),  # sizes that do not divide: MATLAB's ceil
        ((5, 7), 2.0, (10, 14)),
        ((4, 6), 3.0, (12, 18)),
        ((6, 5), 4.0, (24, 20)),
        ((3, 2), 8.0, (24, 16)),
    ],
)
def test_matches_reference_loops(shape, scale, out_shape):
    rng = np.random.default_rng(sum(shape))
    img = rng.random(shape)
    out = imresize(img, scale)
    assert out.shape == out_shape
    np.testing.assert_allclose(out, _ref_imresize(img, scale, out_shape), rtol=0, atol=1e-12)


def test_hand_derived_weights_for_quarter_downscale():
    # resize_matrix(8, 2, 1/4): width 16, h(d) = cubic(d/4)/4 at d = +-0.5, ..., +-7.5 (the taps
    # at +-8.5 are zero); these weights already sum to 1. Output 1 samples u = 2.5; taps left of
    # pixel 1 mirror onto pixels 1..6 and taps right of pixel 8 onto pixels 8, 7. Summed by hand
    # (all values are multiples of 1/2048, so exact in float64):
    first = np.array([286.0, 270.0, 234.5, 167.5, 88.5, 21.5, -14.0, -30.0]) / 1024.0
    mat = resize_matrix(8, 2, 0.25)
    assert mat.shape == (2, 8) and mat.dtype == np.float64
    np.testing.assert_array_equal(mat[0], first)
    np.testing.assert_array_equal(mat[1], first[::-1])  # u = 6.5 mirrors u = 2.5
    np.testing.assert_array_equal(mat.sum(axis=1), [1.0, 1.0])


def test_kernel_closed_form():
    np.testing.assert_array_equal(
        cubic(np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, -0.5])),
        [1.0, 0.5625, 0.0, -0.0625, 0.0, 0.0, 0.5625],
    )


def test_published_matlab_output():
    # MATLAB, as printed in Stack Overflow question 17380407 (2013):
    #   imresize([0 0 1 1 0], [1, 10])  (bicubic default)
    #   -> 0 -0.0234 -0.0703 0.2031 0.7969 1.0938 1.0938 0.7969 0.2031 -0.0703
    published = np.array(
        [0, -0.0234, -0.0703, 0.2031, 0.7969, 1.0938, 1.0938, 0.7969, 0.2031, -0.0703]
    )
    signal = np.array([0.0, 0.0, 1.0, 1.0, 0.0])
    # That release clamped out-of-range indices (replicating the edge pixel).
    old = resize_matrix(5, 10, 2.0, boundary="replicate") @ signal
    tol = 5.01e-5  # printed to 4 decimals
    np.testing.assert_allclose(old, published, rtol=0, atol=tol)
    # Current releases mirror ([1..n, n..1]); only the last sample, whose taps reach past the
    # edge onto pixel 4 (value 1), changes: -0.0703125 - 0.0234375 = -0.09375.
    new = imresize(signal[None, :], 2.0)[0]
    np.testing.assert_allclose(new[:-1], published[:-1], rtol=0, atol=tol)
    assert new[-1] == pytest.approx(-0.09375, abs=1e-15)


@pytest.mark.parametrize(("n_in", "n_out", "scale"), [(64, 16, 0.25), (33, 11, 1 / 3), (7, 28, 4)])
def test_rows_sum_to_one(n_in, n_out, scale):
    np.testing.assert_allclose(resize_matrix(n_in, n_out, scale).sum(axis=1), 1.0, atol=1e-14)


def test_constant_image_stays_constant():
    img = np.full((2, 32, 24), 0.37)
    np.testing.assert_allclose(downscale(img, 4), 0.37, atol=1e-6)
    np.testing.assert_allclose(upscale(img, 3), 0.37, atol=1e-12)


@pytest.mark.parametrize("s", [2, 3, 4])
def test_linear_ramp_interior_is_linear(s):
    # Keys' kernel reproduces linear functions; in-bounds samples (2 kernel radii from the
    # edges) land exactly on the ramp. Input pixel j (1-based) has value j.
    n = 48
    ramp = np.tile(np.arange(1, n + 1, dtype=np.float64), (3, 1))
    up = imresize(ramp, float(s))[0]
    u = np.arange(1, n * s + 1) / s + 0.5 * (1 - 1 / s)
    inner = (u > 3) & (u < n - 2)
    np.testing.assert_allclose(up[inner], u[inner], atol=1e-12)
    down = imresize(ramp, 1 / s)[0]
    u = np.arange(1, n // s + 1) * s + 0.5 * (1 - s)
    inner = (u - 2 * s > 1) & (u + 2 * s < n)
    assert inner.sum() > 3
    np.testing.assert_allclose(down[inner], u[inner], atol=1e-12)


def test_downscale_shapes_types_and_clipping():
    rng = np.random.default_rng(1)
    hr = rng.random((5, 64, 48)).astype(np.float32)
    hr[:, 20:30, 20:30] = 1.0  # sharp edges overshoot before clipping
    lr = downscale(hr, 4)
    assert lr.shape == (5, 16, 12) and lr.dtype == np.float32
    assert lr.min() >= 0.0 and lr.max() <= 1.0
    assert imresize(hr, 0.25).max() > 1.0  # imresize itself does not clip
    # Per-image and batched results agree (the batch path is a broadcast matmul).
    np.testing.assert_allclose(lr[2], downscale(hr[2], 4), atol=1e-7)


def test_scale_must_divide_and_be_integer():
    with pytest.raises(ValueError, match=r"\(5, 62, 48\).*scale 4"):
        downscale(np.zeros((5, 62, 48), np.float32), 4)
    with pytest.raises(ValueError, match="scale 3"):
        downscale(np.zeros((64, 64), np.float32), 3)
    for bad in (2.5, 0, True, "4"):
        with pytest.raises(ValueError, match="positive integer"):
            downscale(np.zeros((8, 8), np.float32), bad)
        with pytest.raises(ValueError, match="positive integer"):
            upscale(np.zeros((8, 8), np.float32), bad)
    with pytest.raises(ValueError):
        imresize(np.zeros(8), 2.0)
    with pytest.raises(ValueError, match="boundary"):
        resize_matrix(8, 4, 0.5, boundary="wrap")


def test_output_length_ignores_float_fuzz():
    assert output_length(99, 1 / 3) == 33
    assert output_length(10, 0.25) == 3  # ceil(2.5), as MATLAB
    assert output_length(32, 4) == 128


def test_dtypes_are_kept():
    x64 = np.random.default_rng(2).random((8, 8))
    assert imresize(x64, 2.0).dtype == np.float64
    assert imresize(x64.astype(np.float32), 2.0).dtype == np.float32
    assert imresize(np.arange(64, dtype=np.uint8).reshape(8, 8), 0.5).dtype == np.float64


def test_torch_matches_numpy_and_keeps_leading_axes():
    rng = np.random.default_rng(3)
    lr = rng.random((2, 3, 16, 12)).astype(np.float32)
    want = upscale(lr.astype(np.float64), 4)
    got = upscale(torch.from_numpy(lr), 4)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float32
    assert tuple(got.shape) == (2, 3, 64, 48)
    np.testing.assert_allclose(got.numpy(), want, atol=1e-6)
    hr = rng.random((2, 32, 24)).astype(np.float32)
    lr = downscale(torch.from_numpy(hr), 4)
    np.testing.assert_allclose(lr.numpy(), downscale(hr, 4), atol=1e-6)


def test_gradients_flow_through_torch_path():
    x = torch.rand(1, 1, 6, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: upscale(t, 2), (x,))
    y = torch.rand(2, 1, 8, 8, requires_grad=True)
    upscale(y, 4).square().sum().backward()
    assert y.grad is not None and torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0
