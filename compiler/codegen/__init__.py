"""Numba code generation: a Graph becomes one generated module of njit kernels and a driver.

fn = compile_graph(graph, buffers, stage="value_and_grad")  # see compiler.pipeline
outs = fn(*flat_inputs)     # list of fresh ndarrays, one per graph output
fn.source                   # the generated module
fn.kernel_count             # distinct njit functions in it
compile_stats()             # process-wide compile counters
"""

from compiler.codegen import loop_node  # noqa: F401  (lowers scan and while_loop nodes)
from compiler.codegen.compile import (
    CompiledStage,
    CompileStats,
    compile_graph,
    compile_numpy,
    compile_stats,
)

__all__ = ["CompileStats", "CompiledStage", "compile_graph", "compile_numpy", "compile_stats"]
