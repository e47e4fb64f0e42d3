"""`gradc cache info`: what the disk cache holds, module by module, with the kernels Numba has
compiled machine code for (its `__pycache__` index files), and what this process compiled."""

from __future__ import annotations

import re
from pathlib import Path

from runtime import cache

_STAGE_RE = re.compile(r"# gradc \S+ generated module: stage (.+), (\w+) driver, (\d+) njit")
# Numba's index file per compiled function: <module stem>.<function>-<line>.pyXY.nbi
_INDEX_RE = re.compile(
    r"(?P<stem>[A-Za-z0-9_]+_[0-9a-f]{24})\.(?P<fn>[A-Za-z_]\w*)-\d+\.py\d+\.nbi"
)


def modules(folder: Path) -> list[dict]:
    """One record per cache entry in `folder`: name, stage, driver, njit functions, and the
    functions with compiled machine code on disk (with how many type signatures each)."""
    compiled: dict[str, dict[str, int]] = {}
    pyc = folder / "__pycache__"
    for path in sorted(pyc.glob("*.nbi")) if pyc.is_dir() else []:
        m = _INDEX_RE.fullmatch(path.name)
        if m:
            types = len(list(pyc.glob(f"{m['stem']}.{m['fn']}-*.nbc")))
            compiled.setdefault(m["stem"], {})[m["fn"]] = types
    out = []
    for path in sorted(folder.glob("gradc_*.py")):
        try:
            head = path.read_text(errors="replace").splitlines()[1]
        except (OSError, IndexError):
            head = ""
        m = _STAGE_RE.match(head)
        out.append(
            {
                "module": path.stem,
                "stage": m[1] if m else "?",
                "driver": m[2] if m else "?",
                "njit": int(m[3]) if m else 0,
                "compiled": compiled.get(path.stem, {}),
            }
        )
    return out


def report(mode: str | None = None) -> str:
    """The text `gradc cache info` prints, for the folder of code-generation `mode`."""
    info = cache.cache_info(mode)
    lines = []
    for key, value in info.items():
        if key == "bytes":
            value = f"{value} ({value / 2**20:.2f} MiB)"
        lines.append(f"{key:<9} {value}")
    mods = modules(Path(info["current"]))
    n_fns = sum(len(m["compiled"]) for m in mods)
    lines.append(f"modules   {len(mods)} in the current folder, {n_fns} njit functions compiled")
    for m in mods:
        fns = ", ".join(
            f"{fn}" + (f" ({k} signatures)" if k > 1 else "") for fn, k in m["compiled"].items()
        )
        lines.append(
            f"  {m['module']}  {m['stage']}: {m['driver']} driver, {len(m['compiled'])}/"
            f"{m['njit']} njit functions compiled{': ' + fns if fns else ''}"
        )
    return "\n".join(lines)
