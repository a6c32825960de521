"""ColumnTable: a dict of columns that prints as a table."""

import pickle
import sys

import numpy as np
import pytest

from skmedimg.utils import ColumnTable


def _table():
    return ColumnTable(
        {
            "cluster": np.arange(3),
            "n_images": np.array([10, 2, 0]),
            "intensity_mean": np.array([203.25, 29.5, np.nan]),
            "name": np.array(["dark", "bright", None], dtype=object),
        },
        title="Clusters",
    )


def test_prints_aligned_with_blanks_for_missing_values():
    assert repr(_table()).splitlines() == [
        "Clusters",
        "cluster  n_images  intensity_mean  name",
        "      0        10          203.25  dark",
        "      1         2           29.50  bright",
        "      2         0",
    ]


def test_long_tables_are_cut_and_counted():
    table = ColumnTable({"k": np.arange(25)})
    lines = repr(table).splitlines()
    assert len(lines) == 1 + 20 + 1 and lines[-1] == "... 5 more row(s)"


def test_dict_access_rows_html_and_pickle():
    table = _table()
    assert isinstance(table, dict) and list(table) == [
        "cluster",
        "n_images",
        "intensity_mean",
        "name",
    ]
    assert table["n_images"].tolist() == [10, 2, 0] and table.n_rows == 3
    rows = table.rows()
    assert rows[0] == {
        "cluster": 0,
        "n_images": 10,
        "intensity_mean": 203.25,
        "name": "dark",
    }
    assert type(rows[0]["cluster"]) is int
    html = table._repr_html_()
    assert html.count("<tr>") == 4 and "<p>Clusters</p>" in html
    again = pickle.loads(pickle.dumps(table))
    assert type(again) is ColumnTable and again.title == "Clusters"
    assert repr(again) == repr(table)


def test_html_escapes_text():
    html = ColumnTable({"item": ["<b>x.png</b>"]})._repr_html_()
    assert "<b>x.png" not in html and "&lt;b&gt;x.png&lt;/b&gt;" in html


def test_columns_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="must have one length"):
        ColumnTable({"a": [1, 2], "b": [1]})


def test_to_frame_with_and_without_pandas(monkeypatch):
    pd = pytest.importorskip("pandas")
    frame = _table().to_frame()
    assert isinstance(frame, pd.DataFrame) and frame.shape == (3, 4)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"needs pandas \(pip install pandas\)"):
        _table().to_frame()
