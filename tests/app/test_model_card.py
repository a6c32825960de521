"""The app's model cards, low-confidence mark, heat-map legend and export.

Runs on phantoms (no data set needed), with Flask's test client.
"""

import csv
import io
import json
import re
import warnings

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("flask")

from skmedimg.app import (  # noqa: E402
    DEFAULT_LOW_CONFIDENCE_MARGIN,
    add_serve_parser,
    create_app,
    load_model_card,
    load_models,
)
from skmedimg.neural import save_model  # noqa: E402


@pytest.fixture(scope="module")
def phantom():
    from tests.helpers import phantom_model

    return phantom_model(labels=["glioma tumour, grade unknown", "no tumour"])


def write_report(folder, model, X, y, *, name="report.json", **changes):
    """Write a report.json as ``skmedimg train`` writes it, from real predictions."""
    from skmedimg.metrics import classification_summary

    proba = model.predict_proba(X)
    y_pred = model.classes_[np.argmax(proba, axis=1)]
    report = {
        "metrics": classification_summary(
            y, y_pred, y_proba=proba, labels=list(model.classes_)
        ),
        "n_test": len(y),
        "timings": {"predict_s": 0.1},
        "versions": {"skmedimg": "0.9.0", "python": "3.12"},
        "settings": {
            "data_dir": "data/brain/Training",
            "test_dir": None,
            "test_size": 0.2,
            "model": "test_efficientnet",
        },
        "weights_source": "random",
        "n_train": 96,
        "classes": [str(c) for c in model.classes_],
        "n_epochs": 3,
        "best_epoch": 2,
        "recipe": {
            "name": "fine-tune",
            "params": {"lr": 0.001},
            "reason": "chosen by the time budget",
        },
        **changes,
    }
    path = folder / name
    path.write_text(json.dumps(report))
    return path, report


@pytest.fixture(scope="module")
def run_dir(phantom, tmp_path_factory):
    """A ``skmedimg train --out`` folder: model.skmedimg and report.json."""
    model, X, y = phantom
    folder = tmp_path_factory.mktemp("runs") / "brain-run"
    folder.mkdir()
    save_model(model, folder / "model.skmedimg")
    _, report = write_report(folder, model, X, y)
    return folder, report


# --------------------------------------------------------------------------
# Reading the card
# --------------------------------------------------------------------------


def test_the_card_reads_the_training_report_beside_the_model(run_dir):
    folder, report = run_dir
    card = load_model_card(folder / "model.skmedimg")
    metrics = report["metrics"]
    assert card["report"] == "report.json"
    assert card["training_data"] == "data/brain/Training"
    assert card["test_data"] == "20% stratified split of the training data"
    assert (card["n_train"], card["n_test"]) == (96, report["n_test"])
    assert card["metrics"]["accuracy"] == metrics["accuracy"]
    assert card["metrics"]["sensitivity"] == metrics["sensitivity"]
    assert card["metrics"]["specificity"] == metrics["specificity"]
    assert card["metrics"]["positive_class"] == "no tumour"
    per_class = card["metrics"]["per_class"]["glioma tumour, grade unknown"]
    assert per_class["support"] == metrics["per_class"][
        "glioma tumour, grade unknown"
    ]["support"]
    recipe = {"name": "fine-tune", "reason": "chosen by the time budget"}
    assert card["recipe"] == recipe
    assert card["date_source"] == "file time"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", card["date"])
    assert card["skmedimg_version"] == "0.9.0"
    json.dumps(card)  # JSON-ready


def test_which_report_belongs_to_which_model(phantom, tmp_path):
    model, X, y = phantom
    save_model(model, tmp_path / "a.skmedimg")
    assert load_model_card(tmp_path / "a.skmedimg") is None  # no report
    # two models in one folder: one report.json belongs to neither ...
    for stem in ("a", "b"):
        save_model(model, tmp_path / f"{stem}.skmedimg")
    write_report(tmp_path, model, X, y, date="2026-01-02")
    assert load_model_card(tmp_path / "a.skmedimg") is None
    # ... NAME.report.json belongs to NAME
    write_report(tmp_path, model, X, y, name="b.report.json", date="2026-03-04")
    card = load_model_card(tmp_path / "b.skmedimg")
    assert (card["report"], card["date"]) == ("b.report.json", "2026-03-04")
    assert card["date_source"] == "report"
    # the only model of a folder owns its report.json
    alone = tmp_path / "alone"
    alone.mkdir()
    save_model(model, alone / "brain.skmedimg")
    write_report(alone, model, X, y)
    assert load_model_card(alone / "brain.skmedimg")["report"] == "report.json"


