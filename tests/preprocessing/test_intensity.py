"""IntensityFeatures, IntensityKMeans, score_n_clusters, plot_elbow_silhouette."""

from pathlib import Path

import matplotlib
import numpy as np
import pytest
from PIL import Image
from sklearn.base import clone
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

import skmedimg.preprocessing._intensity as intensity_module
from skmedimg.preprocessing import (
    IntensityFeatures,
    IntensityKMeans,
    plot_elbow_silhouette,
    score_n_clusters,
)
from skmedimg.utils import IMAGE_EXTENSIONS, ImageReadError, read_images

matplotlib.use("Agg")


def _groups(n_per_group=10, size=16, seed=0):
    """Images in three brightness/contrast groups."""
    rng = np.random.default_rng(seed)
    groups = [
        rng.integers(a, 2 * a + 40, (n_per_group, size, size)) for a in (0, 60, 120)
    ]
    return np.concatenate(groups).astype(np.uint8)


def test_features_equal_numpy_statistics():
    rng = np.random.default_rng(0)
    images = [
        rng.integers(0, 256, (rng.integers(3, 30), rng.integers(3, 30)), dtype=np.uint8)
        for _ in range(25)
    ]
    percentiles = (0, 2.5, 50, 90, 100)
    features = IntensityFeatures(percentiles, n_bins=4)
    F = features.fit_transform(images)
    expected = np.array(
        [[im.mean(), im.std(), *np.percentile(im, percentiles)] for im in images]
    )
    np.testing.assert_allclose(F[:, :7], expected, atol=1e-9)
    bins = np.array(
        [np.histogram(im, bins=4, range=(0, 256))[0] / im.size for im in images]
    )
    np.testing.assert_allclose(F[:, 7:], bins)
    assert features.get_feature_names_out().tolist() == [
        "mean", "std", "p0", "p2.5", "p50", "p90", "p100",
        "hist_0_64", "hist_64_128", "hist_128_192", "hist_192_256",
    ]  # fmt: skip
    assert F.dtype == np.float64


def test_transform_without_fit_validates_the_parameters():
    # The transformer is stateless, so transform may be called unfitted; an
    # invalid n_bins must not give columns of nonsense.
    from sklearn.utils._param_validation import InvalidParameterError

    X = np.zeros((2, 8, 8), np.uint8)
    with pytest.raises(InvalidParameterError, match="'n_bins' parameter"):
        IntensityFeatures(n_bins=1000).transform(X)
    assert IntensityFeatures(n_bins=4).transform(X).shape == (2, 11)


def test_colour_images_use_luma_or_channels():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (4, 10, 10, 3), dtype=np.uint8)
    F = IntensityFeatures(percentiles=(50,)).fit_transform(rgb)
    luma = [np.asarray(Image.fromarray(im).convert("L")) for im in rgb]
    np.testing.assert_allclose(F[:, 0], [im.mean() for im in luma])
    per_channel = IntensityFeatures(percentiles=(50,), per_channel=True)
    F = per_channel.fit_transform(rgb)
    assert per_channel.get_feature_names_out().tolist() == [
        "r_mean", "r_std", "r_p50", "g_mean", "g_std", "g_p50",
        "b_mean", "b_std", "b_p50",
    ]  # fmt: skip
    np.testing.assert_allclose(F[:, [0, 3, 6]], rgb.mean(axis=(1, 2)))
    np.testing.assert_allclose(F[:, 5], np.median(rgb[..., 1], axis=(1, 2)))


def test_size_downsamples_first():
    X = _groups(2, size=64)
    F = IntensityFeatures(image_size=16).fit_transform(X)
    small = read_images(X, image_size=16, color="gray")
    np.testing.assert_allclose(F[:, 0], small.mean(axis=(1, 2, 3)))


def test_pandas_output():
    features = IntensityFeatures(percentiles=(50,)).set_output(transform="pandas")
    frame = features.fit_transform(_groups(2))
    assert frame.columns.tolist() == ["mean", "std", "p50"]
    assert frame.shape == (6, 3)


