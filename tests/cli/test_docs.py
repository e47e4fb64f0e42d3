"""docs/ops.md is generated from the registry and must match it."""

from __future__ import annotations

from pathlib import Path

from compiler.docgen import DEFAULT_PATH, render_ops
from compiler.primitives import OPS

ROOT = Path(__file__).resolve().parents[2]


def test_docs_ops_table_matches_registry():
    assert DEFAULT_PATH == ROOT / "docs" / "ops.md"
    assert DEFAULT_PATH.read_text() == render_ops(), (
        "docs/ops.md is out of date: run `python -m compiler.docgen`"
    )


def test_docs_ops_table_lists_every_op():
    text = render_ops()
    for name in OPS:
        assert f"| `{name}` |" in text


def test_docs_link_targets_exist():
    import re

    for md in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", md.read_text()):
            if "://" in target:
                continue
            assert (md.parent / target).exists(), f"{md.name} links to missing {target}"


def test_docs_readme_and_getting_started_examples_run(monkeypatch):
    import re

    monkeypatch.setenv("GRADC_BACKEND", "interpret")  # the code, not the compiler, is under test
    for md in (ROOT / "README.md", ROOT / "docs" / "getting-started.md"):
        for block in re.findall(r"```python\n(.*?)```", md.read_text(), re.S):
            exec(compile(block, str(md), "exec"), {})
