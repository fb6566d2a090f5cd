"""Build the optional C speedups (pooldoctor._speedups); everything else is in pyproject.toml.

Without a compiler, or on Python < 3.11, the package installs without them and uses the same
code in pure Python (runtime/hotpath.py).
"""

import os
import sys

from setuptools import Extension, setup

ext_modules = []
if sys.version_info >= (3, 11) and sys.implementation.name == "cpython" and not os.environ.get(
    "POOLDOCTOR_NO_SPEEDUPS"
):
    ext_modules.append(
        Extension("pooldoctor._speedups", ["src/pooldoctor/_speedups.c"], optional=True)
    )

setup(ext_modules=ext_modules)
