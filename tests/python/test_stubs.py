"""The public surface: the type stubs match the native module, `corral` exports
what it says, and the README's Python example runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import corral
from corral import _core

ROOT = Path(__file__).resolve().parents[2]


def test_stubtest(tmp_path: Path) -> None:
    # cwd=tmp_path keeps mypy's cache out of the repository.
    r = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "corral._core"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_exports() -> None:
    for name in corral.__all__:
        assert hasattr(corral, name), name
    for name in _core.__all__:
        assert name in corral.__all__, name
    assert corral.__version__ == "0.1.0"
    assert corral.__version__ == _core.__version__


def test_core_classes_say_corral() -> None:
    for name in ("TokenizerInfo", "GrammarCompiler", "CompiledGrammar", "GrammarMatcher"):
        assert getattr(corral, name).__module__ == "corral"


def test_importing_corral_does_not_import_torch() -> None:
    code = "import sys, corral; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_readme_python_examples() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", readme, flags=re.S | re.M)
    assert blocks
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
