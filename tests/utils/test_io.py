import io
import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from skmedimg.utils import ImageReadError, check_images, read_image_sizes, read_images

RNG = np.random.default_rng(0)


def _gradient(height=20, width=30):
    return (np.add.outer(np.arange(height), np.arange(width)) * 4 % 256).astype(
        np.uint8
    )


def _save(path, img, **kwargs):
    img.save(path, **kwargs)
    return str(path)


# --------------------------------------------------------------------------
# Modes: one rule for every Pillow mode
# --------------------------------------------------------------------------


def test_l_and_rgb_are_kept(tmp_path):
    gray = _gradient()
    rgb = np.stack([gray, 255 - gray, gray // 2], axis=-1)
    paths = [
        _save(tmp_path / "g.png", Image.fromarray(gray)),
        _save(tmp_path / "c.png", Image.fromarray(rgb)),
    ]
    out = read_images(paths)
    assert isinstance(out, np.ndarray)  # same size: stacked, gray promoted
    assert out.shape == (2, 20, 30, 3)
    np.testing.assert_array_equal(out[0, ..., 0], gray)
    np.testing.assert_array_equal(out[0, ..., 2], gray)
    np.testing.assert_array_equal(out[1], rgb)


@pytest.mark.parametrize(
    "mode, channels",
    [
        ("L", 1),
        ("LA", 1),
        ("1", 1),
        ("RGB", 3),
        ("RGBA", 3),
        ("P", 3),
        ("CMYK", 3),
        ("I", 1),
        ("F", 1),
        ("I;16", 1),
    ],
)
def test_every_mode_becomes_uint8_gray_or_rgb(tmp_path, mode, channels):
    base = Image.fromarray(_gradient()).convert("RGB")
    if mode == "I;16":
        img = Image.fromarray(_gradient().astype(np.uint16) * 200)
    elif mode == "I":
        img = Image.fromarray(_gradient().astype(np.int32) * 1000)
    elif mode == "F":
        img = Image.fromarray(_gradient().astype(np.float32) * -3.5)
    else:
        img = base.convert(mode)
    out = read_images([img])
    assert out.dtype == np.uint8
    assert out.shape == (1, 20, 30, channels)
    if mode in ("I", "I;16"):
        # deep integers are min-max rescaled to the full 0..255 range
        g = _gradient().astype(float)
        expected = np.rint((g - g.min()) * 255 / (g.max() - g.min()))
        np.testing.assert_allclose(out[0, ..., 0], expected, atol=1)
    if mode == "F":
        # negative scale: min-max reverses nothing, brightest stays brightest
        assert out[0, 0, 0, 0] == 255 and out[0].min() == 0
    # a saved file of a mode gives the same pixels as the in-memory image
    if mode in ("L", "LA", "RGB", "RGBA", "P"):
        path = _save(tmp_path / "x.png", img)
        np.testing.assert_array_equal(read_images([path]), out)


def test_sixteen_bit_png_is_rescaled_by_min_max(tmp_path):
    arr = np.array([[100, 1100], [2100, 4195]], dtype=np.uint16)  # 12-bit data
    path = tmp_path / "deep.png"
    Image.fromarray(arr).save(path)
    assert Image.open(path).mode.startswith("I")
    out = read_images([str(path)])[0, ..., 0]
    expected = np.rint((arr - 100) * 255.0 / (4195 - 100)).astype(np.uint8)
    np.testing.assert_array_equal(out, expected)


def test_color_rules():
    rgb = RNG.integers(0, 256, (2, 8, 9, 3), dtype=np.uint8)
    gray = read_images(rgb, color="gray")
    assert gray.shape == (2, 8, 9, 1)
    expected = np.asarray(Image.fromarray(rgb[0]).convert("L"))
    np.testing.assert_array_equal(gray[0, ..., 0], expected)
    assert read_images(rgb[..., 0], color="rgb").shape == (2, 8, 9, 3)
    assert read_images(rgb[..., 0]).shape == (2, 8, 9, 1)


@pytest.mark.parametrize(
    "arr, expected",
    [
        (np.array([[0.0, 0.5], [1.0, 0.25]]), [[0, 128], [255, 64]]),
        (np.array([[-1.0, 0.0], [1.0, 3.0]]), [[0, 64], [128, 255]]),
        (np.array([[0, 1000], [2000, 4000]], dtype=np.uint16), [[0, 64], [128, 255]]),
        (np.array([[True, False], [False, True]]), [[255, 0], [0, 255]]),
        (np.full((2, 2), 7.0), [[0, 0], [0, 0]]),
        # a range wider than float64 holds (hi - lo overflows)
        (np.array([[-1e308, 0.0], [1e308, 5e307]]), [[0, 128], [255, 191]]),
    ],
)
def test_array_bit_depth_rule(arr, expected):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow on the way
        out = read_images([arr])
    np.testing.assert_array_equal(out[0, ..., 0], np.array(expected, dtype=np.uint8))


def test_uint8_array_at_target_size_is_returned_without_copy():
    X = RNG.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    assert read_images(X, image_size=16, color="rgb") is X


# --------------------------------------------------------------------------
# Sizes, resize modes, draft decoding, parallelism
# --------------------------------------------------------------------------


@pytest.mark.parametrize("resize_mode", ["stretch", "pad", "crop"])
def test_resize_modes_give_fixed_shape(resize_mode):
    images = [np.full((40, 20), 200, np.uint8), np.full((10, 30, 3), 90, np.uint8)]
    out = read_images(images, image_size=(16, 16), resize_mode=resize_mode)
    assert out.shape == (2, 16, 16, 3)
    tall = out[0, ..., 0]
    if resize_mode == "pad":
        # aspect kept: a 2:1 tall image fills half the width, the rest is black
        assert tall[:, 0].max() == 0 and tall[:, 8].min() == 200
    else:
        assert tall.min() == 200


def test_sizes_differ_without_target_gives_list():
    images = [np.zeros((5, 6), np.uint8), np.zeros((7, 8, 3), np.uint8)]
    out = read_images(images)
    assert isinstance(out, list)
    assert [im.shape for im in out] == [(5, 6, 1), (7, 8, 3)]


def test_jpeg_draft_decodes_large_images_at_reduced_scale(tmp_path):
    yy, xx = np.mgrid[0:800, 0:800]
    big = (127 + 100 * np.sin(xx / 40.0) * np.cos(yy / 55.0)).astype(np.uint8)
    path = _save(tmp_path / "big.jpg", Image.fromarray(big), quality=95)
    drafted = read_images([path], image_size=100)
    full = np.asarray(Image.open(path).convert("L").resize((100, 100)))
    assert drafted.shape == (1, 100, 100, 1)
    assert np.abs(drafted[0, ..., 0].astype(int) - full).mean() < 2.0


def test_parallel_and_serial_reading_agree(tmp_path):
    paths = [
        _save(
            tmp_path / f"{i}.png",
            Image.fromarray(RNG.integers(0, 256, (12, 9), dtype=np.uint8)),
        )
        for i in range(8)
    ]
    np.testing.assert_array_equal(
        read_images(paths, image_size=8, n_jobs=2), read_images(paths, image_size=8)
    )


def test_read_image_sizes_reads_headers(tmp_path):
    paths = [
        _save(tmp_path / "a.png", Image.new("L", (30, 20))),
        _save(tmp_path / "b.jpg", Image.new("RGB", (7, 11))),
    ]
    sizes = read_image_sizes(paths + [np.zeros((3, 4))], n_jobs=2)
    assert sizes.tolist() == [[20, 30], [11, 7], [3, 4]]
    assert read_image_sizes(np.zeros((2, 5, 6, 3))).tolist() == [[5, 6], [5, 6]]


def test_path_like_and_pandas_series(tmp_path):
    pd = pytest.importorskip("pandas")
    path = tmp_path / "a.png"
    Image.new("L", (4, 4), 9).save(path)
    assert read_images([path]).shape == (1, 4, 4, 1)
    assert read_images(pd.Series([str(path), str(path)])).shape == (2, 4, 4, 1)


def test_a_one_column_table_of_paths_is_its_column(tmp_path):
    # ColumnTransformer passes a one-column DataFrame for ["path"].
    pd = pytest.importorskip("pandas")
    from sklearn.compose import ColumnTransformer

    from skmedimg.preprocessing import IntensityFeatures

    paths = []
    for i in range(3):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.new("L", (4, 4), 40 * i).save(paths[-1])
    table = pd.DataFrame({"path": paths, "age": [50, 61, 72]})
    assert read_images(table[["path"]]).shape == (3, 4, 4, 1)
    features = ColumnTransformer(
        [("img", IntensityFeatures(), ["path"])], remainder="passthrough"
    ).fit_transform(table)
    expected = IntensityFeatures().fit_transform(paths)
    np.testing.assert_allclose(features[:, :-1], expected)
    with pytest.raises(ImageReadError, match="2 columns .*'path', 'age'"):
        read_images(table)


# --------------------------------------------------------------------------
# DICOM
# --------------------------------------------------------------------------


def _write_dicom(
    path, pixels, *, photometric="MONOCHROME2", slope=1.0, intercept=0.0, window=None
):
    pydicom = pytest.importorskip("pydicom")
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.RescaleSlope = slope
    ds.RescaleIntercept = intercept
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    pydicom.dcmwrite(str(path), ds, enforce_file_format=True)
    return str(path)


def test_dicom_rescale_and_window(tmp_path):
    pixels = np.array([[0, 1000], [2000, 3000]], dtype=np.uint16)
    # stored 0..3000, slope 1, intercept -1000 -> -1000..2000 HU; window 0..2000
    path = _write_dicom(
        tmp_path / "ct.dcm", pixels, intercept=-1000, window=(1000, 2000)
    )
    out = read_images([path])[0, ..., 0]
    np.testing.assert_array_equal(out, [[0, 0], [128, 255]])
    assert read_image_sizes([path]).tolist() == [[2, 2]]


def test_dicom_monochrome1_is_inverted_and_found_without_extension(tmp_path):
    pixels = np.array([[0, 100], [200, 400]], dtype=np.uint16)
    mono2 = _write_dicom(tmp_path / "a.dcm", pixels)
    mono1 = _write_dicom(tmp_path / "b_noext", pixels, photometric="MONOCHROME1")
    out = read_images([mono2, mono1])
    np.testing.assert_array_equal(out[1], 255 - out[0])
    assert out[0, 1, 1, 0] == 255


def test_dicom_size_and_frames_are_checked_before_decoding(tmp_path, monkeypatch):
    # A small compressed DICOM can claim gigapixels: its header decides.
    pydicom = pytest.importorskip("pydicom")
    big = _write_dicom(tmp_path / "big.dcm", np.zeros((64, 64), np.uint16))
    no_extension = _write_dicom(tmp_path / "big_noext", np.zeros((64, 64), np.uint16))
    frames = _write_dicom(tmp_path / "frames.dcm", np.zeros((4, 4), np.uint16))
    ds = pydicom.dcmread(frames)
    ds.NumberOfFrames = 2
    ds.Rows = 2
    ds.save_as(frames)

    def no_decoding(self):
        raise AssertionError("pixel data decoded")

    monkeypatch.setattr(pydicom.dataset.Dataset, "pixel_array", property(no_decoding))
    with pytest.raises(ImageReadError) as info:
        read_images([big, no_extension, frames], max_pixels=1000)
    reasons = [reason for _, _, reason in info.value.failures]
    assert "64x64 = 4096 pixels exceeds max_pixels=1000" in reasons[0]
    assert "exceeds max_pixels=1000" in reasons[1]
    assert "multi-frame image (2 frames)" in reasons[2]


@pytest.mark.parametrize("ext", [".tif", ".gif", ".png", ".webp"])
def test_multi_frame_files_are_refused_as_multi_frame_dicom_is(tmp_path, ext):
    frames = [
        Image.fromarray(np.full((16, 16), value, dtype=np.uint8)).convert("RGB")
        for value in (0, 120, 250)
    ]
    path = tmp_path / f"stack{ext}"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    with Image.open(path) as im:
        assert im.n_frames == 3  # the format holds the frames
    good = _save(tmp_path / f"one{ext}", frames[1])
    with pytest.raises(ImageReadError) as info:
        read_images([good, str(path)])
    assert [item for _, item, _ in info.value.failures] == [str(path)]
    assert "multi-frame image (3 frames) is not supported" in str(info.value)
    assert info.value.images[0].shape[:2] == (16, 16)
    with Image.open(path) as im:  # a PIL image of such a file: the same rule
        with pytest.raises(ImageReadError, match="3 frames"):
            read_images([im])


# --------------------------------------------------------------------------
# Bad input: one error type, every bad item named, good items kept
# --------------------------------------------------------------------------


def _bad_files(tmp_path):
    good = _save(tmp_path / "good.png", Image.fromarray(_gradient()))
    jpeg = io.BytesIO()
    Image.fromarray(RNG.integers(0, 256, (64, 64), dtype=np.uint8)).save(
        jpeg, format="JPEG"
    )
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 2])
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.jpg"
    text.write_text("not an image at all")
    directory = tmp_path / "folder.png"
    directory.mkdir()
    missing = tmp_path / "missing.png"
    return good, {
        str(truncated): "truncated or corrupt",
        str(empty): "empty file",
        str(text): "not a recognised image format",
        str(directory): "is a directory",
        str(missing): "file not found",
    }


