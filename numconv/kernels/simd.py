"""512-bit vector values for register-blocked kernels.

LLVM keeps vector accumulators in registers across the innermost loop only:
a loop of taps around a loop of positions stores and reloads its sums every
tap (docs/performance.md §29). Written with these intrinsics, each
accumulator is one SSA value of an LLVM vector type (``<16 x float>`` or
``<8 x double>``), a local variable of a kernel like any scalar, so it stays
in a register across any loop and is stored only when the kernel says so.

- :func:`load` / :func:`store`: one vector from or to ``a.flat[i : i +
  lanes]`` of a C-contiguous array, unaligned. The flat index means no
  array view (a view of a row costs reference-count calls, around which
  every vector register is saved and restored). Unchecked: the caller
  keeps ``i + lanes <= a.size``.
- :func:`splat`: a vector with every lane ``s``.
- :func:`fma`: ``acc + v·s`` lane by lane in one rounding (``llvm.fma``), ``s``
  a scalar broadcast to every lane.
- :func:`lanes`: the lane count for an array's dtype, a compile-time constant.

The width is fixed at 64 bytes, this machine's AVX-512 registers; on a CPU
with narrower registers LLVM splits each operation into two or four, with the
same results.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

VECTOR_BYTES = 64


class Vector(types.Type):
    """Numba type of a vector of ``dtype`` values filling :data:`VECTOR_BYTES`."""

    def __init__(self, dtype):
        self.dtype = dtype
        self.lanes = VECTOR_BYTES // (dtype.bitwidth // 8)
        super().__init__(name=f"Vector({dtype} x {self.lanes})")


@register_model(Vector)
class _VectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        element = dmm.lookup(fe_type.dtype).get_value_type()
        super().__init__(dmm, fe_type, ir.VectorType(element, fe_type.lanes))


def _check_array(array) -> None:
    if not (
        isinstance(array, types.Array) and array.layout == "C" and array.dtype in types.real_domain
    ):
        raise TypeError(f"expected a C-contiguous float array, got {array}")


def _element_pointer(context, builder, array_type, array, index):
    data = context.make_array(array_type)(context, builder, array).data
    return builder.gep(data, [index])


def _broadcast(builder, vector_type, scalar):
    undefined = ir.Constant(vector_type, ir.Undefined)
    first = builder.insert_element(undefined, scalar, ir.Constant(ir.IntType(32), 0))
    zeros = ir.Constant(ir.VectorType(ir.IntType(32), vector_type.count), None)
    return builder.shuffle_vector(first, undefined, zeros)


@intrinsic
def load(typingctx, array, index):
    """The vector ``array.flat[index : index + lanes]`` (C-contiguous float array)."""
    _check_array(array)
    vector = Vector(array.dtype)

    def codegen(context, builder, signature, args):
        pointer = _element_pointer(context, builder, signature.args[0], args[0], args[1])
        vector_type = context.get_value_type(vector)
        address = builder.bitcast(pointer, vector_type.as_pointer())
        return builder.load(address, align=array.dtype.bitwidth // 8)

    return vector(array, index), codegen


@intrinsic
def store(typingctx, array, index, value):
    """Write vector ``value`` to ``array.flat[index : index + lanes]``."""
    _check_array(array)
    if value != Vector(array.dtype):
        raise TypeError(f"cannot store {value} into {array}")

    def codegen(context, builder, signature, args):
        pointer = _element_pointer(context, builder, signature.args[0], args[0], args[1])
        address = builder.bitcast(pointer, args[2].type.as_pointer())
        builder.store(args[2], address, align=array.dtype.bitwidth // 8)
        return context.get_dummy_value()

    return types.none(array, index, value), codegen


@intrinsic
def splat(typingctx, scalar):
    """A vector with every lane ``scalar``."""
    if scalar not in types.real_domain:
        raise TypeError(f"expected a float scalar, got {scalar}")
    vector = Vector(scalar)

    def codegen(context, builder, signature, args):
        return _broadcast(builder, context.get_value_type(vector), args[0])

    return vector(scalar), codegen


@intrinsic
def fma(typingctx, acc, value, scalar):
    """``acc + value·scalar`` in every lane, one rounding."""
    if not isinstance(acc, Vector) or value != acc or scalar != acc.dtype:
        raise TypeError(f"expected (vector, vector, scalar) of one dtype, got {acc, value, scalar}")

    def codegen(context, builder, signature, args):
        vector_type = args[0].type
        suffix = f"v{vector_type.count}f{acc.dtype.bitwidth}"
        function_type = ir.FunctionType(vector_type, [vector_type] * 3)
        function = cgutils.get_or_insert_function(
            builder.module, function_type, f"llvm.fma.{suffix}"
        )
        product = _broadcast(builder, vector_type, args[2])
        return builder.call(function, [args[1], product, args[0]])

    return acc(acc, value, scalar), codegen


@intrinsic
def lanes(typingctx, array):
    """Lanes of a vector of ``array``'s dtype (any float array), as a constant."""
    if not (isinstance(array, types.Array) and array.dtype in types.real_domain):
        raise TypeError(f"expected a float array, got {array}")
    count = Vector(array.dtype).lanes

    def codegen(context, builder, signature, args):
        return context.get_constant(types.intp, count)

    return types.intp(array), codegen
