"""A helper process that compiles a stage into the disk cache (`GRADC_COMPILE_IN=process`,
docs/tiers.md).

The background compile thread then loads the stage from the cache instead of compiling it:
Numba's compiler, much of it Python, runs in another interpreter, so it never holds the
caller's interpreter lock. What crosses is the lowered stage (graph and buffer plan, which
pickle) and the warm-up inputs; the helper compiles with `compile_graph(eager=True)` and runs
the stage once on them, as the thread would, so every kernel gets the same argument types.

    python -m compiler.codegen.helper < pickle of (cache root, [(Lowered, sample), ...])
"""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

from compiler.codegen.compile import compile_graph

log = logging.getLogger("gradc")

_ROOT = str(Path(__file__).resolve().parents[2])  # the folder holding `compiler`, `runtime`


def prefill(low: Any, sample: tuple, timeout_s: float = 600.0) -> bool:
    """Compile `low` (a `Lowered`) into the disk cache in a helper process, warmed up on
    `sample`; True when it succeeded. On failure the caller compiles in-process instead."""
    from runtime.cache import cache_root

    payload = pickle.dumps((str(cache_root()), [(low, sample)]), protocol=pickle.HIGHEST_PROTOCOL)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_ROOT, env.get("PYTHONPATH")]))
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "compiler.codegen.helper"],
            input=payload,
            env=env,
            capture_output=True,
            timeout=timeout_s,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        log.info("compile helper for %s did not run (%s); compiling here", low.name, err)
        return False
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        log.info("compile helper for %s failed (%s); compiling here", low.name, tail[0])
        return False
    return True


def main() -> int:
    """The helper's entry point: compile and warm up each stage it is sent."""
    root, jobs = pickle.loads(sys.stdin.buffer.read())
    os.environ["GRADC_CACHE_DIR"] = root
    for low, sample in jobs:
        fn = compile_graph(low.graph, low.buffers, low.name, eager=True, key=low.key)
        fn(*sample)
    return 0


if __name__ == "__main__":
    sys.exit(main())
