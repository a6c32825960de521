"""The web app: the JSON endpoint on a live loopback server, and its safety rules.

The helpers here (``trained_model``, ``live_server``, ``post_image``) are also
used by ``test_browser.py``.
"""

import base64
import contextlib
import io
import json
import struct
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import uuid
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("flask")

from skmedimg.app import add_serve_parser, create_app, load_models  # noqa: E402
from skmedimg.neural import CNNClassifier, load_model, save_model  # noqa: E402

N_TRAIN_PER_CLASS = 8
N_TEST_PER_CLASS = 3

_TRAINED = {}


def trained_model(data_dir, out_dir):
    """Train a tiny model on a few dozen real images, once per session.

    Returns ``(model_path, test_files)``: the model saved with ``save_model``
    and a few images per class that it was not trained on.
    """
    key = str(data_dir)
    if key not in _TRAINED:
        X, y, test = [], [], []
        for folder in sorted(p for p in Path(data_dir).iterdir() if p.is_dir()):
            files = sorted(str(f) for f in folder.glob("*.jpg"))
            X += files[:N_TRAIN_PER_CLASS]
            y += [folder.name] * N_TRAIN_PER_CLASS
            test += files[N_TRAIN_PER_CLASS : N_TRAIN_PER_CLASS + N_TEST_PER_CLASS]
        model = CNNClassifier(
            "test_efficientnet",
            pretrained=False,
            max_epochs=2,
            image_size=32,
            batch_size=16,
            lr=1e-2,
            random_state=0,
        )
        model.fit(np.array(X, dtype=object), np.array(y))
        path = Path(save_model(model, Path(out_dir) / "brain_mri.skmedimg"))
        _TRAINED[key] = (path, test)
    return _TRAINED[key]


@pytest.fixture(scope="module")
def model_and_images(brain_testing, tmp_path_factory):
    return trained_model(brain_testing, tmp_path_factory.mktemp("models"))


