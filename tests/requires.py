"""Tools some tests need (Node and npm packages, Chromium): a skip on a developer's
machine that lacks one, a failure in CI (CI=true), which installs them all."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def require(what: str, present: bool, hint: str) -> None:
    if present:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI: {hint}")
    pytest.skip(f"{what} is missing: {hint}")


def node_with(package_dir: Path, module: str) -> str:
    """The `node` executable, once `package_dir`'s npm packages (`module` among them)
    are installed."""
    node = shutil.which("node")
    require("node", node is not None, "install Node 18+ so that `node` is on PATH")
    where = package_dir.relative_to(ROOT)
    require(f"{where}/node_modules", (package_dir / "node_modules" / module).is_dir(),
            f"run `npm ci --prefix {where}`")
    return node
