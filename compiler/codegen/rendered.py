"""What codegen renders from a cached stage, cached beside it: a warm process skips rendering.

Rendering the 100-step integrator's module (66 loops, 178 kB of Python) took 76-100 ms of a
warm process's first call, for text that is a pure function of the lowered graph, its buffer
plan, the stage, the tier, the driver choice and the SIMD mode. The stage cache names the
lowered graph and plan exactly (`Lowered.key`: its entry's key, which covers the traced graph,
the options, the GRADC_* environment and every gradc source file, and the stage), so the
render key adds the rest:

    sha256(Lowered.key | tier | driver | SIMD mode and the functions libmvec offers)

(the NumPy tier renders no kernels, so no SIMD part). The entry (`runtime.artifacts`, kind
"render") holds the module text and the params the stage binds, pickled; the graph and plan
are the caller's. A damaged entry is a miss (and rewritten); params that do not pickle are
simply not stored.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
from typing import Any

from runtime.artifacts import load_artifact, store_artifact

log = logging.getLogger("gradc")

_FIELDS = ("source", "params", "kind", "count", "layout", "small_sites")


def render_key(key: str, tier: str, driver: str) -> str:
    """The render cache's key for lowered graph `key` rendered for `tier` with `driver`."""
    simd_part = ""
    if tier != "numpy":
        from compiler.codegen import simd

        simd_part = f"{simd.mode()}|{sorted(simd.host().funcs)}"
    return hashlib.sha256(f"{key}|{tier}|{driver}|{simd_part}".encode()).hexdigest()


def load_rendered(rkey: str) -> dict[str, Any] | None:
    """The fields stored under `rkey` (`_FIELDS` and `arena`: whether it keeps the plan)."""
    data = load_artifact(rkey, kind="render")
    if data is None:
        return None
    try:
        fields = pickle.loads(data)
    except Exception as err:  # written by this build, so only a damaged file gets here
        log.warning("render cache: entry %s unreadable (%s); rendering", rkey[:24], err)
        return None
    return fields


def store_rendered(rkey: str, gen: Any) -> None:
    """Store `gen` (a `compile.Generated`) under `rkey`, unless its params do not pickle."""
    fields = {name: getattr(gen, name) for name in _FIELDS}
    fields["arena"] = gen.buffers is not None
    try:
        payload = pickle.dumps(fields, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError, RecursionError) as err:
        log.debug("render cache: %s not picklable (%s); not stored", rkey[:24], err)
        return
    store_artifact(rkey, payload, kind="render")


__all__ = ["load_rendered", "render_key", "store_rendered"]
