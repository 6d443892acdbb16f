import numpy as np
import pytest

from srda.data.slicing import image_to_hr, normalise, volume_to_slices


def _head(shape=(40, 50, 30)):
    """An ellipsoid 'head' with a bright marker in its anterior, left part."""
    x, y, z = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    vol = ((x / 0.8) ** 2 + (y / 0.9) ** 2 + (z / 0.9) ** 2 < 1).astype(np.float32) * 100
    vol[8:12, 38:42, 13:17] = 300  # left (low x), anterior (high y), mid z
    mask = np.zeros(shape, np.int16)
    mask[8:12, 38:42, 13:17] = 1
    return vol, mask


def test_axial_slices_are_square_in_range_and_oriented():
    vol, mask = _head()
    sl = volume_to_slices(vol, (1.0, 1.0, 1.0), "axial", hr_size=32, mask=mask)
    assert sl.images.shape[1:] == (32, 32) and sl.images.dtype == np.float32
    assert 0 <= sl.images.min() and sl.images.max() <= 1
    assert sl.roi.shape == sl.images.shape and set(np.unique(sl.roi)) <= {0, 1}
    marked = [i for i, k in enumerate(sl.slice_index) if 13 <= k < 17]
    rows, cols = np.nonzero(sl.roi[marked[0]])
    assert rows.mean() < 16 and cols.mean() < 16  # anterior at the top, left on the left


def test_enough_brain_and_thinning():
    vol, _ = _head()
    every = volume_to_slices(vol, (1.0, 1.0, 1.0), hr_size=16, min_brain_fraction=0.0)
    some = volume_to_slices(vol, (1.0, 1.0, 1.0), hr_size=16, min_brain_fraction=0.6)
    assert len(some.slice_index) < len(every.slice_index)
    thin = volume_to_slices(vol, (1.0, 1.0, 1.0), hr_size=16, slices_per_volume=5)
    assert len(thin.slice_index) == 5 and np.all(np.diff(thin.slice_index) > 0)
    assert thin.roi is None


def test_anisotropic_voxels_give_square_pixels():
    vol, _ = _head((40, 40, 20))
    # 1 mm x 2 mm in plane; radii 0.8 (x) and 0.9 (y): height / width = 2 * 0.9 / 0.8.
    sl = volume_to_slices(vol, (1.0, 2.0, 1.0), hr_size=32, min_brain_fraction=0.9)
    fg = sl.images[0] > 0.1
    height = np.ptp(np.nonzero(fg.any(axis=1))[0])
    width = np.ptp(np.nonzero(fg.any(axis=0))[0])
    assert height / width == pytest.approx(2 * 0.9 / 0.8, rel=0.15)


@pytest.mark.parametrize("plane", ["coronal", "sagittal"])
def test_other_planes(plane):
    vol, _ = _head()
    sl = volume_to_slices(vol, (1.0, 1.0, 1.0), plane, hr_size=24)
    assert sl.images.shape[1:] == (24, 24)


def test_normalise_clips_at_percentiles_and_refuses_constant_volumes():
    data = np.arange(1000, dtype=np.float32)
    out = normalise(data, (1, 99))
    assert out.min() == 0 and out.max() == 1
    with pytest.raises(ValueError, match="constant"):
        normalise(np.ones(10), (1, 99))


def test_2d_image_is_padded_square_and_resized():
    image = np.zeros((208, 176), np.float32)
    image[50:150, 40:130] = 0.7
    mask = np.zeros((208, 176), np.uint8)
    mask[90:110, 60:80] = 2
    sl = image_to_hr(image, 64, mask)
    assert sl.images.shape == (1, 64, 64) and sl.roi.shape == (1, 64, 64)
    assert sl.images[0, 32, 32] == pytest.approx(0.7, abs=0.01)
    assert set(np.unique(sl.roi)) == {0, 2}
    # Rows stay rows: the lesion's row centre maps to (100 / 208) * 64.
    rows, _ = np.nonzero(sl.roi[0])
    assert rows.mean() == pytest.approx(100 / 208 * 64, abs=2)


def test_pixel_mm_is_the_cropped_extent_over_hr_size():
    vol = np.zeros((40, 40, 10), np.float32)
    vol[10:30, 5:35, :] = 1.0  # 20 x 30 voxels of head
    sl = volume_to_slices(vol, (2.0, 2.0, 3.0), "axial", hr_size=32, min_brain_fraction=0.0)
    # the crop keeps a 2-voxel margin: 24 x 34 voxels of 2 mm, the longer side spans 32 pixels
    assert sl.pixel_mm == pytest.approx(34 * 2.0 / 32)
    coronal = volume_to_slices(vol, (2.0, 2.0, 3.0), "coronal", hr_size=32)
    assert coronal.pixel_mm == pytest.approx(24 * 2.0 / 32)  # rows 8..31 by 10 slices of 3 mm


def test_2d_pixel_mm_needs_the_source_pixel_size():
    image = np.random.default_rng(0).random((208, 176)).astype(np.float32)
    assert np.isnan(image_to_hr(image, 64).pixel_mm)
    assert image_to_hr(image, 64, source_pixel_mm=1.0).pixel_mm == pytest.approx(208 / 64)
