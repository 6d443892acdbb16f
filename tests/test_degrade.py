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


# ---------------------------------------------------------------------------------------------
# The degradation registry: degrade(images, scale, kind, seed, **params). Known answers from
# signal theory (band limits, Gibbs, Rayleigh and Poisson statistics), not from the code.

from srda.data.degrade import (  # noqa: E402
    check_fits,
    degradation_kinds,
    degrade,
    fits,
    is_stochastic,
    resolve_params,
)

_NOISY = {"kspace": {"snr": 20.0}, "pet": {"dose": 0.1}}


def _cosine_image(n: int, cycles: float, mean: float = 0.5, amp: float = 0.3) -> np.ndarray:
    """(1, n, n): a cosine along the columns, ``cycles`` periods per field of view."""
    row = mean + amp * np.cos(2 * np.pi * cycles * np.arange(n) / n)
    return np.tile(row, (n, 1))[None]


def _lr_amplitude(lr_row: np.ndarray, n_hr: int, cycles: float, scale: int) -> float:
    """Least-squares amplitude of the HR cosine in an LR row, sampled where LR pixels sit
    (HR coordinate j * scale + (scale - 1) / 2, the centre of each block)."""
    x = np.arange(len(lr_row)) * scale + (scale - 1) / 2
    basis = np.stack([np.ones_like(x), np.cos(2 * np.pi * cycles * x / n_hr)], axis=1)
    (_, amp), *_ = np.linalg.lstsq(basis, lr_row.astype(np.float64), rcond=None)
    return float(amp)


def test_registry_lists_models_with_bicubic_first():
    assert degradation_kinds()[0] == "bicubic"
    assert set(degradation_kinds()) == {"bicubic", "kspace", "pet"}


