"""verbose="auto": progress when a person is watching, quiet otherwise."""

import sys
import threading
import types

import pytest

from skmedimg.utils import is_interactive, resolve_verbose


@pytest.mark.parametrize("tty", [True, False])
def test_a_terminal_is_watched_a_pipe_is_not(monkeypatch, tty):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty)
    assert is_interactive() is tty
    assert resolve_verbose("auto") == int(tty)


def test_explicit_values_are_kept(monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert resolve_verbose(0) == 0
    assert resolve_verbose(False) == 0
    assert resolve_verbose(2) == 2


def test_threads_other_than_the_main_one_are_quiet(monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    seen = []
    thread = threading.Thread(target=lambda: seen.append(resolve_verbose("auto")))
    thread.start()
    thread.join()
    assert seen == [0]


def test_a_jupyter_kernel_is_watched(monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    shell = types.SimpleNamespace(kernel=object())
    fake = types.SimpleNamespace(get_ipython=lambda: shell)
    monkeypatch.setitem(sys.modules, "IPython", fake)
    assert is_interactive()
    # a terminal IPython shell has no kernel: its stderr decides
    monkeypatch.setattr(fake, "get_ipython", lambda: types.SimpleNamespace())
    assert not is_interactive()


def test_a_closed_or_missing_stream_is_quiet(monkeypatch):
    monkeypatch.setattr(sys, "stderr", None)
    assert not is_interactive()

    class Closed:
        def isatty(self):
            raise ValueError("I/O operation on closed file")

    monkeypatch.setattr(sys, "stderr", Closed())
    assert not is_interactive()