def test_every_bad_file_is_named_with_its_reason_and_good_ones_kept(tmp_path):
    good, bad = _bad_files(tmp_path)
    items = [good, *bad, good]
    with pytest.raises(ImageReadError) as info:
        read_images(items, image_size=10)
    err = info.value
    assert isinstance(err, ValueError)
    assert {item for _, item, _ in err.failures} == set(bad)
    for path, reason in bad.items():
        line = next(line for line in str(err).splitlines() if path in line)
        assert reason in line, line
    assert f"5 of {len(items)}" in str(err)
    assert err.images[0].shape == (10, 10, 1) and err.images[-1].shape == (10, 10, 1)
    assert all(img is None for img in err.images[1:-1])


def test_check_images_names_bad_files_without_decoding(tmp_path):
    good, bad = _bad_files(tmp_path)
    with pytest.raises(ImageReadError) as info:
        check_images([good, *bad])
    # header-level problems are found; decoding problems are not checked here
    named = {item for _, item, _ in info.value.failures}
    assert named == {
        p
        for p, r in bad.items()
        if r in ("empty file", "is a directory", "file not found")
    }


def test_a_float_tiff_with_nan_is_refused_naming_the_file(tmp_path):
    pixels = np.linspace(0, 1000, 64 * 64, dtype=np.float32).reshape(64, 64)
    good = _save(tmp_path / "good.tif", Image.fromarray(pixels))
    pixels[10, 20] = np.nan
    bad = _save(tmp_path / "nan.tif", Image.fromarray(pixels))
    with pytest.raises(ImageReadError) as info:
        read_images([good, bad], image_size=16)
    assert [item for _, item, _ in info.value.failures] == [bad]
    assert "NaN or infinite" in str(info.value) and bad in str(info.value)
    assert info.value.images[0].shape == (16, 16, 1)  # the good one is kept
    with Image.open(bad) as im:  # a PIL image given directly: the same rule
        with pytest.raises(ImageReadError, match="NaN or infinite"):
            read_images([im])


