"""``srda-bench upscale``: geometry, intensities, 2D images and bad input (all fast, CPU)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import baselines  # noqa: F401  (registers every architecture)
from srda import registry
from srda.cli import main
from srda.data.slicing import _to_display
from srda.errors import InputError
from srda.run import save_sr_model
from srda.upscale import (
    SRModel,
    from_display,
    load_sr_model,
    upsampled_affine,
    upscale_file,
    upscale_volume,
)

S = 4
# LAS, voxel 1.2 x 1.0 x 2.0 mm, off-centre origin.
LAS = np.array(
    [[-1.2, 0, 0, 40.0], [0, 1.0, 0, -25.0], [0, 0, 2.0, -12.0], [0, 0, 0, 1]], dtype=float
)
# Axes permuted and flipped: array axis 0 runs superior->inferior (axial normal), 1 is R->L,
# 2 is P->A; codes ('I', 'L', 'A').
PERMUTED = np.array(
    [[0, -1.1, 0, 30.0], [0, 0, 0.9, -20.0], [-2.5, 0, 0, 35.0], [0, 0, 0, 1]], dtype=float
)


def _checkpoint(path: Path, arch: str = "bicubic", clip=(0.5, 99.5), **kw) -> Path:
    torch.manual_seed(0)
    net = registry.build(arch, scale=S, channels=1, size="tiny")
    settings = {
        "name": arch,
        "arch": arch,
        "channels": 1,
        "size": "tiny",
        "clip_percentiles": list(clip),
        **kw,
    }
    save_sr_model(net, settings, S, path)
    return path


def _save_nifti(path: Path, data: np.ndarray, affine: np.ndarray) -> Path:
    img = nib.Nifti1Image(data.astype(np.float32), affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    nib.save(img, str(path))
    return path


def _world(affine: np.ndarray, ijk: np.ndarray) -> np.ndarray:
    return (affine[:3, :3] @ np.asarray(ijk, float).T).T + affine[:3, 3]


def _com_world(img: nib.Nifti1Image) -> np.ndarray:
    data = np.asarray(img.dataobj, dtype=np.float64)
    w = np.clip(data - np.median(data), 0, None)
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in data.shape], indexing="ij"), -1)
    com = (ijk * w[..., None]).reshape(-1, 3).sum(0) / w.sum()
    return _world(img.affine, com)


def _blob_volume(shape: tuple[int, int, int], centre: tuple[float, float, float]) -> np.ndarray:
    idx = np.meshgrid(*[np.arange(n, dtype=float) for n in shape], indexing="ij")
    r2 = sum((g - c) ** 2 for g, c in zip(idx, centre, strict=True))
    return (100.0 + 800.0 * np.exp(-r2 / (2 * 2.0**2))).astype(np.float32)


@pytest.mark.parametrize(
    ("affine", "shape", "through"), [(LAS, (21, 17, 7), 2), (PERMUTED, (6, 19, 15), 0)]
)
def test_volume_shape_and_overlay(tmp_path, affine, shape, through):
    model = _checkpoint(tmp_path / "sr_model.pt", clip=(0.0, 100.0))
    centre = tuple(0.37 * n + 0.3 for n in shape)
    src = _save_nifti(tmp_path / "in.nii.gz", _blob_volume(shape, centre), affine)
    dst = tmp_path / "sub" / "out.nii.gz"
    argv = ["upscale", "--model", str(model), str(src), str(dst), "--device", "cpu"]
    assert main([*argv, "--batch-size", "3"]) == 0

    inp, out = nib.load(str(src)), nib.load(str(dst))
    want = tuple(n if i == through else n * S for i, n in enumerate(shape))
    assert out.shape == want
    assert out.get_data_dtype() == np.float32
    assert int(out.header["qform_code"]) == 1 and int(out.header["sform_code"]) == 1
    zin, zout = np.array(inp.header.get_zooms()), np.array(out.header.get_zooms())
    ratio = np.where(np.arange(3) == through, 1.0, S)
    np.testing.assert_allclose(zin / zout, ratio, rtol=1e-5)
    np.testing.assert_allclose(out.header.get_qform(), out.header.get_sform(), atol=1e-4)

    # Field-of-view corners (outer voxel edges in-plane, voxel centres through-plane) coincide.
    n_in, n_out = np.array(shape), np.array(want)
    for corner in np.ndindex(2, 2, 2):
        c = np.array(corner, dtype=float)
        inplane = np.arange(3) != through
        ijk_in = np.where(inplane, c * n_in - 0.5, c * (n_in - 1))
        ijk_out = np.where(inplane, c * n_out - 0.5, c * (n_out - 1))
        np.testing.assert_allclose(
            _world(out.affine, ijk_out), _world(inp.affine, ijk_in), atol=1e-4
        )
    # The marked structure lands where it was (well under a voxel: 0.1 mm).
    np.testing.assert_allclose(_com_world(out), _com_world(inp), atol=0.1)


def test_intensities_of_a_smooth_volume(tmp_path):
    model = _checkpoint(tmp_path / "sr_model.pt")
    shape = (24, 20, 5)

    def f(i, j, k):  # smooth, in scanner units (not [0, 1])
        return 1500.0 + 400.0 * np.sin(i / 6.0) * np.cos(j / 5.0) + 30.0 * k

    src = _save_nifti(tmp_path / "in.nii", f(*np.indices(shape).astype(float)), LAS)
    dst = tmp_path / "out.nii"
    upscale_file(model, src, dst, device="cpu", batch_size=2)
    out = np.asarray(nib.load(str(dst)).dataobj)

    data = np.asarray(nib.load(str(src)).dataobj)
    lo, hi = np.percentile(data, (0.5, 99.5))
    old = (np.arange(shape[0] * S) + 0.5) / S - 0.5, (np.arange(shape[1] * S) + 0.5) / S - 0.5
    ii, jj, kk = np.meshgrid(*old, np.arange(shape[2]), indexing="ij")
    expected = np.clip(f(ii, jj, kk), lo, hi)
    m = 2 * S  # bicubic edge handling differs from the analytic function at the border
    err = np.abs(out[m:-m, m:-m] - expected[m:-m, m:-m])
    assert err.max() < 0.01 * (hi - lo)
    assert out.min() >= lo - 1e-3 and out.max() <= hi + 1e-3  # clipped as in training


def test_slices_reach_the_net_in_display_orientation(tmp_path):
    """The net sees what training saw: anterior at the top, the patient's left on the left."""

    class Spy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.seen: list[torch.Tensor] = []

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.seen.append(x.clone())
            return x.repeat_interleave(S, -2).repeat_interleave(S, -1)

    data = np.zeros((20, 16, 3), np.float32)  # LAS: high index 0 = left, high index 1 = anterior
    data[17:19, 12:14, :] = 1.0
    src = _save_nifti(tmp_path / "in.nii.gz", data, LAS)
    spy = Spy()
    model = SRModel(spy, tmp_path / "spy.pt", "spy", "spy", S, 1, "axial", (0.0, 100.0))
    upscale_volume(model, src, tmp_path / "out.nii.gz", torch.device("cpu"), batch_size=2)
    seen = torch.cat(spy.seen)[:, 0].numpy()
    assert seen.shape == (3, 16, 20)  # (slices, A-P rows, L-R columns)
    rows, cols = np.nonzero(seen[0] > 0.5)
    assert rows.max() < 4 and cols.max() < 3  # top-left corner
    canon = nib.as_closest_canonical(nib.load(str(src))).get_fdata()
    np.testing.assert_array_equal(seen, _to_display(canon))
    out = np.asarray(nib.load(str(tmp_path / "out.nii.gz")).dataobj)
    np.testing.assert_array_equal(out[::S, ::S], data)  # nearest-neighbour spy: back in place


