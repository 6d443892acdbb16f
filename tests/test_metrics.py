"""PSNR / SSIM / masked PSNR against scikit-image and known answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from srda import metrics
from srda.metrics import mask_psnr, psnr, psnr_ssim_table, ssim


def _sk_ssim(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    return structural_similarity(
        a,
        b,
        data_range=data_range,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
    )


def _pairs(kind: str, shape: tuple[int, ...], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if kind == "random":
        hr = rng.random(shape)
    else:  # smooth images: blurred noise, the regime of real SR outputs
        hr = ndimage.gaussian_filter(rng.random(shape), sigma=(0, 3, 3))
        hr = (hr - hr.min()) / (hr.max() - hr.min())
    sr = np.clip(hr + 0.05 * rng.standard_normal(shape), 0, 1)
    return sr, hr


def _crop(x: np.ndarray, c: int) -> np.ndarray:
    return x[..., c : x.shape[-2] - c, c : x.shape[-1] - c]


@pytest.mark.parametrize("kind", ["random", "smooth"])
@pytest.mark.parametrize(("shape", "crop"), [((4, 32, 32), 0), ((3, 37, 29), 4), ((2, 23, 40), 2)])
def test_against_skimage(kind, shape, crop):
    sr, hr = _pairs(kind, shape)
    got_p, got_s = psnr(sr, hr, crop=crop), ssim(sr, hr, crop=crop)
    assert got_p.dtype == np.float64 and got_p.shape == (shape[0],)
    assert got_s.dtype == np.float64 and got_s.shape == (shape[0],)
    a, b = _crop(sr, crop), _crop(hr, crop)
    want_p = [peak_signal_noise_ratio(b[i], a[i], data_range=1.0) for i in range(shape[0])]
    want_s = [_sk_ssim(a[i], b[i]) for i in range(shape[0])]
    np.testing.assert_allclose(got_p, want_p, rtol=0, atol=1e-6)
    np.testing.assert_allclose(got_s, want_s, rtol=0, atol=1e-6)


def test_float32_inputs_are_scored_in_float64():
    sr, hr = _pairs("smooth", (3, 24, 24), seed=1)
    sr32, hr32 = sr.astype(np.float32), hr.astype(np.float32)
    got = ssim(sr32, hr32)
    want = [_sk_ssim(sr32[i].astype(np.float64), hr32[i].astype(np.float64)) for i in range(3)]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


def test_other_data_range():
    sr, hr = _pairs("random", (2, 20, 20), seed=2)
    sr, hr = np.round(sr * 255), np.round(hr * 255)
    np.testing.assert_allclose(
        ssim(sr, hr, data_range=255.0), [_sk_ssim(sr[i], hr[i], 255.0) for i in range(2)], atol=1e-6
    )
    np.testing.assert_allclose(
        psnr(sr, hr, data_range=255.0),
        [peak_signal_noise_ratio(hr[i], sr[i], data_range=255.0) for i in range(2)],
        atol=1e-6,
    )


def test_chunked_threaded_path_and_memmap(tmp_path, monkeypatch):
    # Tiny chunks force many blocks through the thread pool.
    monkeypatch.setattr(metrics, "_CHUNK_PIXELS", 700)
    monkeypatch.setattr(metrics, "_workers", lambda: 3)
    sr, hr = _pairs("smooth", (13, 20, 18), seed=3)
    path = tmp_path / "sr.npy"
    np.save(path, sr.astype(np.float32))
    mm = np.load(path, mmap_mode="r")
    ref = mm.astype(np.float64)
    np.testing.assert_allclose(
        ssim(mm, hr, crop=2),
        [_sk_ssim(_crop(ref[i], 2), _crop(hr[i], 2)) for i in range(13)],
        atol=1e-6,
    )
    np.testing.assert_allclose(
        psnr(mm, hr), [peak_signal_noise_ratio(hr[i], ref[i], data_range=1.0) for i in range(13)]
    )


def test_known_answers():
    hr = np.zeros((2, 16, 16))
    sr = np.full((2, 16, 16), 0.1)  # MSE 0.01
    np.testing.assert_allclose(psnr(sr, hr), [20.0, 20.0], atol=1e-12)
    assert psnr(sr, hr, data_range=2.0)[0] == pytest.approx(10 * np.log10(400.0))
    same = np.random.default_rng(4).random((3, 16, 16))
    assert np.all(np.isposinf(psnr(same, same)))
    np.testing.assert_allclose(ssim(same, same), 1.0, atol=1e-12)


def test_single_image_gives_a_scalar():
    sr, hr = _pairs("random", (20, 20), seed=5)
    p, s = psnr(sr, hr), ssim(sr, hr, crop=2)
    assert np.ndim(p) == 0 and np.ndim(s) == 0
    assert float(s) == pytest.approx(_sk_ssim(_crop(sr, 2), _crop(hr, 2)), abs=1e-6)


def test_crop_is_applied():
    hr = np.zeros((1, 20, 20))
    sr = hr.copy()
    sr[:, :3, :] = 1.0  # error only in the border
    assert np.isposinf(psnr(sr, hr, crop=3)[0])
    assert np.isfinite(psnr(sr, hr, crop=2)[0])


def test_torch_tensors_are_accepted():
    torch = pytest.importorskip("torch")
    sr, hr = _pairs("random", (2, 16, 16), seed=6)
    np.testing.assert_allclose(psnr(torch.from_numpy(sr), torch.from_numpy(hr)), psnr(sr, hr))


def test_errors_name_the_problem():
    a = np.zeros((2, 16, 16))
    with pytest.raises(ValueError, match=r"\(2, 16, 16\).*\(2, 16, 17\)"):
        psnr(a, np.zeros((2, 16, 17)))
    with pytest.raises(ValueError, match="shape"):
        ssim(np.zeros((1, 1, 16, 16)), np.zeros((1, 1, 16, 16)))
    bad = a.copy()
    bad[1, 3, 3] = np.nan
    with pytest.raises(ValueError, match="sr contains NaN.*index 1"):
        psnr(bad, a)
    with pytest.raises(ValueError, match="hr contains NaN"):
        ssim(a, bad)
    with pytest.raises(ValueError, match="11x11"):
        ssim(a, a, crop=3)  # 10x10 left
    with pytest.raises(ValueError, match="crop"):
        psnr(a, a, crop=-1)
    with pytest.raises(ValueError, match="data_range"):
        psnr(a, a, data_range=0)


def test_mask_psnr():
    sr, hr = _pairs("random", (3, 16, 16), seed=7)
    full = np.ones((16, 16), bool)
    np.testing.assert_allclose(mask_psnr(sr, hr, full), psnr(sr, hr), atol=1e-12)
    roi = np.zeros((3, 16, 16), bool)
    roi[0, 2:6, 3:9] = True
    roi[1, 10, 10] = True  # image 2 keeps an empty mask
    got = mask_psnr(sr, hr, roi)
    want0 = 10 * np.log10(1.0 / np.mean((sr[0, 2:6, 3:9] - hr[0, 2:6, 3:9]) ** 2))
    want1 = 10 * np.log10(1.0 / (sr[1, 10, 10] - hr[1, 10, 10]) ** 2)
    np.testing.assert_allclose(got[:2], [want0, want1], atol=1e-9)
    assert np.isnan(got[2])
    with pytest.raises(ValueError, match="mask shape"):
        mask_psnr(sr, hr, np.ones((16, 15), bool))


def test_table_keys():
    sr, hr = _pairs("random", (2, 16, 16), seed=8)
    table = psnr_ssim_table(sr, hr, crop=1)
    assert set(table) == {"psnr", "ssim"}
    np.testing.assert_array_equal(table["ssim"], ssim(sr, hr, crop=1))


def test_mask_ssim_is_the_mean_of_skimages_map_inside_the_mask():
    from skimage.metrics import structural_similarity

    from srda.metrics import mask_ssim

    rng = np.random.default_rng(3)
    hr = rng.random((3, 40, 40))
    sr = np.clip(hr + 0.1 * rng.standard_normal(hr.shape), 0, 1)
    mask = np.zeros(hr.shape, bool)
    mask[:, 12:25, 8:30] = True
    mask[1] = False  # no region on this image: NaN
    got = mask_ssim(sr, hr, mask, crop=4)
    for i in (0, 2):
        _, smap = structural_similarity(
            hr[i, 4:-4, 4:-4],
            sr[i, 4:-4, 4:-4],
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=1.0,
            full=True,
        )
        inside = mask[i, 4:-4, 4:-4][5:-5, 5:-5]
        assert got[i] == pytest.approx(smap[5:-5, 5:-5][inside].mean(), abs=1e-9)
    assert np.isnan(got[1])
    full = mask_ssim(sr, hr, np.ones((40, 40), bool), crop=4)
    assert np.allclose(full, ssim(sr, hr, crop=4), atol=1e-12)


def test_scores_inside_each_region_of_interest():
    import pandas as pd

    from srda.evaluate import score_images

    rng = np.random.default_rng(4)
    hr = rng.random((2, 32, 32)).astype(np.float32)
    sr = hr.copy()
    sr[:, 16:, :] += 0.2  # error only in the lower half
    roi = np.zeros(hr.shape, np.uint8)
    roi[:, 4:12, 4:28] = 1  # upper half: exact
    roi[:, 20:28, 4:28] = 2  # lower half: wrong by 0.2
    meta = pd.DataFrame({"index": [0, 1], "subject": ["a", "b"]})
    out = score_images(sr, hr, meta, 4, roi, {"1": "hippocampus", "2": "lateral ventricles"})
    assert np.isinf(out["psnr_hippocampus"]).all()
    assert out["psnr_lateral_ventricles"].to_numpy() == pytest.approx(
        [-10 * np.log10(0.04)] * 2, abs=1e-4
    )
    assert {"ssim_hippocampus", "ssim_lateral_ventricles"} <= set(out.columns)