def test_nan_and_inf_arrays_are_named_by_index():
    X = RNG.random((4, 5, 5))
    X[1, 2, 2] = np.nan
    X[3, 0, 0] = np.inf
    with pytest.raises(ImageReadError, match="NaN or infinite") as info:
        check_images(X)
    assert [i for i, _, _ in info.value.failures] == [1, 3]
    with pytest.raises(ImageReadError) as info:
        read_images(X)
    assert info.value.images[0] is not None and info.value.images[1] is None
    with pytest.raises(ImageReadError, match=r"item 1 \(ndarray\): contains NaN"):
        read_images([X[0], X[1]])


@pytest.mark.parametrize(
    "X, message",
    [
        (np.zeros((4, 5)), "got shape (4, 5)"),
        (np.zeros((2, 3, 4, 5, 6)), "got shape (2, 3, 4, 5, 6)"),
        (np.zeros((2, 4, 4, 7)), "with 1-4 channels"),
        (np.zeros((0, 4, 4)), "empty input"),
        ([], "empty input"),
        ("image.png", "a single image was given"),
        (42, "expected a sequence of images, got int"),
        ([np.zeros((2, 2, 2, 2))], "item 0 (ndarray): expected an image of shape"),
        ([np.zeros((0, 3))], "empty image"),
        ([3.5], "unsupported item type float"),
        ([np.array([["a"]])], "unsupported dtype"),
        (np.zeros((64, 48, 3), np.uint8), "looks like a single colour image"),
        (np.zeros((64, 48, 4)), "looks like a single colour image"),
    ],
)
def test_wrong_inputs(X, message):
    with pytest.raises(ImageReadError) as info:
        check_images(X)
    assert message in str(info.value)


