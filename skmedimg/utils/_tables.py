"""Small printable tables: columns of equal length, shown as text or HTML.

Results that are tables (a per-cluster summary, a per-image validation
report) are returned as a :class:`ColumnTable`: a ``dict`` from column name
to a 1-D array, so ``table["n_images"]`` keeps working, that prints as an
aligned text table, renders as an HTML table in notebooks and turns into a
pandas ``DataFrame`` with :meth:`ColumnTable.to_frame` when pandas is
installed (pandas is not a dependency of skmedimg).
"""

from __future__ import annotations

import html
from numbers import Integral, Real

import numpy as np

__all__ = ["ColumnTable", "format_table"]

_MAX_ROWS = 20


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _is_float(value):
    return isinstance(value, Real) and not isinstance(value, Integral | bool)


def _column_text(values):
    """Return the text of a column's cells.

    Floats get one number of decimals per column (2, or 4 when every value is
    below 1); ``None`` and NaN are blanks.
    """
    values = [_plain(v) for v in values]
    floats = [abs(v) for v in values if _is_float(v) and np.isfinite(v)]
    decimals = 4 if floats and max(floats) < 1 else 2
    cells = []
    for value in values:
        if value is None or (_is_float(value) and np.isnan(value)):
            cells.append("")
        elif _is_float(value):
            cells.append(f"{value:.{decimals}f}")
        else:
            cells.append(str(value))
    return cells


def _shown(columns, max_rows):
    names = list(columns)
    n_rows = len(columns[names[0]]) if names else 0
    shown = n_rows if max_rows is None else min(n_rows, max_rows)
    texts = [_column_text(list(columns[name][:shown])) for name in names]
    cells = [[text[i] for text in texts] for i in range(shown)]
    return names, cells, n_rows - shown


def format_table(columns, *, title=None, max_rows=_MAX_ROWS, align="auto"):
    """Return ``columns`` (a mapping of equal-length sequences) as aligned text.

    Parameters
    ----------
    columns : mapping of str to sequence
        The columns, in display order.
    title : str, default=None
        A first line above the header.
    max_rows : int or None, default=20
        Rows shown; a last line counts the others.
    align : {"auto", "right"}, default="auto"
        ``"auto"``: numbers right-aligned, text left-aligned; ``"right"``:
        every column right-aligned (cells already formatted as text).

    Returns
    -------
    text : str
        The header and one line per row.
    """
    names, cells, n_hidden = _shown(columns, max_rows)
    widths = [
        max([len(name)] + [len(row[j]) for row in cells])
        for j, name in enumerate(names)
    ]
    numeric = [
        align == "right"
        or all(_is_number(columns[name][i]) for i in range(len(cells)))
        for name in names
    ]

    def line(values):
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    lines = [] if title is None else [title]
    lines.append(line(names))
    lines += [line(row) for row in cells]
    if n_hidden:
        lines.append(f"... {n_hidden} more row(s)")
    return "\n".join(lines)


def _is_number(value):
    if isinstance(value, np.generic):
        value = value.item()
    return value is None or (isinstance(value, Real) and not isinstance(value, bool))


def _html_table(columns, *, title=None, max_rows=_MAX_ROWS):
    names, cells, n_hidden = _shown(columns, max_rows)
    parts = ["<div>"]
    if title is not None:
        parts.append(f"<p>{html.escape(title)}</p>")
    parts.append("<table>")
    parts.append(
        "<thead><tr>"
        + "".join(f"<th>{html.escape(n)}</th>" for n in names)
        + "</tr></thead><tbody>"
    )
    for row in cells:
        parts.append(
            "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>"
        )
    parts.append("</tbody></table>")
    if n_hidden:
        parts.append(f"<p>... {n_hidden} more row(s)</p>")
    parts.append("</div>")
    return "".join(parts)


def _to_frame(columns, what):
    try:
        import pandas as pd
    except ImportError:
        raise ImportError(
            f"{what}.to_frame() needs pandas (pip install pandas); the table is "
            "also a dict of arrays, and .rows() gives its rows as dicts"
        ) from None
    return pd.DataFrame({name: np.asarray(values) for name, values in columns.items()})


class ColumnTable(dict):
    """A dict of equal-length 1-D arrays that prints as a table.

    Dict access is unchanged (``table["n_images"]``, ``list(table)``,
    ``dict(table)``); the ``repr`` is an aligned text table of the first 20
    rows, notebooks render it as an HTML table, :meth:`rows` gives the rows as
    dicts of Python numbers and :meth:`to_frame` a pandas ``DataFrame``.

    Parameters
    ----------
    columns : mapping of str to array-like
        The columns, in display order, all of one length.
    title : str, default=None
        The first line of the printed table.
    """

    def __init__(self, columns=(), *, title=None):
        super().__init__(columns)
        lengths = {len(v) for v in self.values()}
        if len(lengths) > 1:
            raise ValueError(
                "the columns of a table must have one length, got "
                f"{ {k: len(v) for k, v in self.items()} }"
            )
        self.title = title

    @property
    def n_rows(self):
        """Number of rows."""
        return len(next(iter(self.values()))) if self else 0

    def rows(self):
        """Return the rows as a list of dicts of Python values."""
        return [
            {
                name: (v.item() if isinstance(v, np.generic) else v)
                for name, v in ((name, self[name][i]) for name in self)
            }
            for i in range(self.n_rows)
        ]

    def to_frame(self):
        """Return the table as a pandas ``DataFrame`` (pandas must be installed).

        Returns
        -------
        frame : pandas.DataFrame
            One column per key, in order.
        """
        return _to_frame(self, type(self).__name__)

    def __repr__(self):
        return format_table(self, title=self.title)

    __str__ = __repr__

    def _repr_html_(self):
        return _html_table(self, title=self.title)

    def __reduce__(self):
        return (_rebuild_table, (type(self), dict(self), self.title))


def _rebuild_table(cls, columns, title):
    return cls(columns, title=title)