def test_a_report_of_other_classes_or_unreadable_gives_no_card(phantom, tmp_path):
    model, X, y = phantom
    save_model(model, tmp_path / "model.skmedimg")
    write_report(tmp_path, model, X, y, classes=["cat", "dog"])
    with pytest.warns(UserWarning, match="describes classes \\['cat', 'dog'\\]"):
        assert load_model_card(tmp_path / "model.skmedimg", model=model) is None
    (tmp_path / "report.json").write_text("{not json")
    with pytest.warns(UserWarning, match="cannot read .*report.json"):
        assert load_model_card(tmp_path / "model.skmedimg") is None
    (tmp_path / "report.json").write_text("[1, 2]")
    with pytest.warns(UserWarning, match="not a JSON object"):
        assert load_model_card(tmp_path / "model.skmedimg") is None
    # fields of the wrong type are left out, not shown or raised on
    (tmp_path / "report.json").write_text(
        json.dumps({"n_train": "many", "metrics": {"accuracy": "high"}, "date": []})
    )
    card = load_model_card(tmp_path / "model.skmedimg")
    assert "n_train" not in card and "metrics" not in card
    assert card["date_source"] == "file time"


# --------------------------------------------------------------------------
# The card on the page and in /models
# --------------------------------------------------------------------------


def test_models_and_the_page_show_the_card_of_each_model(run_dir, phantom):
    folder, report = run_dir
    model, _, _ = phantom
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a matching report warns of nothing
        app = create_app([folder])
    with app.test_client() as client:
        listing = client.get("/models").get_json()["models"]
        html = client.get("/").get_data(as_text=True)
    assert listing[0]["name"] == "brain-run"
    assert listing[0]["card"] == load_model_card(folder / "model.skmedimg")
    card_html = html.split('class="model-card" data-model="brain-run"')[1]
    card_html = card_html.split("</article>")[0]
    accuracy = report["metrics"]["accuracy"]
    for text in (
        "data/brain/Training (96 images)",
        f"Test accuracy</dt>\n      <dd class=\"card-accuracy\">{100 * accuracy:.1f}%",
        "Sensitivity / specificity",
        "(positive class: no tumour)",
        "fine-tune: chosen by the time budget",
        "glioma tumour, grade unknown",
        "(time of the report file)",
    ):
        assert text in card_html, text
    # a model without a report has none, and the page says so
    with create_app({"plain": model}).test_client() as client:
        assert client.get("/models").get_json()["models"][0]["card"] is None
        html = client.get("/").get_data(as_text=True)
    assert 'class="model-card"' not in html and 'id="no-card"' in html


def test_cards_given_in_python_are_escaped_and_checked(phantom):
    model, _, _ = phantom
    card = {"training_data": "<script>x</script>", "date": "2026-01-01"}
    app = create_app({"m": model}, model_cards={"m": card})
    with app.test_client() as client:
        html = client.get("/").get_data(as_text=True)
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "<script>x" not in html
    assert "From  beside" not in html  # no report file named
    with pytest.raises(ValueError, match="'other', which is not a served model"):
        create_app({"m": model}, model_cards={"other": card})
    with pytest.raises(TypeError, match="not a dict"):
        create_app({"m": model}, model_cards={"m": "card"})


def test_the_command_line_passes_cards_and_the_margin(run_dir, monkeypatch):
    import argparse

    from skmedimg.app import _server

    folder, _ = run_dir
    parser = argparse.ArgumentParser()
    add_serve_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve", str(folder), "--low-confidence-margin", "0.3"])
    assert args.low_confidence_margin == 0.3
    seen = {}
    monkeypatch.setattr(_server, "serve", lambda models, **kw: seen.update(kw))

    class Console:
        said = []

        def say(self, text):
            self.said.append(text)

        warn = say

    assert args.func(args, Console()) == 0
    assert seen["low_confidence_margin"] == 0.3
    assert seen["model_cards"]["brain-run"]["report"] == "report.json"
    assert "model card of brain-run: report.json" in Console.said
    assert list(load_models(folder)) == ["brain-run"]


