import gzip

import numpy as np
import pytest
from PIL import Image

from skmedimg.utils import ImageReadError, read_masks, read_volume

nib = pytest.importorskip("nibabel")


def _save_nifti(path, data, affine=None):
    nib.save(nib.Nifti1Image(data, np.eye(4) if affine is None else affine), path)
    return str(path)


# --------------------------------------------------------------------------
# read_volume
# --------------------------------------------------------------------------


def test_3d_volume_keeps_nibabel_order_and_gets_one_channel(tmp_path):
    data = np.arange(5 * 4 * 3, dtype=np.int16).reshape(5, 4, 3)
    path = _save_nifti(tmp_path / "t1.nii.gz", data)
    vol = read_volume(path)
    assert vol.shape == (5, 4, 3, 1)
    assert vol.dtype == np.float32
    # no transposing: voxel (i, j, k) of the file is vol[i, j, k, 0]
    np.testing.assert_array_equal(vol[..., 0], data.astype(np.float32))


def test_4d_multimodal_volume_is_channels_last(tmp_path):
    data = np.random.default_rng(0).normal(size=(6, 5, 4, 3)).astype(np.float32)
    path = _save_nifti(tmp_path / "mri.nii", data)
    vol = read_volume(path, dtype=np.float64)
    assert vol.shape == (6, 5, 4, 3)
    assert vol.dtype == np.float64
    np.testing.assert_allclose(vol, data, rtol=1e-6)


def test_2d_nifti_and_empty_time_axis(tmp_path):
    flat = _save_nifti(tmp_path / "slice.nii.gz", np.ones((7, 8), np.uint8))
    assert read_volume(flat).shape == (7, 8, 1)
    five = np.zeros((4, 4, 3, 1, 2), np.float32)
    five[..., 1] = 2.0
    vol = read_volume(_save_nifti(tmp_path / "five.nii.gz", five))
    assert vol.shape == (4, 4, 3, 2)
    assert vol[..., 1].min() == 2.0


def test_scaling_is_applied(tmp_path):
    img = nib.Nifti1Image(np.full((3, 3, 3), 10, np.int16), np.eye(4))
    img.header.set_slope_inter(0.5, 1.0)
    path = str(tmp_path / "scaled.nii.gz")
    nib.save(img, path)
    np.testing.assert_allclose(read_volume(path), 6.0)


def test_nan_volume_is_an_error_naming_the_file(tmp_path):
    data = np.zeros((4, 4, 4), np.float32)
    data[1, 2, 3] = np.nan
    path = _save_nifti(tmp_path / "bad_nan.nii.gz", data)
    with pytest.raises(ImageReadError, match="bad_nan.nii.gz: 1 voxel") as info:
        read_volume(path)
    assert info.value.failures[0][1] == path


def test_corrupt_and_truncated_files_are_errors_naming_the_file(tmp_path):
    junk = tmp_path / "junk.nii.gz"
    junk.write_bytes(gzip.compress(b"not a nifti header at all" * 20))
    with pytest.raises(ImageReadError, match="junk.nii.gz: not a readable NIfTI"):
        read_volume(junk)
    good = _save_nifti(tmp_path / "good.nii.gz", np.ones((20, 20, 20), np.float32))
    truncated = tmp_path / "cut.nii.gz"
    truncated.write_bytes(open(good, "rb").read()[:200])
    with pytest.raises(ImageReadError, match="cut.nii.gz"):
        read_volume(truncated)


def test_non_nifti_and_missing_paths(tmp_path):
    png = tmp_path / "photo.png"
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(png)
    with pytest.raises(ImageReadError, match="photo.png: read_volume reads NIfTI"):
        read_volume(png)
    with pytest.raises(FileNotFoundError, match="nowhere.nii.gz"):
        read_volume(tmp_path / "nowhere.nii.gz")


def test_too_many_axes(tmp_path):
    path = _save_nifti(tmp_path / "six.nii", np.zeros((2, 2, 2, 2, 2, 2), np.uint8))
    with pytest.raises(ImageReadError, match="six.nii: expected a 2-D, 3-D or 4-D"):
        read_volume(path)


# --------------------------------------------------------------------------
# read_masks
# --------------------------------------------------------------------------


def test_masks_from_png_gif_tiff_keep_their_values(tmp_path):
    mask = np.zeros((6, 5), np.uint8)
    mask[1:3, 1:4] = 255
    paths = []
    for ext in ("png", "gif", "tif"):
        path = tmp_path / f"vessels.{ext}"
        Image.fromarray(mask).save(path)
        paths.append(str(path))
    out = read_masks(paths)
    assert out.shape == (3, 6, 5)
    assert out.dtype.kind == "u"
    for m in out:
        np.testing.assert_array_equal(m, mask)
    binary = read_masks(paths, binarize=True)
    np.testing.assert_array_equal(binary[0], mask // 255)
    assert set(np.unique(binary)) == {0, 1}


def test_palette_mask_gives_indices(tmp_path):
    labels = np.array([[0, 1, 2], [3, 2, 1]], np.uint8)
    img = Image.fromarray(labels, mode="P")
    img.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 756)
    path = tmp_path / "labels.png"
    img.save(path)
    np.testing.assert_array_equal(read_masks(path), labels)