def test_from_display_inverts_to_display():
    slab = np.random.default_rng(0).random((5, 7, 3))
    np.testing.assert_array_equal(from_display(_to_display(slab)), slab)


def test_upsampled_affine_keeps_the_field_of_view():
    a = upsampled_affine(LAS, (0, 1), 3)
    np.testing.assert_allclose(_world(a, [-0.5, -0.5, 0]), _world(LAS, [-0.5, -0.5, 0]))
    upsampled, original = _world(a, [3 * 10 - 0.5, 0, 4]), _world(LAS, [9.5, 0.5 / 3 - 0.5, 4])
    np.testing.assert_allclose(upsampled, original)


@pytest.mark.parametrize("sixteen", [False, True])
def test_png_in_and_out(tmp_path, sixteen):
    model = _checkpoint(tmp_path / "sr_model.pt", arch="srda_base")
    rng = np.random.default_rng(1)
    h, w = 17, 23  # odd sizes
    if sixteen:
        pixels = (rng.random((h, w)) * 65535).astype(np.uint16)
    else:
        pixels = (rng.random((h, w)) * 255).astype(np.uint8)
    src = tmp_path / "in.png"
    Image.fromarray(pixels).save(src)
    dst = tmp_path / "out.png"
    assert main(["upscale", "--model", str(model), str(src), str(dst), "--device", "cpu"]) == 0
    with Image.open(dst) as im:
        assert im.size == (w * S, h * S)
        assert (im.mode in ("I;16", "I")) if sixteen else im.mode == "L"


