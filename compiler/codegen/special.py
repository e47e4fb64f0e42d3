"""Fixed kernels for the indexed ops, on 3-D views `(before axis, axis, after axis)`.

The driver reshapes operands to three dimensions (free for contiguous arrays), so one kernel
text serves every rank and axis, and Numba specialises it per dtype.
"""

from __future__ import annotations

from compiler.codegen.source import NJIT, name_kernel

# Negative indices count from the end, as in NumPy; anything else out of range raises
# instead of reading or writing outside the array.
_INDEX = """\
        j = idx[k]
        if j < 0:
            j += m
        if j < 0 or j >= m:
            raise IndexError("{op}: index out of range")"""

_TEMPLATES = {
    "take": """\
def {{name}}(x, idx, out):
    # take: out[a, k, c] = x[a, idx[k], c]
    n0, n1, n2 = out.shape
    m = x.shape[1]
    for a in range(n0):
        for k in range(n1):
{index}
            for c in range(n2):
                out[a, k, c] = x[a, j, c]
""",
    "scatter_add": """\
def {{name}}(out, idx, v):
    # scatter_add: out[a, idx[k], c] += v[a, k, c]  (repeated indices accumulate)
    n0, n1, n2 = v.shape
    m = out.shape[1]
    for a in range(n0):
        for k in range(n1):
{index}
            for c in range(n2):
                out[a, j, c] += v[a, k, c]
""",
    "scatter": """\
def {{name}}(out, idx, v):
    # scatter: out[a, idx[k], c] = v[a, k, c]  (the last of repeated indices wins)
    n0, n1, n2 = v.shape
    m = out.shape[1]
    for a in range(n0):
        for k in range(n1):
{index}
            for c in range(n2):
                out[a, j, c] = v[a, k, c]
""",
}


def add(kernels: dict[str, str], op: str) -> str:
    """Add the kernel for `op` (take, scatter, scatter_add) to `kernels`; return its name."""
    index = "\n".join("    " + line for line in _INDEX.format(op=op).splitlines())
    template = NJIT + "\n" + _TEMPLATES[op].format(index=index)
    name, text = name_kernel(template)
    kernels[name] = text
    return name