def _png_claiming_size(path, width, height):
    """A tiny valid PNG whose header claims a huge size (a decompression bomb)."""
    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr : ihdr + 17])) & 0xFFFFFFFF
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", crc)
    Path(path).write_bytes(bytes(data))
    return str(path)


def test_decompression_bomb_is_rejected_before_decoding(tmp_path):
    bomb = _png_claiming_size(tmp_path / "bomb.png", 60_000, 60_000)
    good = _save(tmp_path / "ok.png", Image.new("L", (30, 30)))
    with pytest.raises(ImageReadError) as info:
        read_images([good, bomb], image_size=8)
    assert [item for _, item, _ in info.value.failures] == [bomb]
    assert "decompression bomb" in str(info.value)
    assert info.value.images[0].shape == (8, 8, 1)
    # a lower limit of the caller's own also applies
    with pytest.raises(ImageReadError, match="exceeds max_pixels=100"):
        read_images([good], max_pixels=100)


def test_max_pixels_none_or_higher_lifts_pillows_own_limit(tmp_path):
    # The bomb's header claims 3.6e9 pixels; its data is one pixel, so once
    # no guard stops it, decoding fails on the missing data instead.
    bomb = _png_claiming_size(tmp_path / "bomb.png", 60_000, 60_000)
    limit = Image.MAX_IMAGE_PIXELS
    for max_pixels in (None, 4_000_000_000):
        with pytest.raises(ImageReadError) as info:
            read_images([bomb], image_size=8, max_pixels=max_pixels)
        assert "decompression bomb" not in str(info.value)
        assert "truncated or corrupt" in str(info.value)
    with pytest.raises(ImageReadError, match="exceeds max_pixels=1000000000"):
        read_images([bomb], image_size=8, max_pixels=1_000_000_000)
    # Reading a header decodes nothing: with the guard lifted, sizes of huge
    # images are known.
    assert read_image_sizes([bomb], max_pixels=None).tolist() == [[60_000, 60_000]]
    assert Image.MAX_IMAGE_PIXELS == limit


