"""Loaded at interpreter start by `pooldoctor run` (through PYTHONPATH): install the guard.

Chains to any other ``sitecustomize`` module further down ``sys.path`` first.
"""

import os
import sys


def _abspath(path: str) -> str:
    try:
        return os.path.abspath(path)
    except OSError:  # started in a working folder that is gone
        return path


def _chain() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    saved = list(sys.path)
    this = sys.modules.pop("sitecustomize", None)
    try:
        sys.path[:] = [p for p in sys.path if _abspath(p or ".") != here]
        import importlib

        try:
            importlib.import_module("sitecustomize")
        except ImportError:
            pass
    finally:
        sys.path[:] = saved
        if this is not None:
            sys.modules["sitecustomize"] = this


def _start() -> None:
    try:
        from pooldoctor.runtime.boot import start
    except ImportError as e:
        sys.stderr.write(f"pooldoctor: cannot guard {sys.executable}: {e} "
                         "(install pooldoctor in this interpreter's environment)\n")
        return
    start()


_chain()
_start()
