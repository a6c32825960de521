"""The web app serves 2-D segmenters: a mask overlay and the share of each class."""

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("flask")
pytest.importorskip("monai")

from skmedimg.app import create_app, load_models  # noqa: E402
from skmedimg.datasets import make_segmentation_phantoms  # noqa: E402
from skmedimg.neural import load_model, save_model  # noqa: E402
from tests.app.test_server import live_server, post_image  # noqa: E402
from tests.app.test_browser import _wait_until_done, browser  # noqa: E402, F401

TINY = {
    "network__channels": (4, 8),
    "network__strides": (2,),
    "network__num_res_units": 0,
    "batch_size": 4,
    "max_epochs": 2,
    "lr": 1e-2,
    "device": "cpu",
    "random_state": 0,
}


def _decode(url):
    assert url.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A saved 2-D segmenter (labels 0, 1, 2), a 3-D one, and a classifier."""
    from skmedimg.segmentation import CNNSegmenter
    from tests.helpers import phantom_model

    folder = tmp_path_factory.mktemp("models")
    X, y = make_segmentation_phantoms(8, image_size=32, n_classes=3, random_state=0)
    save_model(CNNSegmenter(**TINY).fit(X, y), folder / "lesions.skmedimg")
    X3, y3 = make_segmentation_phantoms(2, image_size=16, ndim=3, random_state=0)
    volumes = folder / "volumes"
    volumes.mkdir()
    save_model(
        CNNSegmenter(**{**TINY, "max_epochs": 1}).fit(X3, y3),
        volumes / "brain3d.skmedimg",
    )
    save_model(phantom_model()[0], folder / "tumour.skmedimg")
    return folder


def test_a_segmenter_is_listed_and_returns_a_mask_overlay(models, tmp_path):
    seg_path = models / "lesions.skmedimg"
    model = load_model(seg_path)
    # an upload of another size than the training images, in colour: the
    # gray model reads it in gray, at its own size
    X, _ = make_segmentation_phantoms(1, image_size=48, n_classes=3, random_state=3)
    path = tmp_path / "scan.png"
    Image.fromarray(np.stack([X[0][:40]] * 3, axis=-1)).save(path)
    expected = model.predict([X[0][:40]])[0]
    assert expected.shape == (40, 48)

    app = create_app([seg_path, models / "tumour.skmedimg"])
    with app.test_client() as client:
        listing = client.get("/models").get_json()["models"]
        html = client.get("/").get_data(as_text=True)
    assert listing[0] == {
        "name": "lesions",
        "task": "segmentation",
        "classes": ["0", "1", "2"],
        "roi_size": [32, 32],
        "model_name": "unet",
        "card": None,
    }
    assert listing[1]["name"] == "tumour" and "task" not in listing[1]
    assert "lesions (segmentation: 0, 1, 2)" in html
    assert f"data-classes='{json.dumps(['0', '1', '2'])}'" in html

    with live_server(app) as url:
        status, answer = post_image(url, path.read_bytes(), filename="scan.png")
        assert status == 200, answer
        assert list(answer) == ["model", "task", "fractions", "segmentation"]
        assert answer["model"] == "lesions" and answer["task"] == "segmentation"
        fractions = answer["fractions"]
        assert list(fractions) == ["0", "1", "2"]
        assert sum(fractions.values()) == pytest.approx(1.0)
        for label, share in fractions.items():
            assert share == pytest.approx(np.mean(expected == int(label)))
        seg = answer["segmentation"]
        assert list(seg["colors"]) == ["1", "2"]  # the background is not coloured
        assert all(c.startswith("#") and len(c) == 7 for c in seg["colors"].values())
        shown, overlay = _decode(seg["image"]), _decode(seg["overlay"])
        assert shown.size == overlay.size == (48, 40)  # under 320: full size
        assert shown.mode == overlay.mode == "RGB"
        changed = np.any(np.asarray(shown) != np.asarray(overlay), axis=-1)
        assert np.array_equal(changed, expected != 0)
        # the classifier of the same app still answers as a classifier
        status, answer = post_image(
            url, path.read_bytes(), filename="scan.png", model="tumour"
        )
        assert status == 200
        assert list(answer) == [
            "model",
            "label",
            "probabilities",
            "margin",
            "low_confidence",
        ]


def test_a_segmenter_of_volumes_is_refused_with_its_reason(models):
    volume_path = models / "volumes" / "brain3d.skmedimg"
    with pytest.raises(ValueError, match="segmenter of 3-D volumes; the app segments"):
        load_models(volume_path)
    with pytest.raises(ValueError, match="model 'v' is a segmenter of 3-D volumes"):
        create_app({"v": load_model(volume_path)})
    # in a folder it is skipped with a warning, and the others are served
    with pytest.warns(UserWarning, match="skipping .*brain3d.skmedimg: a segmenter"):
        loaded = load_models([models / "volumes", models / "lesions.skmedimg"])
    assert list(loaded) == ["lesions"]


def test_serve_names_a_segmenter_by_its_network(models, monkeypatch, capsys):
    import argparse

    import skmedimg.app._server as server
    from skmedimg.app import add_serve_parser

    served = {}
    monkeypatch.setattr(server, "serve", lambda models, **kw: served.update(models))
    parser = argparse.ArgumentParser()
    add_serve_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve", str(models / "lesions.skmedimg")])

    class Console:
        def say(self, *parts):
            print(*parts)

        def warn(self, message):
            print(message)

    assert args.func(args, Console()) == 0
    assert list(served) == ["lesions"]
    assert "loaded segmenter lesions: unet (0, 1, 2)" in capsys.readouterr().out


def test_the_page_shows_the_mask_overlay_and_the_shares(models, tmp_path, request):
    # In a real headless browser (skips without chromium and selenium).
    browser = request.getfixturevalue("browser")
    from selenium.webdriver.common.by import By

    X, _ = make_segmentation_phantoms(1, image_size=40, n_classes=3, random_state=4)
    path = tmp_path / "scan.png"
    Image.fromarray(X[0]).save(path)
    app = create_app([models / "tumour.skmedimg", models / "lesions.skmedimg"])
    with live_server(app) as url:
        browser.get(url + "/")
        select = browser.find_element(By.ID, "model")
        browser.execute_script("arguments[0].value = 'lesions'", select)
        browser.find_element(By.ID, "files").send_keys(str(path))
        browser.find_element(By.ID, "predict").click()
        (card,) = _wait_until_done(browser, 1)
        assert card.find_element(By.CSS_SELECTOR, ".label").text == "segmentation"
        overlay = card.find_element(By.CSS_SELECTOR, "img.overlay")
        assert browser.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth", overlay
        ) == 40
        names = [e.text for e in card.find_elements(By.CSS_SELECTOR, ".bar-name")]
        assert names == ["0", "1", "2"]
        assert not card.find_elements(By.CSS_SELECTOR, ".bar-row.top")
        fills = card.find_elements(By.CSS_SELECTOR, ".bar-fill")
        colours = [f.value_of_css_property("background-color") for f in fills]
        assert colours[1] != colours[2] and colours[0] not in colours[1:]
        values = [e.text for e in card.find_elements(By.CSS_SELECTOR, ".bar-value")]
        assert sum(float(v.rstrip("%")) for v in values) == pytest.approx(100, abs=0.2)