def _fail_load(*args, **kwargs):
    raise AssertionError("pixel data was decoded")


def test_size_reader_applies_the_bomb_guard_without_decoding(tmp_path, monkeypatch):
    import tracemalloc

    from PIL import ImageFile

    # A tiny file whose header declares 100000 x 100000 pixels: its size is
    # not a valid size but a decompression bomb, named as read_images names it.
    bomb = _png_claiming_size(tmp_path / "bomb.png", 100_000, 100_000)
    good = _save(tmp_path / "ok.png", Image.new("L", (30, 20)))
    assert os.path.getsize(bomb) < 200
    tracemalloc.start()
    try:
        with pytest.raises(ImageReadError) as info:
            read_image_sizes([good, bomb])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000
    assert [item for _, item, _ in info.value.failures] == [bomb]
    assert "decompression bomb guard" in str(info.value)
    assert bomb in str(info.value)
    assert info.value.images[0] == (20, 30)
    with pytest.raises(ImageReadError) as read_info:
        read_images([bomb])
    assert "decompression bomb" in read_info.value.failures[0][2]
    # Nothing is decoded on any path of the size reader, the guard lifted too.
    monkeypatch.setattr(ImageFile.ImageFile, "load", _fail_load)
    monkeypatch.setattr(Image.Image, "load", _fail_load)
    assert read_image_sizes([good, bomb], max_pixels=None).tolist() == [
        [20, 30],
        [100_000, 100_000],
    ]
    with pytest.raises(ImageReadError, match="exceeds max_pixels=100"):
        read_image_sizes([good], max_pixels=100)


