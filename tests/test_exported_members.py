"""The public surface: `__all__` matches what the packages really export."""

from __future__ import annotations

import types

import pytest

import modelfetch
import modelfetch.testing


@pytest.mark.parametrize("module", [modelfetch, modelfetch.testing], ids=lambda m: m.__name__)
def test_all_matches_public_names(module: types.ModuleType) -> None:
    """Every public name is in `__all__`, every `__all__` entry exists, and it is sorted."""
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    } | set(getattr(module, "_LAZY", {}))  # imported on first use
    exported = set(module.__all__)
    assert public == exported - {"__version__"}
    assert all(hasattr(module, name) for name in exported)
    assert list(module.__all__) == sorted(module.__all__)


def test_version_is_a_string() -> None:
    """`__version__` comes from the installed metadata."""
    assert modelfetch.__version__.count(".") >= 2


def test_importing_modelfetch_imports_no_hub_client() -> None:
    """`import modelfetch` and `modelfetch.testing` import neither huggingface_hub nor httpx2 nor httpx."""
    import subprocess
    import sys

    code = (
        "import sys, modelfetch, modelfetch.testing; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'huggingface_hub', 'httpx2', 'httpx'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
