"""The dashboard's TypeScript unit tests (tests/web/*.test.ts): bundled by esbuild, run by node's own test runner."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "src" / "coinwire" / "web"
ESBUILD = WEB / "node_modules" / ".bin" / "esbuild"
TSC = WEB / "node_modules" / ".bin" / "tsc"
HERE = Path(__file__).resolve().parent


def test_typescript_units_type_check() -> None:
    """The tests read the client's types (an order view's fields): tsc holds them to the sources as the build does."""
    if not TSC.exists():
        pytest.fail("the dashboard's node_modules (make web) are needed to type-check the TypeScript unit tests")
    done = subprocess.run([str(TSC), "-p", str(HERE / "tsconfig.json")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


@pytest.mark.parametrize("source", sorted(p.name for p in HERE.glob("*.test.ts")))
def test_typescript_units(source: str, tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None or not ESBUILD.exists():
        pytest.fail("node and the dashboard's node_modules (make web) are needed for the TypeScript unit tests")
    bundle = tmp_path / source.replace(".ts", ".mjs")
    built = subprocess.run([str(ESBUILD), str(HERE / source), "--bundle", "--platform=node", "--format=esm",
                            f"--outfile={bundle}"], capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    ran = subprocess.run([node, "--test", str(bundle)], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stdout[-6000:] + ran.stderr[-2000:]