def _png_with_exif_after_pixels(path, orientation):
    """A 40 x 24 PNG whose eXIf chunk comes after its IDAT (allowed by the spec)."""
    buffer = io.BytesIO()
    Image.new("L", (40, 24)).save(buffer, format="PNG")
    data = buffer.getvalue()
    exif = Image.Exif()
    exif[0x0112] = orientation
    payload = exif.tobytes()
    chunk = struct.pack(">I", len(payload)) + b"eXIf" + payload
    chunk += struct.pack(">I", zlib.crc32(b"eXIf" + payload) & 0xFFFFFFFF)
    iend = data.rindex(b"IEND") - 4
    Path(path).write_bytes(data[:iend] + chunk + data[iend:])
    return str(path)


def test_size_reader_finds_a_late_exif_orientation_without_decoding(
    tmp_path, monkeypatch
):
    from PIL import ImageFile

    path = _png_with_exif_after_pixels(tmp_path / "late.png", 6)
    assert read_images([path]).shape == (1, 40, 24, 1)  # Pillow finds it too
    monkeypatch.setattr(ImageFile.ImageFile, "load", _fail_load)
    assert read_image_sizes([path]).tolist() == [[40, 24]]


def test_bytes_paths_are_file_system_paths(tmp_path):
    path = _save(tmp_path / "ok.png", Image.new("L", (5, 4)))
    for item in (os.fsencode(path), np.bytes_(os.fsencode(path))):
        assert read_images([item]).shape == (1, 4, 5, 1)


def test_error_pickles_with_its_details():
    import pickle

    err = ImageReadError([(2, "x.png", "file not found")], images=[1, 2, None])
    back = pickle.loads(pickle.dumps(err))
    assert back.failures == err.failures and str(back) == str(err)


def test_invalid_options():
    X = np.zeros((1, 4, 4), np.uint8)
    with pytest.raises(ValueError, match="color must be one of"):
        read_images(X, color="cmyk")
    with pytest.raises(ValueError, match="resize_mode must be one of"):
        read_images(X, resize_mode="zoom")
    for size in [(0, 3), "abc", 32.0, (32,), (32, 32, 3), ("a", "b"), (16.5, 16)]:
        with pytest.raises(ValueError, match=r"size must be an int or \(height"):
            read_images(X, image_size=size)
    assert read_images(X, image_size=(np.int64(2), 3)).shape == (1, 2, 3, 1)


