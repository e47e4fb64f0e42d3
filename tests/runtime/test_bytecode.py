"""The generated modules' bytecode cache (runtime/bytecode.py): used when it matches the
checked text exactly, ignored and rewritten otherwise, removed with the cache."""

from __future__ import annotations

import hashlib
from pathlib import Path

from runtime import bytecode, cache
from runtime.cache import load_module

SOURCE = "def add(x, y):\n    return x + y\n"
OTHER = "def add(x, y):\n    return x - y\n"


def _counting_compile(monkeypatch) -> list:
    calls: list = []

    def counted(*args, **kwargs):
        calls.append(args[1])
        return compile(*args, **kwargs)

    monkeypatch.setattr(bytecode, "compile", counted, raising=False)
    return calls


def _code_file(module) -> Path:
    return bytecode._code_path(Path(module.__file__))


def test_bytecode_second_load_compiles_nothing_and_clear_cache_removes_it(cache_root, monkeypatch):
    calls = _counting_compile(monkeypatch)
    first = load_module(SOURCE)
    assert first.add(2, 3) == 5 and len(calls) == 1 and _code_file(first).exists()
    cache.clear_memory_cache()
    again = load_module(SOURCE)
    assert again is not first and again.add(2, 3) == 5 and len(calls) == 1
    assert again.add.__code__.co_filename == first.__file__  # what Numba's cache reads
    cache.clear_cache()
    assert not _code_file(first).exists()


def test_bytecode_of_another_text_or_damaged_is_recompiled(cache_root, monkeypatch):
    calls = _counting_compile(monkeypatch)
    mine, other = load_module(SOURCE), load_module(OTHER)
    target = _code_file(mine)
    cache.clear_memory_cache()
    # another entry's valid bytecode in this entry's place: its digest names other text
    target.write_bytes(_code_file(other).read_bytes())
    assert load_module(SOURCE).add(5, 3) == 8 and len(calls) == 3
    cache.clear_memory_cache()
    # the right header, then bytes that do not unmarshal to code
    text = Path(mine.__file__).read_text()
    check = hashlib.sha256(f"{mine.__file__}\n{text}".encode()).digest()
    target.write_bytes(bytecode._MAGIC + check + b"\x00garbage")
    assert load_module(SOURCE).add(5, 3) == 8 and len(calls) == 4
    cache.clear_memory_cache()
    assert load_module(SOURCE).add(1, 1) == 2 and len(calls) == 4  # rewritten, valid again