# --------------------------------------------------------------------------
# Low confidence
# --------------------------------------------------------------------------


def _png(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_predictions_are_marked_low_confidence_by_the_margin(phantom):
    model, X, _ = phantom
    proba = model.predict_proba(X[:6])
    gaps = np.sort(proba, axis=1)[:, -1] - np.sort(proba, axis=1)[:, -2]
    threshold = float(np.median(gaps))
    assert DEFAULT_LOW_CONFIDENCE_MARGIN == 0.2
    with create_app({"m": model}, low_confidence_margin=threshold).test_client() as c:
        for image, gap in zip(X[:6], gaps, strict=True):
            answer = c.post(
                "/predict", data={"file": (io.BytesIO(_png(image)), "x.png")}
            ).get_json()
            assert answer["margin"] == pytest.approx(gap, abs=1e-6)
            assert answer["low_confidence"] is bool(gap < threshold)
        html = c.get("/").get_data(as_text=True)
    assert f'data-margin="{threshold:g}"' in html
    assert f"less than {threshold:g} apart" in html
    for margin in (-0.1, 1.5, "high"):
        with pytest.raises(ValueError, match="low_confidence_margin"):
            create_app({"m": model}, low_confidence_margin=margin)


# --------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------


RECORDS = [
    {
        "time": "2026-12-03T10:00:00.000Z",
        "file": "scan 1.jpg",
        "model": "m",
        "label": "no tumour",
        "probabilities": {"glioma tumour, grade unknown": 0.45, "no tumour": 0.55},
        "margin": 0.1,
        "low_confidence": True,
        "ignored": "dropped",
    },
    {"time": "2026-12-03T10:00:01.000Z", "file": "=HYPERLINK(1)", "error": "bad"},
    {
        "file": "seg.png",
        "model": "m",
        "task": "segmentation",
        "fractions": {"0": 0.9, "1": 0.1},
    },
]


def test_export_as_csv_and_json(phantom, run_dir):
    model, _, _ = phantom
    folder, _ = run_dir
    card = load_model_card(folder / "model.skmedimg")
    app = create_app({"m": model}, model_cards={"m": card})
    with app.test_client() as client:
        response = client.post("/export?format=csv", json={"results": RECORDS})
        assert response.status_code == 200
        assert response.mimetype == "text/csv"
        disposition = response.headers["Content-Disposition"]
        assert re.fullmatch(
            r'attachment; filename="skmedimg-results-\d{8}-\d{6}\.csv"', disposition
        )
        rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
        assert len(rows) == 3
        assert list(rows[0])[:9] == [
            "time", "file", "model", "task", "label",
            "probability", "margin", "low_confidence", "error",
        ]  # fmt: skip
        assert rows[0]["file"] == "scan 1.jpg" and rows[0]["label"] == "no tumour"
        assert float(rows[0]["p(glioma tumour, grade unknown)"]) == 0.45
        assert float(rows[0]["probability"]) == 0.55  # the highest
        assert rows[0]["low_confidence"] == "true"
        assert "ignored" not in rows[0]
        assert rows[1]["file"] == "'=HYPERLINK(1)"  # not a formula
        assert rows[1]["error"] == "bad" and rows[1]["p(no tumour)"] == ""
        assert float(rows[2]["share(1)"]) == 0.1

        response = client.post("/export?format=json", json={"results": RECORDS})
        assert response.mimetype == "application/json"
        assert response.headers["Content-Disposition"].endswith('.json"')
        data = json.loads(response.get_data(as_text=True))
        assert list(data) == [
            "exported_at",
            "low_confidence_margin",
            "models",
            "results",
        ]
        assert data["low_confidence_margin"] == 0.2
        assert data["models"] == {"m": card}
        assert data["results"][0]["probabilities"] == RECORDS[0]["probabilities"]
        assert "ignored" not in data["results"][0]
        assert data["results"][1]["file"] == "=HYPERLINK(1)"  # JSON keeps text


def test_bad_exports_get_400_with_the_reason(phantom):
    model, _, _ = phantom
    with create_app({"m": model}).test_client() as client:
        bad = [
            ("?format=xlsx", {"results": []}, "unknown format 'xlsx'"),
            ("", [1, 2], '{"results": [...]}'),
            ("", {"results": [1]}, "result 0 is not a JSON object"),
            ("", {"results": [{}, {"margin": "x"}]}, "result 1: 'margin'"),
            ("", {"results": [{"probabilities": {"a": None}}]}, "of 'a' is not"),
            ("", {"results": [{"probabilities": [0.5]}]}, "'probabilities'"),
            ("", {"results": [{"low_confidence": "yes"}]}, "not true or false"),
            ("", {"results": [{"file": {"a": 1}}]}, "'file' is not text"),
            ("", {"results": [{}] * 10_001}, "at most 10000"),
            ("?format=" + "y" * 500, {"results": []}, "characters)"),
        ]
        for query, body, message in bad:
            response = client.post("/export" + query, json=body)
            assert response.status_code == 400, (query, message)
            error = response.get_json()["error"]
            assert message in error, (error, message)
            assert len(error) < 200
        response = client.post("/export", data="results=1")
        assert response.status_code == 400 and "JSON object" in response.get_json()[
            "error"
        ]
        assert client.get("/export").status_code == 405
        # long text is cut, not refused
        response = client.post(
            "/export?format=json", json={"results": [{"file": "f" * 5000}]}
        )
        assert len(response.get_json()["results"][0]["file"]) == 1000


# --------------------------------------------------------------------------
# Legend, full names, larger view
# --------------------------------------------------------------------------


def test_the_legend_shows_the_overlay_colour_map_and_names_are_not_cut():
    from matplotlib import colormaps
    from matplotlib.colors import to_rgb

    from skmedimg.app._page import APP_CSS, APP_JS, PAGE_HTML
    from skmedimg.app._server import _OVERLAY_CMAP

    gradient = re.search(r"\.legend-bar \{[^}]*linear-gradient\(([^;]*)\);", APP_CSS)
    stops = re.findall(r"(#[0-9a-f]{6})(?: ([\d.]+)%)?", gradient.group(1))
    assert len(stops) >= 5
    cmap = colormaps[_OVERLAY_CMAP]
    for i, (colour, percent) in enumerate(stops):
        where = float(percent) / 100 if percent else i / (len(stops) - 1)
        assert np.allclose(to_rgb(colour), cmap(where)[:3], atol=0.02), colour
    assert "blue: low" in APP_JS and "red: high" in APP_JS
    # class names wrap instead of being cut with an ellipsis
    bar_name = re.search(r"\.bar-name \{([^}]*)\}", APP_CSS).group(1)
    assert "ellipsis" not in bar_name and "nowrap" not in bar_name
    assert '<dialog id="viewer">' in PAGE_HTML and "Click to enlarge" in APP_JS


def test_a_segmentation_report_gives_a_dice_card(phantom, tmp_path):
    # the fields ``skmedimg segment train`` writes; the model is not needed
    report = {
        "task": "segmentation",
        "metrics": {
            "classes": {"1": {"dice": 0.8, "hd95": 2.0}, "2": {"dice": 0.6}},
            "mean": {"dice": 0.7},
            "names": {"1": "oedema", "2": "enhancing tumour"},
        },
        "n_test": 4,
        "split": {"validation_size": 0.25, "n_train": 12},
        "settings": {"data_dir": "Task01_BrainTumour"},
        "model": {"network": "unet", "classes": [0, 1, 2], "n_epochs": 5},
    }
    (tmp_path / "report.json").write_text(json.dumps(report))
    card = load_model_card(tmp_path / "model.skmedimg")
    assert card["metrics"] == {
        "mean_dice": 0.7,
        "per_class": {"oedema": {"dice": 0.8}, "enhancing tumour": {"dice": 0.6}},
    }
    assert card["test_data"] == "25% validation split of the training data"
    assert (card["n_train"], card["n_epochs"], card["model_name"]) == (12, 5, "unet")
    assert card["classes"] == ["0", "1", "2"]
    model, _, _ = phantom
    with create_app({"m": model}, model_cards={"m": card}).test_client() as client:
        html = client.get("/").get_data(as_text=True)
    assert "Mean Dice</dt><dd>0.700</dd>" in html
    assert "<td>enhancing tumour</td>\n      <td>0.600</td>" in html