# --------------------------------------------------------------------------
# Real data
# --------------------------------------------------------------------------


def test_reads_every_original_resolution_test_image(brain_testing_original):
    paths = sorted(str(p) for p in brain_testing_original.rglob("*.jpg"))
    assert len(paths) == 1311
    sizes = read_image_sizes(paths, n_jobs=2)
    assert len({tuple(s) for s in sizes}) == 194
    images = read_images(paths, image_size=224, color="rgb", n_jobs=2)
    assert images.shape == (1311, 224, 224, 3) and images.dtype == np.uint8
    gray = read_images(paths[:50], image_size=64, color="gray")
    assert gray.shape == (50, 64, 64, 1)


def test_reads_mixed_rgb_and_gray_224_set(brain_testing):
    paths = sorted(str(p) for p in brain_testing.rglob("*.jpg"))
    assert len(paths) == 1311
    modes = {Image.open(p).mode for p in paths[::10]}
    assert modes >= {"L", "RGB"}
    images = read_images(paths, n_jobs=2)
    assert images.shape == (1311, 224, 224, 3)


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_exif_orientation_is_applied(tmp_path, orientation, ext):
    # A 40 x 24 image (wide) with a white block in its top-left corner,
    # stored as a phone stores it: pixels as shot, plus an orientation tag.
    stored = np.zeros((24, 40, 3), dtype=np.uint8)
    stored[:8, :8] = 255
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"phone{ext}"
    Image.fromarray(stored).save(path, exif=exif, quality=95)
    with Image.open(path) as im:
        expected = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    upright_shape = (40, 24) if orientation in (6, 8) else (24, 40)
    assert expected.shape[:2] == upright_shape
    got = read_images([str(path)], color="rgb")[0]
    assert got.shape[:2] == upright_shape
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 2
    assert read_image_sizes([str(path)]).tolist() == [list(upright_shape)]
    with Image.open(path) as im:  # a PIL image given directly: the same rule
        np.testing.assert_array_equal(read_images([im], color="rgb")[0], got)
        assert read_image_sizes([im]).tolist() == [list(upright_shape)]
    # resized (a JPEG is decoded at a reduced scale first): still upright
    small = read_images([str(path)], image_size=(20, 12), color="rgb")[0]
    assert small.shape == (20, 12, 3)
    assert _brightest_corner(small) == _brightest_corner(expected)


def _brightest_corner(a):
    h, w = a.shape[0] // 3, a.shape[1] // 3
    corners = {
        "top left": a[:h, :w],
        "top right": a[:h, -w:],
        "bottom left": a[-h:, :w],
        "bottom right": a[-h:, -w:],
    }
    return max(corners, key=lambda name: corners[name].mean())


def test_upscaling_a_lot_is_said_once_per_call(tmp_path):
    small = [_save(tmp_path / f"{i}.png", Image.new("L", (28, 28))) for i in range(3)]
    large = _save(tmp_path / "large.png", Image.new("L", (200, 180)))
    with pytest.warns(UserWarning, match="upscaled") as record:
        images = read_images([*small, large], image_size=224, warn_upscale=4)
    assert images.shape == (4, 224, 224, 1)
    (warning,) = [w for w in record if "upscaled" in str(w.message)]
    message = str(warning.message)
    assert "3 of 4 image(s) are upscaled 4 times or more to 224x224" in message
    assert "28x28, 8.0 times" in message and "image_size" in message
    # an array takes the same rule; no warning below the factor, or by default
    with pytest.warns(UserWarning, match="5 of 5 image"):
        read_images(np.zeros((5, 28, 28), np.uint8), image_size=112, warn_upscale=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_images([*small, large], image_size=224)
        read_images([*small, large], image_size=100, warn_upscale=4)
