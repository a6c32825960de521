"""ImageResizer: any image input to a fixed-shape uint8 array."""

import numpy as np
import pytest
from PIL import Image
from sklearn.base import clone

from skmedimg.preprocessing import ImageResizer
from skmedimg.utils import IMAGE_EXTENSIONS, ImageReadError


def test_mixed_inputs_to_fixed_shape(tmp_path):
    path = tmp_path / "scan.png"
    Image.fromarray(np.full((50, 70), 200, dtype=np.uint8)).save(path)
    images = [
        str(path),
        np.zeros((30, 40, 3), dtype=np.uint8),
        Image.new("RGBA", (12, 9), (255, 0, 0, 128)),
        np.ones((20, 20), dtype=np.float32),
        np.full((10, 10), 1000, dtype=np.uint16),
    ]
    out = ImageResizer(image_size=16).fit_transform(images)
    assert out.shape == (5, 16, 16, 3) and out.dtype == np.uint8
    assert np.all(out[0] == 200)  # gray repeated to three channels
    assert np.all(out[2, ..., 0] == 255) and np.all(out[2, ..., 1:] == 0)
    gray = ImageResizer(image_size=(8, 12), color="gray").fit_transform(images)
    assert gray.shape == (5, 8, 12, 1)
    keep = ImageResizer(image_size=8, color="keep").fit_transform(
        [images[0], images[3]]
    )
    assert keep.shape == (2, 8, 8, 1)


@pytest.mark.parametrize(
    "mode, expected_column",
    [("stretch", [255] * 8), ("pad", [0, 0, 255, 255, 255, 255, 0, 0])],
)
def test_modes(mode, expected_column):
    wide = np.full((1, 20, 40), 255, dtype=np.uint8)
    resizer = ImageResizer(
        image_size=8, resize_mode=mode, color="gray", resample="nearest"
    )
    out = resizer.transform(wide)
    assert out[0, :, 4, 0].tolist() == expected_column


def test_crop_keeps_the_centre():
    wide = np.zeros((1, 10, 30), dtype=np.uint8)
    wide[:, :, 10:20] = 255  # the central third is white
    out = ImageResizer(
        image_size=10, resize_mode="crop", color="gray", resample="nearest"
    )
    assert np.all(out.transform(wide) == 255)


def test_stateless_and_set_params_take_effect():
    X = np.zeros((3, 20, 20), dtype=np.uint8)
    resizer = ImageResizer(image_size=8)
    assert resizer.transform(X).shape == (3, 8, 8, 3)  # no fit needed
    resizer.set_params(image_size=(4, 6), color="gray")
    assert resizer.transform(X).shape == (3, 4, 6, 1)
    assert clone(resizer).get_params() == resizer.get_params()


def test_no_feature_names_for_image_output():
    assert not hasattr(ImageResizer(), "get_feature_names_out")


def test_a_pipeline_with_the_resizer_gives_pandas_features():
    pd = pytest.importorskip("pandas")
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from skmedimg.datasets import make_phantoms
    from skmedimg.preprocessing import IntensityFeatures

    X, y = make_phantoms(20, n_classes=2, image_size=24, random_state=0)
    pipe = make_pipeline(ImageResizer(image_size=16), IntensityFeatures())
    pipe.set_output(transform="pandas")
    features = pipe.fit_transform(X, y)
    assert isinstance(features, pd.DataFrame)
    assert list(features.columns) == list(pipe[1:].get_feature_names_out())
    assert pipe[0].transform(X).dtype == np.uint8  # images stay an array
    classifier = make_pipeline(pipe, StandardScaler(), LogisticRegression()).fit(X, y)
    assert classifier.predict(X).shape == (20,)


def test_bad_path_at_transform_names_it(tmp_path):
    good = tmp_path / "good.png"
    Image.new("L", (8, 8)).save(good)
    resizer = ImageResizer(image_size=4).fit([str(good)])
    with pytest.raises(ImageReadError, match=r"missing\.png: file not found"):
        resizer.transform([str(good), str(tmp_path / "missing.png")])


def test_real_testing_set_to_224_rgb(brain_testing_original):
    paths = sorted(
        str(p)
        for p in brain_testing_original.rglob("*")
        if p.suffix.lower() in IMAGE_EXTENSIONS
    )
    out = ImageResizer(image_size=224, n_jobs=2).fit_transform(paths)
    assert out.shape == (1311, 224, 224, 3) and out.dtype == np.uint8
    # grayscale scans: the three channels are equal
    assert np.array_equal(out[::100, ..., 0], out[::100, ..., 2])