@contextlib.contextmanager
def live_server(app):
    """Run ``app`` on a free loopback port in a background thread; yield its URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _request(url, data=None, headers=None):
    """Send a request; return ``(status, parsed JSON body)``, also for 4xx/5xx."""
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    text = body.decode()
    assert "Traceback" not in text
    return status, json.loads(text)


def post_image(url, content, *, filename="image.jpg", **fields):
    """POST ``content`` as the multipart field ``file``, plus form ``fields``."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        f"{value}\r\n".encode()
        for name, value in fields.items()
    ]
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    )
    parts.append(head.encode() + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return _request(
        f"{url}/predict",
        data=b"".join(parts),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )


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


def _decode_data_url(url):
    assert url.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


# --------------------------------------------------------------------------
# The live server
# --------------------------------------------------------------------------


def test_predict_answers_like_model_predict(model_and_images):
    model_path, images = model_and_images
    model = load_model(model_path)
    classes = [str(c) for c in model.classes_]
    expected = [str(label) for label in model.predict(images)]
    expected_proba = model.predict_proba(images)
    with live_server(create_app([model_path])) as url:
        status, listing = _request(f"{url}/models")
        assert status == 200
        assert listing == {
            "models": [
                {
                    "name": "brain_mri",
                    "classes": classes,
                    "image_size": [32, 32],
                    "model_name": "test_efficientnet",
                    "card": None,
                }
            ]
        }
        labels = []
        for i, path in enumerate(images):
            fields = {"model": "brain_mri"} if i % 2 else {}
            status, answer = post_image(url, Path(path).read_bytes(), **fields)
            assert status == 200
            assert list(answer) == [
                "model",
                "label",
                "probabilities",
                "margin",
                "low_confidence",
            ]
            assert answer["model"] == "brain_mri"
            proba = answer["probabilities"]
            assert list(proba) == classes
            assert sum(proba.values()) == pytest.approx(1.0, abs=1e-6)
            assert answer["label"] == max(proba, key=proba.get)
            assert list(proba.values()) == pytest.approx(expected_proba[i], abs=1e-5)
            labels.append(answer["label"])
    assert labels == expected


def test_bad_uploads_get_4xx_and_the_server_keeps_serving(model_and_images, tmp_path):
    model_path, images = model_and_images
    good = Path(images[0]).read_bytes()
    bomb = Path(_png_claiming_size(tmp_path / "bomb.png", 60_000, 60_000)).read_bytes()
    oversized = good + bytes(700_000)  # a real JPEG, padded past the limit
    buffer = io.BytesIO()
    pixels = np.ones((32, 32), dtype=np.float32)
    pixels[3, 4] = np.nan
    Image.fromarray(pixels).save(buffer, format="TIFF")
    nan_tiff = buffer.getvalue()
    bad = [
        ("truncated JPEG", good[: len(good) // 3], "scan.jpg", 422, "truncated"),
        ("text file", b"patient notes\n" * 20, "notes.jpg", 415, "not an image"),
        ("oversized file", oversized, "big.jpg", 413, "larger than the limit"),
        ("decompression bomb", bomb, "bomb.png", 422, "decompression bomb"),
        ("float TIFF with NaN", nan_tiff, "scan.tif", 422, "NaN or infinite"),
        ("empty file", b"", "empty.png", 400, "empty"),
        (
            "PNG signature only",
            b"\x89PNG\r\n\x1a\n" + bytes(40),
            "x.png",
            415,
            "format",
        ),
    ]
    app = create_app({"brain": model_path}, max_upload_mb=0.5)
    with live_server(app) as url:
        for what, content, filename, code, message in bad:
            status, answer = post_image(url, content, filename=filename)
            assert status == code, (what, answer)
            assert list(answer) == ["error"], what
            assert message in answer["error"], (what, answer)
            assert "skmedimg-upload-" not in answer["error"]  # no server paths
            # ... and the next good request is answered
            status, answer = post_image(url, good)
            assert status == 200 and answer["model"] == "brain", what
        status, answer = post_image(url, good, model="nope")
        assert status == 400 and "unknown model 'nope'" in answer["error"]
        assert "brain" in answer["error"]
        # a client's long text is not echoed back whole
        status, answer = post_image(url, good, model="x" * 400_000)
        assert status == 400 and "unknown model 'xxx" in answer["error"]
        assert "… (400002 characters)" in answer["error"]
        assert len(answer["error"]) < 200 and "brain" in answer["error"]
        status, answer = post_image(url, good[:100], filename="n" * 5000 + ".jpg")
        assert status == 422 and len(answer["error"]) < 400, answer
        status, answer = _request(f"{url}/predict", data=b"x=1")
        assert status == 400 and "field 'file'" in answer["error"]
        status, answer = _request(f"{url}/no-such-page")
        assert status == 404 and "error" in answer


def test_explain_returns_the_image_and_its_gradcam_overlay(model_and_images):
    model_path, images = model_and_images
    with create_app([model_path]).test_client() as client:
        with open(images[0], "rb") as fh:
            response = client.post(
                "/predict", data={"file": (fh, "a.jpg"), "explain": "1"}
            )
    assert response.status_code == 200
    answer = response.get_json()
    explanation = answer["explanation"]
    assert explanation["method"] == "gradcam"
    assert explanation["class"] == answer["label"]
    with Image.open(images[0]) as original:
        width, height = original.size
    scale = min(1.0, 320 / max(width, height))
    expected_size = (round(width * scale), round(height * scale))
    shown = _decode_data_url(explanation["image"])
    overlay = _decode_data_url(explanation["overlay"])
    assert shown.size == overlay.size == expected_size
    assert shown.mode == overlay.mode == "RGB"


# --------------------------------------------------------------------------
# The page, headers and hosts (test client: no port needed)
# --------------------------------------------------------------------------


def test_page_lists_the_models_and_serves_its_assets(model_and_images):
    model_path, _ = model_and_images
    app = create_app({"first": model_path, "second": model_path})
    with app.test_client() as client:
        page = client.get("/")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        classes = json.dumps([str(c) for c in load_model(model_path).classes_])
        for name in ("first", "second"):
            # the page orders a model's probabilities by its classes
            assert f"<option value=\"{name}\" data-classes='{classes}'>" in html
        assert 'id="drop"' in html and 'id="predict"' in html
        assert "<script src=" in html and "http" not in html.split("<body")[0]
        csp = page.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        script = client.get("/app.js")
        assert script.mimetype == "text/javascript"
        assert "innerHTML" not in script.get_data(as_text=True)
        assert client.get("/app.css").mimetype == "text/css"
        assert client.get("/predict").status_code == 405
    # names come from file names: they are escaped, never markup
    with create_app({"<b>x</b>": model_path}).test_client() as client:
        html = client.get("/").get_data(as_text=True)
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
    # so are class names, in the attribute that lists them
    odd = load_model(model_path)
    odd.classes_ = np.array(["a'b", "<i>"], dtype=object)
    with create_app({"odd": odd}).test_client() as client:
        html = client.get("/").get_data(as_text=True)
    assert "<i>" not in html and "a'b" not in html.split("data-classes=")[1][:40]


def test_only_loopback_host_names_are_answered_by_default(model_and_images):
    model_path, _ = model_and_images
    with create_app([model_path]).test_client() as client:
        for host in ("localhost:8000", "127.0.0.1:8000", "[::1]:8000"):
            assert client.get("/models", headers={"Host": host}).status_code == 200
        response = client.get("/models", headers={"Host": "evil.example:8000"})
        assert response.status_code == 400 and "error" in response.get_json()
    with create_app([model_path], trusted_hosts=None).test_client() as client:
        response = client.get("/models", headers={"Host": "scanner.lan"})
        assert response.status_code == 200


def test_host_headers_that_only_start_like_a_loopback_name_are_refused(
    model_and_images,
):
    from skmedimg.app._server import _trusted_hosts

    model_path, _ = model_and_images
    with create_app([model_path]).test_client() as client:
        for host in ("[::1]evil.example", "localhost:evil", "127.0.0.1:80:80"):
            response = client.get("/models", headers={"Host": host})
            assert response.status_code == 400, host
    # bound to another loopback address, that address is answered too
    for bound, header in [("127.0.0.2", "127.0.0.2:8000"), ("::1", "[::1]:80")]:
        app = create_app([model_path], trusted_hosts=_trusted_hosts(bound))
        with app.test_client() as client:
            assert client.get("/models", headers={"Host": header}).status_code == 200
            response = client.get("/models", headers={"Host": "evil.example"})
            assert response.status_code == 400
    assert _trusted_hosts("0.0.0.0") is None


def test_http_errors_keep_their_meaning(model_and_images):
    model_path, _ = model_and_images
    with create_app([model_path], max_upload_mb=1).test_client() as client:
        response = client.get("/predict")
        assert response.status_code == 405
        assert "POST" in response.headers["Allow"]
        # a form field over Flask's form memory limit, in a small request
        response = client.post(
            "/predict",
            data={"model": "x" * 600_000},
            content_type="multipart/form-data",
        )
        assert response.status_code == 413
        assert "upload is larger than the limit" not in response.get_json()["error"]
        response = client.post(
            "/predict",
            data={"file": (io.BytesIO(b"x" * 2_000_000), "big.png")},
            content_type="multipart/form-data",
        )
        assert response.status_code == 413
        assert "larger than the limit of 1 MB" in response.get_json()["error"]


def test_a_failed_write_of_the_upload_leaves_no_file(model_and_images, monkeypatch):
    import os
    import tempfile

    model_path, images = model_and_images
    folder = Path(tempfile.mkdtemp())
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, fd, mode):
            self.handle = real_fdopen(fd, mode)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            raise OSError(28, "No space left on device")

    app = create_app([model_path])
    monkeypatch.setattr(os, "fdopen", FullDisk)
    with app.test_client() as client:
        response = client.post(
            "/predict",
            data={"file": (io.BytesIO(Path(images[0]).read_bytes()), "a.jpg")},
            content_type="multipart/form-data",
        )
    assert response.status_code == 500
    assert list(folder.iterdir()) == []


def test_model_names_must_be_distinct_as_text(model_and_images):
    model = load_model(model_and_images[0])
    with pytest.raises(ValueError, match="not distinct as text"):
        create_app({1: model, "1": model})


class _BrokenModel:
    classes_ = np.array(["a", "b"])
    image_size_ = (16, 16)

    def predict_proba(self, X):
        raise RuntimeError("secret internal detail")


def test_a_server_failure_is_500_json_without_details(model_and_images):
    _, images = model_and_images
    app = create_app({"broken": _BrokenModel()})
    with app.test_client() as client, open(images[0], "rb") as fh:
        response = client.post("/predict", data={"file": (fh, "a.jpg")})
    assert response.status_code == 500
    text = response.get_data(as_text=True)
    assert "internal error" in response.get_json()["error"]
    assert "secret" not in text and "Traceback" not in text


# --------------------------------------------------------------------------
# Loading models from the command line's paths
# --------------------------------------------------------------------------


def test_load_models_from_files_and_folders(model_and_images, tmp_path):
    from safetensors.numpy import save_file

    model_path, _ = model_and_images
    runs = tmp_path / "runs"
    for run in ("effnet", "resnet"):
        (runs / run).mkdir(parents=True)
        (runs / run / "model.skmedimg").write_bytes(model_path.read_bytes())
    assert list(load_models(runs)) == ["effnet", "resnet"]

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "brain.skmedimg").write_bytes(model_path.read_bytes())
    save_file({"w": np.zeros(2, np.float32)}, str(mixed / "weights.safetensors"))
    with pytest.warns(UserWarning, match="skipping .*weights.safetensors"):
        models = load_models([mixed, model_path])
    assert list(models) == ["brain", "brain_mri"]
    assert all(isinstance(m, CNNClassifier) for m in models.values())

    with pytest.raises(ValueError, match="weights.safetensors: cannot load"):
        load_models(mixed / "weights.safetensors")
    with pytest.raises(FileNotFoundError, match="no such model file"):
        load_models(tmp_path / "missing.skmedimg")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no saved models found"):
        load_models(tmp_path / "empty")
    with pytest.raises(TypeError, match="not a fitted skmedimg CNN classifier"):
        create_app({"x": object()})


def test_serve_command_line_arguments():
    import argparse

    parser = argparse.ArgumentParser()
    add_serve_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve", "a.skmedimg", "runs/", "--port", "0"])
    assert args.models == ["a.skmedimg", "runs/"]
    assert (args.host, args.port, args.max_upload_mb) == ("127.0.0.1", 0, 20)
    assert callable(args.func)


def test_importing_the_app_imports_neither_flask_nor_torch():
    code = (
        "import sys, skmedimg.app; print(sorted({'flask', 'torch'} & set(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_a_gray_model_reads_uploads_as_it_reads_files(tmp_path):
    # A colour upload for a color="gray" model: the page must give the
    # probabilities that model.predict_proba gives for the same file, where
    # the reader converts to luminance before resizing.
    from tests.helpers import phantom_model

    model, _, _ = phantom_model(image_size=24, color="gray")
    rng = np.random.default_rng(0)
    path = tmp_path / "colour.png"
    Image.fromarray(rng.integers(0, 256, (61, 47, 3), dtype=np.uint8)).save(path)
    expected = model.predict_proba(np.array([str(path)], dtype=object))[0]
    with live_server(create_app({"gray": model})) as url:
        status, answer = post_image(
            url, path.read_bytes(), filename="colour.png", explain="1"
        )
    assert status == 200
    assert list(answer["probabilities"].values()) == [float(p) for p in expected]
    overlay = _decode_data_url(answer["explanation"]["overlay"])
    assert overlay.size == (47, 61)