def test_chunked_reading_names_failures_with_global_index(monkeypatch, tmp_path):
    monkeypatch.setattr(intensity_module, "_CHUNK", 3)
    paths = []
    for i in range(8):
        path = tmp_path / f"{i}.jpg"
        Image.new("L", (16, 16), i * 10).save(path)
        paths.append(str(path))
    data = Path(paths[6]).read_bytes()
    Path(paths[6]).write_bytes(data[: len(data) // 2])
    images = [np.full((4, 4), 7, dtype=np.uint8)] * 4 + [Image.new("L", (3, 3))]
    F = IntensityFeatures().fit_transform(images + paths[:6])
    assert F.shape == (11, 7)
    with pytest.raises(ImageReadError, match=r"1 of 8 image") as info:
        IntensityFeatures().transform(paths)
    assert info.value.failures[0][:2] == (6, paths[6])


def test_kmeans_attributes_and_summary():
    X = _groups()
    km = IntensityKMeans(n_clusters=3, random_state=0).fit(X)
    features = IntensityFeatures().fit_transform(X)
    scaler = StandardScaler().fit(features)
    reference = KMeans(n_clusters=3, random_state=0).fit(scaler.transform(features))
    np.testing.assert_array_equal(km.labels_, reference.labels_)
    np.testing.assert_allclose(km.cluster_centers_, reference.cluster_centers_)
    assert km.inertia_ == pytest.approx(reference.inertia_)
    assert km.n_iter_ == reference.n_iter_
    assert (
        km.feature_names_.tolist()
        == IntensityFeatures().get_feature_names_out().tolist()
    )
    np.testing.assert_array_equal(km.predict(X), km.labels_)
    assert km.transform(X).shape == (30, 3)
    assert km.score(X) == pytest.approx(-km.inertia_)
    assert km.get_feature_names_out().tolist() == [
        "intensitykmeans0", "intensitykmeans1", "intensitykmeans2",
    ]  # fmt: skip
    summary = km.cluster_summary_
    assert list(summary) == ["cluster", "n_images", "intensity_mean", "intensity_std"]
    means = X.mean(axis=(1, 2))
    for k in range(3):
        members = means[km.labels_ == k]
        assert summary["n_images"][k] == len(members) == 10
        assert summary["intensity_mean"][k] == pytest.approx(members.mean())
        assert summary["intensity_std"][k] == pytest.approx(members.std())
    # the three groups are found
    assert len({tuple(np.unique(km.labels_[i : i + 10])) for i in (0, 10, 20)}) == 3


def test_kmeans_without_scaling_and_histograms():
    X = _groups()
    km = IntensityKMeans(n_clusters=3, scale=False, n_bins=8, random_state=0).fit(X)
    assert km.scaler_ is None and km.cluster_centers_.shape == (3, 15)
    features = IntensityFeatures(n_bins=8).fit_transform(X)
    reference = KMeans(n_clusters=3, random_state=0).fit(features)
    np.testing.assert_allclose(km.cluster_centers_, reference.cluster_centers_)


def test_kmeans_is_deterministic_and_set_params_takes_effect():
    X = _groups()
    km = IntensityKMeans(n_clusters=3, random_state=0)
    first = km.fit(X).labels_.copy()
    np.testing.assert_array_equal(clone(km).fit(X).labels_, first)
    km.set_params(n_clusters=2)
    assert km.fit(X).cluster_centers_.shape[0] == 2


def test_score_n_clusters_matches_single_fits():
    X = _groups()
    template = IntensityKMeans(random_state=0)
    scores = score_n_clusters(X, range(2, 6), estimator=template)
    assert scores.k.tolist() == [2, 3, 4, 5]
    assert scores.best_k == 3
    for k, inertia, silhouette in zip(
        scores.k, scores.inertia, scores.silhouette, strict=True
    ):
        km = clone(template).set_params(n_clusters=int(k)).fit(X)
        assert inertia == pytest.approx(km.inertia_)
        Z = km.scaler_.transform(IntensityFeatures().fit_transform(X))
        assert silhouette == pytest.approx(silhouette_score(Z, km.labels_))
    sampled = score_n_clusters(X, [3], estimator=template, silhouette_sample_size=20)
    assert -1 <= sampled.silhouette[0] <= 1


def test_score_n_clusters_takes_a_random_state():
    X = _groups()
    by_argument = score_n_clusters(X, range(2, 5), random_state=3)
    by_template = score_n_clusters(
        X, range(2, 5), estimator=IntensityKMeans(random_state=3)
    )
    np.testing.assert_array_equal(by_argument.inertia, by_template.inertia)
    # the argument wins over the template's, and reproduces
    overridden = score_n_clusters(
        X, range(2, 5), estimator=IntensityKMeans(random_state=0), random_state=3
    )
    np.testing.assert_array_equal(overridden.inertia, by_argument.inertia)
    sampled = [
        score_n_clusters(X, [3], silhouette_sample_size=12, random_state=1).silhouette
        for _ in range(2)
    ]
    np.testing.assert_array_equal(*sampled)


def test_cluster_table_rows_and_frame():
    X = _groups()
    km = IntensityKMeans(n_clusters=3, random_state=0).fit(X)
    rows = km.cluster_table()
    assert len(rows) == 3
    assert list(rows[0]) == list(km.cluster_summary_)
    for i, row in enumerate(rows):
        for key, value in row.items():
            assert type(value) in (int, float)
            assert value == km.cluster_summary_[key][i]
    frame = km.cluster_table(as_frame=True)
    assert frame.shape == (3, 4)
    assert frame["n_images"].tolist() == km.cluster_summary_["n_images"].tolist()
    with pytest.raises(Exception, match="not fitted"):
        IntensityKMeans().cluster_table()


def test_score_n_clusters_on_identical_images_says_why():
    X = np.full((10, 8, 8), 7, np.uint8)
    with pytest.warns(ConvergenceWarning):  # k-means' own: fewer distinct points
        with pytest.raises(ValueError, match="1 distinct feature vector"):
            score_n_clusters(X, range(2, 4))


def test_plot_elbow_silhouette(tmp_path):
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    scores = score_n_clusters(
        _groups(), range(2, 5), estimator=IntensityKMeans(random_state=0)
    )
    fig = plot_elbow_silhouette(scores)
    assert isinstance(fig, Figure)
    axes = fig.axes
    assert len(axes) == 2
    np.testing.assert_allclose(axes[0].lines[0].get_ydata(), scores.inertia)
    np.testing.assert_allclose(axes[1].lines[0].get_ydata(), scores.silhouette)
    assert axes[1].get_legend().get_texts()[0].get_text() == "best k = 3"
    fig.savefig(tmp_path / "plot.png")
    assert (tmp_path / "plot.png").stat().st_size > 0
    given_fig, given = plt.subplots(2, 1)
    assert plot_elbow_silhouette(scores, axes=given) is given_fig
    assert [a.get_ylabel() for a in given] == ["inertia", "silhouette score"]
    with pytest.raises(ValueError, match="axes must hold two matplotlib Axes, got 1"):
        plot_elbow_silhouette(scores, axes=given[0])
    plt.close("all")


def test_cluster_summary_prints_as_a_table():
    km = IntensityKMeans(n_clusters=3, random_state=0).fit(_groups())
    summary = km.cluster_summary_
    text = repr(summary)
    lines = text.splitlines()
    assert lines[0] == "Intensity clusters (3)"
    assert lines[1].split() == [
        "cluster",
        "n_images",
        "intensity_mean",
        "intensity_std",
    ]
    assert len(lines) == 2 + 3
    assert [int(line.split()[1]) for line in lines[2:]] == summary["n_images"].tolist()
    assert "array(" not in text
    html = summary._repr_html_()
    assert html.count("<tr>") == 1 + 3 and "<th>intensity_mean</th>" in html
    # still a dict of arrays for code written against it
    assert isinstance(summary, dict) and isinstance(summary["n_images"], np.ndarray)
    assert summary.to_frame()["cluster"].tolist() == [0, 1, 2]


def test_real_training_images(brain_training):
    paths = sorted(
        str(p)
        for p in brain_training.rglob("*")
        if p.suffix.lower() in IMAGE_EXTENSIONS
    )
    rng = np.random.default_rng(0)
    subset = list(rng.choice(paths, 200, replace=False))
    template = IntensityKMeans(image_size=128, random_state=0, n_jobs=2)
    scores = score_n_clusters(subset, range(2, 9), estimator=template)
    assert scores.k.tolist() == list(range(2, 9))
    assert np.all((scores.silhouette > -1) & (scores.silhouette < 1))
    assert np.all(np.diff(scores.inertia) < 0)  # more clusters, less inertia
    km = clone(template).set_params(n_clusters=scores.best_k).fit(subset)
    summary = km.cluster_summary_
    assert summary["n_images"].sum() == 200
    assert np.all(summary["n_images"] > 0)
    assert np.all((summary["intensity_mean"] > 0) & (summary["intensity_mean"] < 255))
    assert np.all(summary["intensity_std"] >= 0)


def test_transform_names_every_bad_file_at_once(tmp_path):
    from PIL import Image

    from skmedimg.utils import ImageReadError

    good = []
    for i in range(3):
        path = tmp_path / f"good{i}.png"
        Image.new("L", (8, 8), i * 40).save(path)
        good.append(str(path))
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image")
    bad = [str(tmp_path / n) for n in ("missing.png", "empty.png", "text.png")]
    features = IntensityFeatures().fit(good)
    with pytest.raises(ImageReadError) as info:
        features.transform(good + bad)
    assert [item for _, item, _ in info.value.failures] == bad
    assert str(info.value).startswith("3 of 6 image(s)")
