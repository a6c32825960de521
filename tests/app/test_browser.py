"""End to end in a real headless browser: upload, Predict, label and overlay.

Drives Debian's chromium with Selenium and the system chromedriver (no
browser is ever downloaded). Skips with the reason when either is missing.
The screenshots (and the exported CSV and JSON) go to
``$SKMEDIMG_TEST_ARTIFACTS`` or ``test-artifacts/`` at the repository root.
"""

import base64
import os
import shutil
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("flask")

from skmedimg.app import create_app  # noqa: E402
from skmedimg.neural import load_model  # noqa: E402
from tests.app.test_server import live_server, trained_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
)


def _find(*names):
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium is not installed (pip install selenium)"
    )
    from selenium.webdriver.chrome.service import Service

    chromium = _find("chromium", "chromium-browser")
    driver_path = _find("chromedriver")
    if chromium is None or driver_path is None:
        pytest.skip(
            "needs Debian's chromium and chromium-driver "
            "(apt-get install -y chromium chromium-driver)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="skmedimg-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    try:
        driver = webdriver.Chrome(
            options=options, service=Service(executable_path=driver_path)
        )
    except Exception as exc:  # a broken install is a skip, with its reason
        shutil.rmtree(profile, ignore_errors=True)
        pytest.skip(f"chromium did not start: {' '.join(str(exc).split())[:300]}")
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def artifacts():
    path = Path(os.environ.get("SKMEDIMG_TEST_ARTIFACTS") or ROOT / "test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _wait_until_done(driver, n_results):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 60).until(
        lambda d: (
            d.find_element(By.ID, "status").text.startswith("Done")
            and len(d.find_elements(By.CSS_SELECTOR, ".result.done, .result.failed"))
            == n_results
        )
    )
    return driver.find_elements(By.CSS_SELECTOR, ".result")


def _check_prediction(driver, card, expected_label, classes):
    from selenium.webdriver.common.by import By

    assert card.find_element(By.CSS_SELECTOR, ".label").text == expected_label
    overlay = card.find_element(By.CSS_SELECTOR, "img.overlay")
    assert overlay.get_attribute("src").startswith("data:image/png;base64,")
    # the overlay image decoded and is shown at a real size
    assert driver.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth", overlay
    )
    assert overlay.size["width"] > 100
    names = [e.text for e in card.find_elements(By.CSS_SELECTOR, ".bar-name")]
    assert names == classes
    top = card.find_element(By.CSS_SELECTOR, ".bar-row.top .bar-name")
    assert top.text == expected_label


def test_upload_predict_and_see_label_and_overlay(
    browser, brain_testing, tmp_path_factory, tmp_path, artifacts
):
    from selenium.webdriver.common.by import By

    model_path, images = trained_model(brain_testing, tmp_path_factory.mktemp("m"))
    model = load_model(model_path)
    classes = [str(c) for c in model.classes_]
    chosen = [images[0], images[-1]]
    expected = [str(label) for label in model.predict(chosen)]
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(Path(images[1]).read_bytes()[:3000])

    with live_server(create_app([model_path])) as url:
        browser.get(url + "/")
        select = browser.find_element(By.ID, "model")
        assert select.get_attribute("value") == "brain_mri"
        button = browser.find_element(By.ID, "predict")
        assert not button.is_enabled()  # nothing chosen yet

        # 1. choose files with the file input: two scans and a corrupt file
        upload = browser.find_element(By.ID, "files")
        upload.send_keys("\n".join([*chosen, str(corrupt)]))
        assert button.is_enabled()
        button.click()
        cards = _wait_until_done(browser, 3)
        for card, label in zip(cards[:2], expected, strict=True):
            _check_prediction(browser, card, label, classes)
        error = cards[2].find_element(By.CSS_SELECTOR, ".error").text
        assert "cannot read the image" in error and "truncated" in error
        browser.save_screenshot(str(artifacts / "app_upload_predict.png"))

        # 2. drag and drop one scan onto the drop zone
        data = base64.b64encode(Path(images[0]).read_bytes()).decode()
        browser.execute_script(
            """
            const bytes = Uint8Array.from(atob(arguments[0]), c => c.charCodeAt(0));
            const file = new File([bytes], "dropped.jpg", {type: "image/jpeg"});
            const transfer = new DataTransfer();
            transfer.items.add(file);
            const zone = document.getElementById("drop");
            for (const type of ["dragover", "drop"]) {
              zone.dispatchEvent(new DragEvent(type, {
                bubbles: true, cancelable: true, dataTransfer: transfer}));
            }
            """,
            data,
        )
        assert "dropped.jpg" in browser.find_element(By.ID, "chosen").text
        button.click()
        cards = _wait_until_done(browser, 1)
        assert cards[0].find_element(By.TAG_NAME, "h2").text == "dropped.jpg"
        _check_prediction(browser, cards[0], expected[0], classes)
        browser.save_screenshot(str(artifacts / "app_drag_and_drop.png"))


