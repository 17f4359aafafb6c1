"""Software prefetch for the compiled kernels: ask the CPU to bring a hole's neighbourhood of a frame
into cache while the previous hole is measured.

A frame's pixels around one hole are a few hundred cache lines scattered over as many rows; between
frames the model run evicts them, and each ray sample that misses waits ~100 ns. Prefetching the
next hole's box while the current one is computed hides that wait (the work on a hole takes far
longer than fetching its box). Results are unchanged: a prefetch only moves data into cache.
"""

from __future__ import annotations

import numba
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

CACHE_LINE_BYTES = 64


@intrinsic
def prefetch(typingctx, array, index):
    """Prefetch the cache line holding ``array.reshape(-1)[index]`` (C-contiguous ``array``) for
    reading, into all cache levels (LLVM's llvm.prefetch: read, locality 3, data)."""
    if not isinstance(array, types.Array) or not isinstance(index, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        address = builder.bitcast(builder.gep(data, [args[1]]), ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        # llvmlite names the overload for this LLVM's pointers (llvm.prefetch.p0, or .p0i8 before opaque
        # pointers, numba < 0.61).
        function = builder.module.declare_intrinsic(
            "llvm.prefetch", [address.type], ir.FunctionType(ir.VoidType(), [address.type, i32, i32, i32]))
        builder.call(function, [address, i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(array, index), codegen


@numba.njit(cache=True, nogil=True)
def prefetch_box(image, cx, cy, reach):
    """Prefetch the pixels of ``image`` ((H, W) or (H, W, C), C-contiguous) within ``reach`` px of
    (cx, cy) and one more column and row (bilinear neighbours). Nothing for a reach or center that
    is not finite."""
    if abs(cx) < 1e9 and abs(cy) < 1e9 and 0 <= reach < 1e9:
        prefetch_rect(image, int(cx - reach) - 1, int(cy - reach) - 1, int(cx + reach) + 2, int(cy + reach) + 2)


@numba.njit(cache=True, nogil=True)
def prefetch_rect(image, x0, y0, x1, y1):
    """Prefetch columns x0..x1 - 1 of rows y0..y1 - 1 of ``image`` ((H, W) or (H, W, C),
    C-contiguous), clipped to the image."""
    height, width = image.shape[0], image.shape[1]
    channels = image.size // max(height * width, 1)
    x0, x1, y0, y1 = max(x0, 0), min(x1, width), max(y0, 0), min(y1, height)
    step = max(CACHE_LINE_BYTES // image.itemsize, 1)
    for r in range(y0, y1):
        start, end = (r * width + x0) * channels, (r * width + x1) * channels
        for index in range(start, end, step):
            prefetch(image, index)
        if end > start:
            prefetch(image, end - 1)
