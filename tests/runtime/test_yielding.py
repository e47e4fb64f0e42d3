"""The compile thread keeps out of its caller's way (runtime/yielding.py, docs/tiers.md): garbage
is collected before anything is frozen, and compiler passes yield only while another thread of
the process works."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from runtime import yielding

REPO = Path(__file__).resolve().parents[2]

HEAP = textwrap.dedent(
    """
    import gc, json, sys, weakref
    import numpy as np
    from compiler import value_and_grad
    from runtime import background

    class Node:
        pass

    def f(x):
        return np.sum(np.tanh(x) ** 2)

    a, b = Node(), Node()
    a.other, b.other = b, a  # a reference cycle: only the cyclic collector frees it
    dead = weakref.ref(a)
    del a, b
    gc.disable()  # the cycle may only go if the compile thread collects it
    value_and_grad(f)(np.linspace(-1.0, 1.0, 50))
    assert background.wait_idle(300)
    c, d = Node(), Node()
    c.other, d.other = d, c  # made after the last settle: nothing collects it here
    later = weakref.ref(c)
    del c, d
    print(json.dumps({"frozen": gc.get_freeze_count(), "cycle_freed": dead() is None,
                      "later_cycle_freed": later() is None,
                      "compiled": background.stats()["compiled"]}))
    """
)


def _heap_child(tmp_path: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO), GRADC_CACHE_DIR=str(tmp_path))
    env.pop("GRADC_COMPILE", None)
    env.pop(yielding.GC_FREEZE_ENV_VAR, None)
    out = subprocess.run(
        [sys.executable, "-c", HEAP], env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.compiled
def test_compile_thread_collects_then_freezes(tmp_path):
    got = _heap_child(tmp_path)
    assert got["compiled"] == 1
    assert got["frozen"] > 10_000  # the program's objects and Numba's
    assert got["cycle_freed"]  # collected before the freeze, not kept forever
    assert not got["later_cycle_freed"]  # the control: with gc off, only a settle frees one


def test_settle_heap_off(monkeypatch):
    monkeypatch.setenv(yielding.GC_FREEZE_ENV_VAR, "off")
    assert yielding.settle_heap() is False


@pytest.mark.parametrize("raw,want", [("", yielding.DEFAULT_SHARE), ("1", 1.0), (" 0.5 ", 0.5)])
def test_compile_share_reads_the_variable(monkeypatch, raw, want):
    monkeypatch.setenv(yielding.SHARE_ENV_VAR, raw)
    assert yielding.compile_share() == want


@pytest.mark.parametrize("raw", ["0", "-0.1", "1.5", "half", "nan"])
def test_compile_share_rejects_bad_values(monkeypatch, raw):
    monkeypatch.setenv(yielding.SHARE_ENV_VAR, raw)
    with pytest.raises(ValueError, match="GRADC_COMPILE_SHARE"):
        yielding.compile_share()


def test_pause_leaves_the_others_their_share():
    wall, own = 0.01, 0.006
    assert yielding.pause_for(wall, own, 0.0, 0.15) == 0.0  # the others were idle
    assert yielding.pause_for(wall, own, 0.1 * wall, 0.15) == 0.0  # below BUSY_ABOVE
    pause = yielding.pause_for(wall, own, 0.5 * wall, 0.15)
    assert own / (wall + pause) == pytest.approx(0.15)  # the compile keeps its share
    assert yielding.pause_for(wall, 0.001, 0.5 * wall, 0.15) == 0.0  # it already got less
    assert yielding.pause_for(wall, own, wall, 1.0) == 0.0  # yielding off


def test_pacer_sleeps_only_after_busy_windows(monkeypatch):
    now = {"wall": 0.0, "own": 0.0, "all": 0.0}
    monkeypatch.setattr(yielding, "clocks", lambda: (now["wall"], now["own"], now["all"]))
    sleeps: list[float] = []
    monkeypatch.setattr(yielding.time, "sleep", sleeps.append)
    pacer = yielding.Pacer(threading.get_ident(), 0.25)

    def advance(wall, own, others):
        now["wall"] += wall
        now["own"] += own
        now["all"] += own + others
        pacer.look()

    advance(0.001, 0.001, 0.0)  # under WINDOW_S: not looked at yet
    assert sleeps == []
    advance(0.003, 0.002, 0.0)  # a 4 ms window, the others idle
    assert sleeps == []
    advance(0.004, 0.002, 0.002)  # the others busy half the time: keep own at 25%
    assert sleeps == [pytest.approx(0.002 / 0.25 - 0.004)]
    other = threading.Thread(target=pacer.look)  # another thread's look does nothing
    now["wall"] += 1.0
    other.start()
    other.join()
    assert pacer.looks == 3 and len(sleeps) == 1


@pytest.mark.compiled
def test_numba_passes_and_imports_reach_the_pacer_on_its_thread_only():
    from numba import njit

    result: dict[str, object] = {}

    def compile_it() -> None:
        pacer = yielding.yield_to_caller(threading.get_ident(), 0.5)
        try:

            @njit(cache=False)
            def kernel(x, n):  # a new function object: never compiled before
                s = 0.0
                for i in range(n):
                    s += x * i
                return s

            result["value"] = kernel(1.5, 10)
        finally:
            pacer.close()
        result["looks"] = pacer.looks

    worker = threading.Thread(target=compile_it)
    worker.start()
    worker.join()
    assert result["value"] == 1.5 * 45
    assert result["looks"] >= 20  # every compiler pass's start and end, on that thread

    @njit(cache=False)
    def other(x):  # compiled on this thread after close(): nothing is paced or broken
        return x + 1.0

    assert other(1.0) == 2.0


RACE = textwrap.dedent(
    """
    import threading
    from runtime import cache, numba_import, yielding

    start = threading.Barrier(3)
    errors = []

    def run(fn):
        start.wait()
        try:
            fn()
        except BaseException as err:  # what a half-imported Numba raises
            errors.append(repr(err))

    jobs = [
        lambda: yielding.yield_to_caller(threading.get_ident(), 0.5),  # the compile thread
        cache.version_tag,  # an eager compile's first module load
        numba_import.import_numba,  # the compiled small-array driver's switch
    ]
    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(errors)
    """
)


def test_threads_that_import_numba_together_wait_for_each_other():
    # Numba imported by three threads at once raised _DeadlockError/"partially initialized
    # module" in every try before gradc's paths took one lock (runtime.numba_import)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for _ in range(2):
        out = subprocess.run(
            [sys.executable, "-c", RACE], env=env, capture_output=True, text=True, timeout=600
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip().splitlines()[-1] == "[]"