def test_jpeg_input_bicubic_roughly_preserves_the_image(tmp_path):
    model = _checkpoint(tmp_path / "sr_model.pt")
    yy, xx = np.mgrid[0:30, 0:26]
    pixels = (127 + 100 * np.sin(xx / 5.0) * np.cos(yy / 6.0)).astype(np.uint8)
    src = tmp_path / "in.jpg"
    Image.fromarray(pixels).save(src, quality=95)
    upscale_file(model, src, tmp_path / "out.png", device="cpu")
    out = np.asarray(Image.open(tmp_path / "out.png"), dtype=float)
    assert out.shape == (30 * S, 26 * S)
    assert abs(out[::S, ::S].mean() - pixels.mean()) < 3


def _run(capsys, *argv: str) -> str:
    assert main(["upscale", *argv, "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("srda-bench upscale: error:")
    return err


def test_errors_name_the_file_and_exit_2(tmp_path, capsys):
    model = _checkpoint(tmp_path / "sr_model.pt")
    good = _save_nifti(tmp_path / "good.nii.gz", np.random.rand(8, 8, 3), LAS)
    out = tmp_path / "out.nii.gz"

    assert "nope.nii.gz" in _run(
        capsys, "--model", str(model), str(tmp_path / "nope.nii.gz"), str(out)
    )
    missing = tmp_path / "none.pt"
    assert "none.pt" in _run(capsys, "--model", str(missing), str(good), str(out))

    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x00not a torch file" * 10)
    assert "corrupt.pt" in _run(capsys, "--model", str(corrupt), str(good), str(out))

    foreign = tmp_path / "foreign.pt"
    torch.save({"format": 99, "state_dict": {}}, foreign)
    assert "format" in _run(capsys, "--model", str(foreign), str(good), str(out))

    nan = np.random.rand(8, 8, 3).astype(np.float32)
    nan[2, 3, 1] = np.nan
    nan_path = _save_nifti(tmp_path / "nan.nii.gz", nan, LAS)
    assert "NaN" in _run(capsys, "--model", str(model), str(nan_path), str(out))

    frames = tmp_path / "frames.nii.gz"
    nib.save(nib.Nifti1Image(np.random.rand(8, 8, 3, 2).astype(np.float32), LAS), str(frames))
    assert "frames" in _run(capsys, "--model", str(model), str(frames), str(out))

    fake = tmp_path / "fake.nii"
    fake.write_text("hello")
    assert "fake.nii" in _run(capsys, "--model", str(model), str(fake), str(out))
    fake_png = tmp_path / "fake.png"
    fake_png.write_text("hello")
    assert "fake.png" in _run(capsys, "--model", str(model), str(fake_png), str(tmp_path / "o.png"))

    other = tmp_path / "table.csv"
    other.write_text("a,b\n")
    assert "table.csv" in _run(capsys, "--model", str(model), str(other), str(out))

    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_weights_that_do_not_fit_the_architecture(tmp_path):
    path = _checkpoint(tmp_path / "sr_model.pt", arch="srda_base")
    payload = torch.load(path, weights_only=True)
    payload["state_dict"].pop(next(iter(payload["state_dict"])))
    torch.save(payload, path)
    with pytest.raises(InputError, match="sr_model.pt"):
        load_sr_model(path)


def test_unknown_architecture(tmp_path):
    path = _checkpoint(tmp_path / "sr_model.pt")
    payload = torch.load(path, weights_only=True)
    payload["arch"] = "no_such_net"
    torch.save(payload, path)
    with pytest.raises(InputError, match="no_such_net"):
        load_sr_model(path)
