"""The intensity k-means example runs offline and saves its plot."""

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plot_intensity_kmeans.py"


def _run(tmp_path, *args):
    env = {k: v for k, v in os.environ.items() if k != "SKMEDIMG_DATA"}
    env.update(MPLBACKEND="Agg", SKMEDIMG_EXAMPLES_OUT=str(tmp_path / "out"))
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    png = tmp_path / "out" / "intensity_kmeans_elbow_silhouette.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return result.stdout


def test_example_on_phantoms(tmp_path):
    stdout = _run(tmp_path)
    assert "300 synthetic phantoms" in stdout
    assert "highest silhouette at k = " in stdout
    assert "cluster  n_images  intensity_mean  intensity_std" in stdout


def test_example_on_a_real_folder(tmp_path, brain_training):
    stdout = _run(tmp_path, str(brain_training))
    assert f"300 images from {brain_training}" in stdout
    lines = stdout.splitlines()
    table = lines[lines.index("  k    inertia  silhouette") + 1 :][:7]
    assert [int(line.split()[0]) for line in table] == list(range(2, 9))
