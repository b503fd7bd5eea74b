"""Shared test helpers: child Python processes that import this checkout, and a clean calculator registry.

Tests import the helpers directly (``from conftest import tansaku, spawn``): pytest puts tests/ on
sys.path (rootdir conftest, no __init__.py), which also makes ``synthetic`` (tests/synthetic.py) importable.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"


def _import_gpaw_as_users_do() -> None:
    """Import GPAW (when installed) as it is imported outside pytest.

    GPAW switches on its debug wrappers when it sees ``pytest`` in ``sys.modules``: it replaces
    ``numpy.empty`` with a NaN-filling function and makes numpy raise on every over/invalid operation,
    for the whole process. Every later test would then run under a changed numpy, and numba can no longer
    compile anything that calls ``np.zeros`` (seen: emt-fast failing with "unsupported NumPy function
    'numpy.empty'" once a GPAW test had run). Imported first, with pytest hidden, GPAW stays as users get it.
    """
    hidden = sys.modules.pop("pytest", None)
    try:
        import gpaw  # noqa: F401
    except ImportError:
        pass
    finally:
        if hidden is not None:
            sys.modules["pytest"] = hidden


_import_gpaw_as_users_do()


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment of a child Python: it imports this checkout's tansaku (not an installed copy) and
    the test helpers (tests/synthetic.py), whatever its working directory; ``extra`` variables added."""
    path = [str(REPO), str(TESTS), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p), **extra}


def spawn(code: str, *args: object, env: dict[str, str] | None = None, **kw) -> subprocess.Popen:
    """``python -c code args...`` in the background (text mode); ``kw`` go to Popen (stdin, stdout, ...)."""
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], env=env or subprocess_env(), text=True,
                            **kw)


def tansaku(*args: object, cwd: Path | str | None = None, timeout: float = 300,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m tansaku args...`` to completion, capturing its output as text."""
    return subprocess.run([sys.executable, "-m", "tansaku", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env or subprocess_env())


def start_tansaku(*args: object, env: dict[str, str] | None = None) -> subprocess.Popen:
    """``python -m tansaku args...`` in the background, stdout and stderr together in one pipe."""
    return subprocess.Popen([sys.executable, "-m", "tansaku", *map(str, args)], env=env or subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture
def calculator_registry():
    """The calculator registry, restored after the test: calculators a test registers do not outlive it
    (nor their cached instances). Yields ``register``."""
    from tansaku.calculators import registry

    saved = dict(registry._REGISTRY)
    try:
        yield registry.register
    finally:
        registry._REGISTRY.clear()
        registry._REGISTRY.update(saved)
        registry._cached.cache_clear()