def test_gray_rgb_mask_is_accepted_colour_mask_is_refused(tmp_path):
    gray = np.zeros((4, 4, 3), np.uint8)
    gray[1, 1] = 7
    Image.fromarray(gray).save(tmp_path / "gray_rgb.png")
    np.testing.assert_array_equal(read_masks(tmp_path / "gray_rgb.png"), gray[..., 0])
    colour = gray.copy()
    colour[2, 2] = (255, 0, 0)
    Image.fromarray(colour).save(tmp_path / "colour.png")
    with pytest.raises(ImageReadError, match="colour.png: colour \\(RGB\\) mask"):
        read_masks([tmp_path / "gray_rgb.png", tmp_path / "colour.png"])


def test_nifti_masks_integer_and_float_storage(tmp_path):
    labels = np.zeros((5, 4, 3), np.uint8)
    labels[1:3, 1:3, 1] = 3
    a = _save_nifti(tmp_path / "a.nii.gz", labels)
    b = _save_nifti(tmp_path / "b.nii.gz", labels.astype(np.float32)[..., None])
    out = read_masks([a, b])
    assert out.shape == (2, 5, 4, 3)
    assert out.dtype.kind in "iu"
    np.testing.assert_array_equal(out[0], labels)
    np.testing.assert_array_equal(out[1], labels)


def test_masks_of_different_shapes_give_a_list(tmp_path):
    Image.fromarray(np.ones((3, 4), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.ones((5, 2), np.uint8)).save(tmp_path / "b.png")
    out = read_masks([tmp_path / "a.png", tmp_path / "b.png"])
    assert isinstance(out, list)
    assert [m.shape for m in out] == [(3, 4), (5, 2)]


def test_bad_masks_are_all_named_and_good_ones_kept(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(np.ones((3, 3), np.uint8)).save(good)
    broken = tmp_path / "broken.gif"
    broken.write_bytes(b"GIF89a but nothing else")
    frac = _save_nifti(tmp_path / "frac.nii.gz", np.full((2, 2, 2), 0.5, np.float32))
    nan = np.zeros((2, 2, 2), np.float32)
    nan[0, 0, 0] = np.nan
    nanpath = _save_nifti(tmp_path / "nan.nii.gz", nan)
    with pytest.raises(ImageReadError) as info:
        read_masks([good, broken, frac, nanpath])
    message = str(info.value)
    assert "3 of 4 image(s)" in message
    assert "broken.gif: not a readable image" in message
    assert "frac.nii.gz: mask holds non-integer values" in message
    assert "nan.nii.gz: mask holds NaN" in message
    assert [f[0] for f in info.value.failures] == [1, 2, 3]
    assert info.value.images[0] is not None
    assert info.value.images[1] is None


def test_unsupported_mask_extension(tmp_path):
    path = tmp_path / "mask.jpg"
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(path)
    with pytest.raises(ImageReadError, match="mask.jpg: unsupported mask format"):
        read_masks([path])


def test_in_memory_masks_follow_the_same_rules(tmp_path):
    labels = np.array([[0, 1, 2], [3, 2, 1]], np.uint8)
    Image.fromarray(labels).save(tmp_path / "labels.png")
    out = read_masks([tmp_path / "labels.png", labels.astype(np.float64), labels > 1])
    assert out.shape == (3, 2, 3) and out.dtype.kind in "iu"
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_array_equal(out[2], labels > 1)
    # an array with the sample axis first is a sequence of masks
    np.testing.assert_array_equal(read_masks(np.stack([labels, labels])), [labels] * 2)
    frac = np.full((2, 3), 0.5)
    nan = np.zeros((2, 3))
    nan[0, 0] = np.nan
    with pytest.raises(ImageReadError) as info:
        read_masks([labels, frac, tmp_path / "labels.png", nan, np.full((2, 3), "a")])
    message = str(info.value)
    assert "3 of 5 image(s)" in message
    assert "item 1 (ndarray): mask holds non-integer values" in message
    assert "item 3 (ndarray): mask holds NaN" in message
    assert "item 4 (ndarray): mask data type <U1 is not numeric" in message
    assert [f[0] for f in info.value.failures] == [1, 3, 4]
    np.testing.assert_array_equal(info.value.images[2], labels)
    assert info.value.images[1] is None


# --------------------------------------------------------------------------
# Real data
# --------------------------------------------------------------------------


def test_real_brats_patch(shared_data):
    root = shared_data / "brats_patches"
    if not root.is_dir():
        pytest.skip(f"{root} is absent")
    vol = read_volume(root / "imagesTr" / "BRATS_009_p01.nii.gz")
    assert vol.shape == (160, 160, 16, 4)
    assert np.isfinite(vol).all() and vol.std() > 0
    mask = read_masks(root / "labelsTr" / "BRATS_009_p01.nii.gz")
    assert mask.shape == (160, 160, 16)
    assert set(np.unique(mask)) <= {0, 1, 2, 3}


def test_real_drive_masks(shared_data):
    root = shared_data / "drive_training"
    if not root.is_dir():
        pytest.skip(f"{root} is absent")
    masks = read_masks([root / "1st_manual" / "21_manual1.gif"])
    assert masks.shape == (1, 584, 565)
    assert set(np.unique(masks)) == {0, 255}