def test_bars_follow_the_class_order_of_the_model(browser, tmp_path):
    # Class names that look like integers: a JavaScript object lists them in
    # numeric order ("2" before "10"), the model in its classes_ order.
    from PIL import Image
    from selenium.webdriver.common.by import By

    from tests.helpers import phantom_model

    model, X, _ = phantom_model(labels=["10", "2"])
    assert list(model.classes_) == ["10", "2"]
    path = tmp_path / "scan.png"
    Image.fromarray(X[0]).save(path)
    with live_server(create_app({"numbers": model})) as url:
        browser.get(url + "/")
        browser.find_element(By.ID, "files").send_keys(str(path))
        browser.find_element(By.ID, "predict").click()
        card = _wait_until_done(browser, 1)[0]
        names = [e.text for e in card.find_elements(By.CSS_SELECTOR, ".bar-name")]
    assert names == ["10", "2"]


def _wait_for_download(folder, suffix, timeout=30):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [p for p in folder.glob(f"skmedimg-results-*{suffix}")]
        if done and not list(folder.glob("*.crdownload")):
            return done[0]
        time.sleep(0.1)
    raise AssertionError(f"no {suffix} download in {folder}: {list(folder.iterdir())}")


def test_model_card_low_confidence_larger_view_and_export(
    browser, brain_testing, tmp_path_factory, tmp_path, artifacts
):
    import csv
    import json

    import numpy as np
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.app.test_model_card import write_report

    model_path, images = trained_model(brain_testing, tmp_path_factory.mktemp("m"))
    model = load_model(model_path)
    labels = np.array([Path(p).parent.name for p in images])
    proba = model.predict_proba(images)
    top_two = np.sort(proba, axis=1)[:, -2:]
    gaps = top_two[:, 1] - top_two[:, 0]
    ambiguous, clear = int(np.argmin(gaps)), int(np.argmax(gaps))
    assert gaps[clear] > gaps[ambiguous]
    margin = float((gaps[ambiguous] + gaps[clear]) / 2)  # between the two
    run = tmp_path / "brain-run"
    run.mkdir()
    (run / "model.skmedimg").write_bytes(Path(model_path).read_bytes())
    _, report = write_report(run, model, np.array(images, dtype=object), labels)
    downloads = tmp_path / "downloads"
    downloads.mkdir()

    with live_server(create_app([run], low_confidence_margin=margin)) as url:
        browser.get(url + "/")
        try:
            browser.execute_cdp_cmd(
                "Browser.setDownloadBehavior",
                {"behavior": "allow", "downloadPath": str(downloads)},
            )
        except Exception:  # older chromium: the page-level command
            browser.execute_cdp_cmd(
                "Page.setDownloadBehavior",
                {"behavior": "allow", "downloadPath": str(downloads)},
            )
        # 1. the model card of the chosen model is shown
        card = browser.find_element(
            By.CSS_SELECTOR, ".model-card[data-model=\"brain-run\"]"
        )
        assert card.is_displayed()
        accuracy = f"{100 * report['metrics']['accuracy']:.1f}%"
        assert card.find_element(By.CSS_SELECTOR, ".card-accuracy").text.startswith(
            accuracy
        )
        assert "data/brain/Training" in card.text and "fine-tune" in card.text
        assert not browser.find_element(By.ID, "no-card").is_displayed()
        assert not browser.find_element(By.ID, "export-csv").is_enabled()

        # 2. an ambiguous and a clear image: only the first is marked
        chosen = [images[ambiguous], images[clear]]
        browser.find_element(By.ID, "files").send_keys("\n".join(chosen))
        browser.find_element(By.ID, "predict").click()
        cards = _wait_until_done(browser, 2)
        marks = cards[0].find_elements(By.CSS_SELECTOR, "p.low-mark")
        assert len(marks) == 1 and marks[0].is_displayed()
        assert marks[0].text.startswith("⚠ Low confidence")
        first, second = model.classes_[np.argsort(proba[ambiguous])[::-1][:2]]
        assert f"{first} {100 * proba[ambiguous].max():.1f}% vs {second}" in (
            marks[0].text
        )
        assert f"under {margin:g})" in marks[0].text
        assert "low" in cards[0].get_attribute("class").split()
        assert cards[1].find_elements(By.CSS_SELECTOR, "p.low-mark") == []
        # the heat map's legend says what the colours mean
        legend = cards[0].find_element(By.CSS_SELECTOR, ".legend")
        assert legend.is_displayed() and "red: high" in legend.text
        assert legend.find_element(By.CSS_SELECTOR, ".legend-bar").size["width"] > 50
        browser.save_screenshot(str(artifacts / "app_model_card.png"))
        browser.execute_script("arguments[0].scrollIntoView()", cards[0])
        browser.save_screenshot(str(artifacts / "app_low_confidence.png"))

        # 3. a click on the heat map enlarges it, with its legend
        small = cards[0].find_element(By.CSS_SELECTOR, "img.overlay")
        small.click()
        viewer = browser.find_element(By.ID, "viewer")
        WebDriverWait(browser, 10).until(lambda d: viewer.is_displayed())
        large = browser.find_element(By.ID, "viewer-image")
        assert large.get_attribute("src") == small.get_attribute("src")
        assert large.size["width"] > 1.5 * small.size["width"]
        assert "red: high" in browser.find_element(By.ID, "viewer-legend").text
        browser.save_screenshot(str(artifacts / "app_enlarged_view.png"))
        browser.find_element(By.ID, "viewer-close").click()
        WebDriverWait(browser, 10).until(lambda d: not viewer.is_displayed())

        # 4. export the session as CSV and JSON
        assert "2 result(s)" in browser.find_element(By.ID, "session-count").text
        browser.find_element(By.ID, "export-csv").click()
        csv_file = _wait_for_download(downloads, ".csv")
        browser.find_element(By.ID, "export-json").click()
        json_file = _wait_for_download(downloads, ".json")
    shutil.copy(csv_file, artifacts / "app_export.csv")
    shutil.copy(json_file, artifacts / "app_export.json")

    expected = [str(label) for label in model.predict(chosen)]
    with open(csv_file, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["file"] for r in rows] == [Path(p).name for p in chosen]
    assert [r["label"] for r in rows] == expected
    assert [r["low_confidence"] for r in rows] == ["true", "false"]
    assert float(rows[0]["margin"]) == pytest.approx(gaps[ambiguous], abs=1e-5)
    for row, p in zip(rows, proba[[ambiguous, clear]], strict=True):
        values = [float(row[f"p({c})"]) for c in model.classes_]
        assert values == pytest.approx(p, abs=1e-5)
    data = json.loads(json_file.read_text(encoding="utf-8"))
    assert [r["label"] for r in data["results"]] == expected
    assert data["low_confidence_margin"] == pytest.approx(margin)
    assert data["models"]["brain-run"]["training_data"] == "data/brain/Training"