@pytest.mark.parametrize(("scale", "cycles"), [(4, 5), (4, 12), (2, 20), (3, 9)])
def test_kspace_keeps_a_cosine_below_the_lr_nyquist_frequency(scale, cycles):
    n = 96 if scale == 3 else 128
    assert cycles < (n // scale) / 2  # below the LR Nyquist frequency
    lr = degrade(_cosine_image(n, cycles), scale, "kspace")
    assert lr.shape == (1, n // scale, n // scale)
    for row in (0, n // scale // 2):
        assert _lr_amplitude(lr[0, row], n, cycles, scale) == pytest.approx(0.3, rel=0.02)
    np.testing.assert_allclose(lr[0].mean(), 0.5, atol=0.01)


@pytest.mark.parametrize(("scale", "cycles"), [(4, 20), (4, 40), (2, 40)])
def test_kspace_removes_a_cosine_above_the_lr_nyquist_frequency(scale, cycles):
    n = 128
    assert cycles > (n // scale) / 2
    lr = degrade(_cosine_image(n, cycles), scale, "kspace")
    # Nothing of it is left, not even aliased: the LR image is flat at the mean.
    assert np.abs(lr - 0.5).max() < 0.02 * 0.3
    # Bicubic (which is not band-limiting) lets a visible part of the 20-cycle wave through.
    if cycles == 20:
        assert np.abs(degrade(_cosine_image(n, cycles), scale) - 0.5).max() > 0.02 * 0.3


def _edge(n: int = 128, column: int = 62, lo: float = 0.2, hi: float = 0.7) -> np.ndarray:
    img = np.full((1, n, n), lo)
    img[:, :, column:] = hi
    return img


def _overshoot(lr: np.ndarray, lo: float = 0.2, hi: float = 0.7) -> float:
    return float(max(lr.max() - hi, lo - lr.min()) / (hi - lo))


def test_kspace_edge_rings_without_window_and_not_with_hamming():
    # The Gibbs lobe of a band-limited step peaks one LR pixel from the edge (about 9% of the
    # step); an edge at HR column 62 puts the LR pixel at HR coordinate 65.5 exactly there.
    img = _edge()
    assert _overshoot(degrade(img, 4, "kspace")) > 0.05
    assert _overshoot(degrade(img, 4, "kspace", window="hamming")) < 0.02
    tukey = _overshoot(degrade(img, 4, "kspace", window="tukey"))
    hann_like = _overshoot(degrade(img, 4, "kspace", window="tukey", tukey_alpha=1.0))
    assert hann_like < 0.02 < tukey < _overshoot(degrade(img, 4, "kspace"))
    # The antialiased bicubic of the same edge does not ring like that.
    assert _overshoot(degrade(img, 4)) < 0.05


def test_kspace_keeps_intensities_on_the_hr_scale():
    for shape, scale in (((2, 64, 48), 4), ((1, 36, 40), 4), ((1, 27, 18), 3)):
        img = np.full(shape, 0.37)
        for window in (None, "hamming", "tukey"):
            np.testing.assert_allclose(
                degrade(img, scale, "kspace", window=window), 0.37, atol=1e-6
            )
    # Scale 1 keeps the whole spectrum: the image itself.
    rng = np.random.default_rng(4)
    img = rng.random((2, 20, 18))
    np.testing.assert_allclose(degrade(img, 1, "kspace"), img, atol=1e-6)


def test_kspace_noise_is_rician():
    sigma = 0.02
    # No signal: the magnitude is Rayleigh, mean sigma * sqrt(pi / 2).
    lr = degrade(np.zeros((8, 128, 128)), 2, "kspace", seed=3, snr=1 / sigma)
    assert lr.mean() == pytest.approx(sigma * math.sqrt(math.pi / 2), rel=0.03)
    # Strong signal: close to Gaussian with sd sigma around the signal.
    lr = degrade(np.full((8, 128, 128), 0.5), 2, "kspace", seed=3, snr=1 / sigma)
    assert lr.mean() == pytest.approx(0.5, abs=0.002)
    assert lr.std() == pytest.approx(sigma, rel=0.05)
    # A window filters the (k-space white) noise too: sd falls by the window's rms.
    nu = np.arange(-32, 32) / 32.0
    rms_1d = math.sqrt(np.mean((0.54 + 0.46 * np.cos(np.pi * nu)) ** 2))
    lr = degrade(np.full((8, 128, 128), 0.5), 2, "kspace", seed=3, snr=1 / sigma, window="hamming")
    assert lr.std() == pytest.approx(sigma * rms_1d**2, rel=0.05)


def _blob_image(n: int = 96, seed: int = 5) -> np.ndarray:
    """(4, n, n) brain-like images: a smooth bright disk with texture on a dark background."""
    yy, xx = np.mgrid[:n, :n] / n - 0.5
    disk = (xx**2 + yy**2 < 0.16).astype(float)
    rng = np.random.default_rng(seed)
    texture = rng.random((4, n // 8, n // 8)).repeat(8, axis=1).repeat(8, axis=2)
    return np.clip(0.05 + disk * (0.25 + 0.5 * texture), 0, 1)


def test_pet_keeps_the_image_mean():
    hr = _blob_image()
    for params in ({"full_dose_counts": None}, {"dose": 1.0}, {"dose": 0.1}):
        lr = degrade(hr, 4, "pet", seed=0, **params)
        for i in range(len(hr)):
            assert lr[i].mean() == pytest.approx(hr[i].mean(), rel=0.02)
    # Without noise the blur (mirrored borders) and the area average keep it exactly.
    lr = degrade(hr, 4, "pet", full_dose_counts=None)
    np.testing.assert_allclose(lr.mean(axis=(1, 2)), hr.mean(axis=(1, 2)), rtol=1e-6)


def test_pet_flat_image_variance_scales_as_one_over_dose():
    flat = np.full((20, 64, 64), 0.2)
    var = {d: float(degrade(flat, 4, "pet", seed=1, dose=d).var()) for d in (1.0, 0.25, 0.05)}
    # Poisson: var = v / (counts * dose) in intensity units (defaults: counts 1000).
    for d, v in var.items():
        assert v == pytest.approx(0.2 / (1000 * d), rel=0.08)
    assert var[0.05] / var[1.0] == pytest.approx(20.0, rel=0.1)
    assert var[0.25] / var[1.0] == pytest.approx(4.0, rel=0.1)


def test_pet_psf_has_the_target_fwhm():
    # A line source seen at scale 1 without noise: the profile is the applied Gaussian.
    n = 128
    line = np.zeros((1, n, n))
    line[:, :, n // 2] = 1.0
    for fwhm, hr_fwhm, voxel in ((6.0, 0.0, 1.5), (6.0, 3.6, 1.5), (8.0, 0.0, 2.0)):
        prof = degrade(
            line, 1, "pet", fwhm_mm=fwhm, hr_fwhm_mm=hr_fwhm, voxel_mm=voxel, full_dose_counts=None
        )[0, n // 2].astype(np.float64)
        x = np.arange(n) - n // 2
        sd_mm = math.sqrt((prof * x**2).sum() / prof.sum()) * voxel
        want = math.sqrt(fwhm**2 - hr_fwhm**2) / (2 * math.sqrt(2 * math.log(2)))
        assert sd_mm == pytest.approx(want, rel=0.02)


def test_pet_runs_on_its_documented_defaults():
    lr = degrade(_blob_image(), 4, "pet", seed=0, dose=0.1)
    assert lr.shape == (4, 24, 24) and lr.dtype == np.float32
    assert resolve_params("pet")["full_dose_counts"] == 1000.0
    # Lower dose, more noise against the noise-free LR.
    clean = degrade(_blob_image(), 4, "pet", full_dose_counts=None)
    err = {d: np.abs(degrade(_blob_image(), 4, "pet", dose=d) - clean).mean() for d in (1.0, 0.1)}
    assert err[0.1] > 2.5 * err[1.0]


def test_bicubic_is_downscale():
    hr = np.random.default_rng(6).random((5, 64, 48)).astype(np.float32)
    np.testing.assert_array_equal(degrade(hr, 4), downscale(hr, 4))
    np.testing.assert_array_equal(degrade(hr, 4, "bicubic", seed=9), downscale(hr, 4))
    np.testing.assert_array_equal(degrade(hr[1], 2), downscale(hr[1], 2))


@pytest.mark.parametrize("kind", ["bicubic", "kspace", "pet"])
@pytest.mark.parametrize("scale", [2, 3, 4, 8])
def test_shapes_dtype_and_range(kind, scale):
    hr = np.random.default_rng(scale).random((3, 48, 72))
    lr = degrade(hr, scale, kind, **_NOISY.get(kind, {}))
    assert lr.shape == (3, 48 // scale, 72 // scale) and lr.dtype == np.float32
    assert lr.min() >= 0.0 and lr.max() <= 1.0
    single = degrade(hr[0], scale, kind, **_NOISY.get(kind, {}))
    assert single.shape == (48 // scale, 72 // scale)


@pytest.mark.parametrize("kind", ["bicubic", "kspace", "pet"])
def test_deterministic_from_the_seed(kind):
    hr = _blob_image(64)
    params = _NOISY.get(kind, {})
    a = degrade(hr, 4, kind, seed=7, **params)
    np.testing.assert_array_equal(a, degrade(hr, 4, kind, seed=7, **params))
    other = degrade(hr, 4, kind, seed=8, **params)
    assert is_stochastic(kind, **params) == (kind != "bicubic")
    if kind == "bicubic":
        np.testing.assert_array_equal(a, other)
    else:
        assert np.abs(a - other).mean() > 1e-3
        # Each image has its own stream: degrading in chunks (first_index) changes nothing.
        parts = [
            degrade(hr[:1], 4, kind, seed=7, **params),
            degrade(hr[1:], 4, kind, seed=7, first_index=1, **params),
        ]
        np.testing.assert_array_equal(a, np.concatenate(parts))
        assert np.abs(a[0] - a[1]).mean() > 1e-3  # and the streams differ between images
    # Noise switched off: no seed dependence.
    quiet = {"kspace": {}, "pet": {"full_dose_counts": None}}.get(kind, {})
    np.testing.assert_array_equal(
        degrade(hr, 4, kind, 1, **quiet), degrade(hr, 4, kind, 2, **quiet)
    )


def test_modality_fit():
    assert fits("bicubic", "mri") and fits("bicubic", "pet")
    assert fits("kspace", "MRI") and not fits("kspace", "pet")
    assert fits("pet", "pet") and not fits("pet", "mri")
    check_fits("kspace", "mri")
    check_fits("bicubic", "pet")
    with pytest.raises(
        ValueError, match="^degradation 'kspace' models MRI acquisition; dataset modality is PET$"
    ):
        check_fits("kspace", "pet")
    with pytest.raises(
        ValueError, match="^degradation 'pet' models PET acquisition; dataset modality is MRI$"
    ):
        check_fits("pet", "mri")
    for bad in ("ct", None):
        with pytest.raises(ValueError, match="unknown modality.*mri, pet"):
            check_fits("bicubic", bad)
        with pytest.raises(ValueError, match="unknown modality"):
            fits("bicubic", bad)


@pytest.mark.parametrize(
    ("kind", "params", "match"),
    [
        ("gaussian", {}, r"unknown degradation 'gaussian'; expected one of: bicubic, kspace, pet"),
        ("bicubic", {"sigma": 1}, r"'bicubic' has no parameter 'sigma'; its parameters are: none"),
        ("pet", {"dse": 0.1}, r"no parameter 'dse'; its parameters are: voxel_mm, fwhm_mm, "),
        ("kspace", {"window": "hann"}, r"window must be None, 'hamming' or 'tukey', got 'hann'"),
        ("kspace", {"snr": 0}, r"'kspace': snr must be a number in \(0, inf\), got 0"),
        ("kspace", {"snr": "20"}, r"snr must be a number"),
        ("kspace", {"tukey_alpha": 0.3}, r"tukey_alpha applies only to window='tukey'"),
        ("kspace", {"window": "tukey", "tukey_alpha": 0}, r"tukey_alpha must be .* \(0, 1\]"),
        ("pet", {"dose": 0}, r"'pet': dose must be a number in \(0, 1\], got 0"),
        ("pet", {"dose": 1.5}, r"dose must be a number in \(0, 1\], got 1.5"),
        ("pet", {"dose": True}, r"dose must be a number"),
        ("pet", {"voxel_mm": -1}, r"voxel_mm must be a number in \(0, inf\)"),
        ("pet", {"fwhm_mm": float("nan")}, r"fwhm_mm must be a number"),
        ("pet", {"hr_fwhm_mm": 6.0}, r"hr_fwhm_mm must be a number in \[0, 6\)"),
        ("pet", {"full_dose_counts": 0}, r"full_dose_counts must be a number in \(0, inf\)"),
        ("pet", {"full_dose_counts": None, "dose": 0.5}, r"dose has no effect without counts"),
    ],
)
def test_bad_kinds_and_params_are_refused_in_one_line(kind, params, match):
    img = np.zeros((1, 16, 16))
    with pytest.raises(ValueError, match=match) as info:
        degrade(img, 4, kind, **params)
    assert "\n" not in str(info.value)


def test_params_resolve_to_defaults_and_round_trip():
    assert resolve_params("bicubic") == {}
    assert resolve_params("kspace") == {"window": None, "tukey_alpha": 0.5, "snr": None}
    assert resolve_params("kspace", window="Hamming", snr=30)["window"] == "hamming"
    assert resolve_params("kspace", window="none")["window"] is None
    full = resolve_params("pet", dose=0.25)
    assert full == {
        "voxel_mm": 1.5,
        "fwhm_mm": 6.0,
        "hr_fwhm_mm": 0.0,
        "dose": 0.25,
        "full_dose_counts": 1000.0,
    }
    img = _blob_image(32)
    for kind in degradation_kinds():
        np.testing.assert_array_equal(
            degrade(img, 4, kind, **resolve_params(kind)), degrade(img, 4, kind)
        )


def test_bad_images_scales_and_seeds_are_refused():
    for kind in degradation_kinds():
        # The shape rule and message of downscale.
        with pytest.raises(ValueError, match=r"HR shape \(5, 62, 48\) does not divide by scale 4"):
            degrade(np.zeros((5, 62, 48)), 4, kind)
        with pytest.raises(ValueError, match="positive integer"):
            degrade(np.zeros((1, 8, 8)), 2.0, kind)
        with pytest.raises(ValueError, match=r"shape \(N, H, W\) or \(H, W\)"):
            degrade(np.zeros((1, 1, 8, 8)), 2, kind)
        bad = np.zeros((3, 8, 8))
        bad[2, 0, 0] = 1.5
        with pytest.raises(ValueError, match=r"in \[0, 1\]; image 2 has values in \[0, 1.5\]"):
            degrade(bad, 2, kind)
        with pytest.raises(ValueError, match=r"image 7 has values"):
            degrade(bad, 2, kind, first_index=5)
        bad[2, 0, 0] = np.nan
        with pytest.raises(ValueError, match="image 2 has NaN or inf"):
            degrade(bad, 2, kind)
        for seed in (-1, 1.5, True):
            with pytest.raises(ValueError, match="seed must be a non-negative integer"):
                degrade(np.zeros((1, 8, 8)), 2, kind, seed=seed)
