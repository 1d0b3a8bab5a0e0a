"""The package's shape: private modules behind each floor's public names (ARCHITECTURE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "ih5"
FLOORS = sorted(path.name for path in SRC.iterdir() if (path / "__init__.py").exists())


def modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_every_module_of_a_floor_but_its_face_is_private() -> None:
    public = [
        str(path.relative_to(SRC))
        for floor in FLOORS
        for path in (SRC / floor).glob("*.py")
        if not path.name.startswith("_")
    ]
    assert public == []


def test_no_floor_imports_another_floors_private_module() -> None:
    crossings = []
    for path in modules():
        floor = path.relative_to(SRC).parts[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                parts = node.module.split(".")
                if (
                    len(parts) >= 3
                    and parts[0] == "ih5"
                    and parts[1] != floor
                    and parts[2].startswith("_")
                ):
                    crossings.append(f"{path.relative_to(SRC)}: from {node.module}")
    assert crossings == []
