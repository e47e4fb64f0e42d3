"""Imports flow one way: trace/ir/primitives -> autodiff -> passes -> plan -> codegen -> api."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# a module may import only from packages at its own level or above (lower index)
LAYERS = [
    ("compiler.logging_setup",),  # imports nothing from gradc
    ("compiler.ir",),
    ("compiler.primitives",),
    ("compiler.trace", "compiler.interpret", "compiler.debug_nans"),
    ("compiler.autodiff",),
    ("compiler.passes",),
    ("compiler.plan",),
    ("compiler.codegen",),
    ("compiler.pipeline", "compiler.arguments", "compiler.stage_cache", "compiler.stages"),
    ("compiler.api",),
    ("compiler.transforms",),
    (
        "compiler.cli",
        "compiler.examples",
        "compiler.docgen",
        "compiler.__main__",
        "compiler.distributed",
    ),
    ("compiler",),  # the package root: the public names, imported by nothing inside
]


def _layer(mod: str) -> int | None:
    for i, names in enumerate(LAYERS):
        if any(mod == n or (n != "compiler" and mod.startswith(n + ".")) for n in names):
            return i
    return None


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "compiler":  # `from compiler import api`: the submodules
                out.extend(f"compiler.{a.name}" for a in node.names)
            else:
                out.append(node.module)
    return out


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def test_layering_runtime_imports_nothing_from_compiler():
    for path in (ROOT / "runtime").rglob("*.py"):
        bad = [m for m in _imports(path) if m == "compiler" or m.startswith("compiler.")]
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_layering_compiler_imports_flow_one_way():
    problems = []
    for path in (ROOT / "compiler").rglob("*.py"):
        me = _module_name(path)
        mine = _layer(me)
        if mine is None:
            problems.append(f"{me} is in no layer: add it to LAYERS (and docs/architecture.md)")
            continue
        for m in _imports(path):
            theirs = _layer(m)
            if theirs is not None and theirs > mine:
                problems.append(f"{me} (layer {mine}) imports {m} (layer {theirs})")
    assert not problems, "\n".join(problems)


def test_layering_knows_every_module():
    # every module and package root under compiler/ has a layer, and every import of a
    # compiler module names one that exists
    names = {_module_name(p) for p in (ROOT / "compiler").rglob("*.py")}
    assert all(_layer(n) is not None for n in names), sorted(n for n in names if _layer(n) is None)
    for path in (ROOT / "compiler").rglob("*.py"):
        for m in _imports(path):
            if m.startswith("compiler."):
                assert m in names or m.rsplit(".", 1)[0] in names, f"{path}: {m}"
