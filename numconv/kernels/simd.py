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
- :func:`zero`: a vector of zeros of an array's dtype.
- :func:`masked_load` / :func:`masked_store`: only the lanes in a range, for
  rows shorter than a vector or running off an array's ends: masked-off lanes
  are neither read nor written (zeros in a loaded vector), so the index may
  point before the array or the vector past its end.
- :func:`even_lanes`: lanes ``0, 2, 4, …`` of two vectors in a row, the
  stride-2 columns of ``2·lanes`` consecutive values (one shuffle).
- :func:`spread_low` / :func:`spread_high`: the first or second half of a
  vector's lanes to the even lanes of a whole one, the inverse: with
  :func:`masked_store`'s ``step`` 2 they write every other position.
- :func:`total`: the sum of a vector's lanes, as a fixed tree of halves
  (lanes ``j`` and ``j + lanes/2`` first), the same order on every call.
- :func:`load_interleaved` / :func:`store_interleaved`: ``lanes`` records of
  ``T`` values each (e.g. 3×3 filters, 9 taps) as ``T`` vectors, one per
  field: the fields' stride-``T`` gather or scatter done as shuffles of
  whole vectors instead of one scalar per value.

The width is the compile target's register width, fixed when this module is
imported: 64 bytes where Numba compiles for AVX-512 (32 vector registers), 32
bytes otherwise (AVX2's 16). A 64-byte vector on an AVX2 CPU is split by LLVM
into two registers, which doubles the registers a register block needs: the
8 × 3 blocks tuned on AVX-512 then spilled every accumulator, and the tap and
phase sums ran 3-10× slower on a Zen 3 CPU (docs/performance.md §43).
:data:`REGISTERS` tells register-blocked kernels how many they have.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils, config
from numba.core.codegen import get_host_cpu_features
from numba.extending import intrinsic, models, register_model


def _compile_target_features() -> str:
    """The CPU features Numba compiles for, as LLVM's ``+name,-name`` list."""
    if config.CPU_FEATURES is not None:  # NUMBA_CPU_FEATURES overrides the host's
        return config.CPU_FEATURES
    return get_host_cpu_features()


_AVX512 = "+avx512f" in _compile_target_features().split(",")
VECTOR_BYTES = 64 if _AVX512 else 32
REGISTERS = 32 if _AVX512 else 16  # vector registers of that width


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


_I32 = ir.IntType(32)
_I64 = ir.IntType(64)


def _check_float_array(array) -> None:
    if not (isinstance(array, types.Array) and array.dtype in types.real_domain):
        raise TypeError(f"expected a float array, got {array}")


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
    _check_float_array(array)
    count = Vector(array.dtype).lanes

    def codegen(context, builder, signature, args):
        return context.get_constant(types.intp, count)

    return types.intp(array), codegen


@intrinsic
def zero(typingctx, array):
    """A vector of zeros of ``array``'s dtype (any float array)."""
    _check_float_array(array)
    vector = Vector(array.dtype)

    def codegen(context, builder, signature, args):
        return ir.Constant(context.get_value_type(vector), None)

    return vector(array), codegen


def _lane_mask(builder, lanes, lo, hi):
    """The ``<lanes x i1>`` mask of the lanes ``j`` with ``lo <= j < hi``."""
    index_type = ir.VectorType(_I64, lanes)
    index = ir.Constant(index_type, list(range(lanes)))
    return builder.and_(
        builder.icmp_signed(">=", index, _broadcast(builder, index_type, lo)),
        builder.icmp_signed("<", index, _broadcast(builder, index_type, hi)),
    )


def _as_intp(context, builder, value, type_):
    """An integer argument as the 64-bit ``intp`` the lane masks compare with."""
    return context.cast(builder, value, type_, types.intp)


def _masked_memory(builder, name, return_type, operand_types):
    function_type = ir.FunctionType(return_type, operand_types)
    return cgutils.get_or_insert_function(builder.module, function_type, name)


def _check_index(*values) -> None:
    if not all(isinstance(v, types.Integer) for v in values):
        raise TypeError(f"expected integer indices, got {values}")


@intrinsic
def masked_load(typingctx, array, index, lo, hi):
    """Lane ``j`` is ``array.flat[index + j]`` for ``lo <= j < hi``, else ``0``.

    Masked-off lanes are not read: ``index`` may lie before the array and
    the vector run past its end, as long as the lanes in range are inside.
    """
    _check_array(array)
    _check_index(index, lo, hi)
    vector = Vector(array.dtype)

    def codegen(context, builder, signature, args):
        pointer = _element_pointer(context, builder, signature.args[0], args[0], args[1])
        vector_type = context.get_value_type(vector)
        lo, hi = (_as_intp(context, builder, args[k], signature.args[k]) for k in (2, 3))
        mask = _lane_mask(builder, vector.lanes, lo, hi)
        name = f"llvm.masked.load.v{vector.lanes}f{array.dtype.bitwidth}.p0"
        function = _masked_memory(
            builder, name, vector_type, [pointer.type, _I32, mask.type, vector_type]
        )
        align = ir.Constant(_I32, array.dtype.bitwidth // 8)
        return builder.call(function, [pointer, align, mask, ir.Constant(vector_type, None)])

    return vector(array, index, lo, hi), codegen


@intrinsic(prefer_literal=True)
def masked_store(typingctx, array, index, value, count, step):
    """``array.flat[index + j] = value[j]`` for the lanes ``j < count`` with ``j % step == 0``.

    ``step`` must be the literal ``1`` or ``2``. The other lanes are not
    written: with ``step`` 2 the odd positions keep their values.
    """
    _check_array(array)
    _check_index(index, count)
    if value != Vector(array.dtype):
        raise TypeError(f"cannot store {value} into {array}")
    if not (isinstance(step, types.IntegerLiteral) and step.literal_value in (1, 2)):
        raise TypeError(f"step must be the literal 1 or 2, got {step}")
    every = step.literal_value

    def codegen(context, builder, signature, args):
        pointer = _element_pointer(context, builder, signature.args[0], args[0], args[1])
        lanes = args[2].type.count
        count = _as_intp(context, builder, args[3], signature.args[3])
        if not _AVX512:
            _store_by_count(builder, args[2], pointer, count, every, array.dtype.bitwidth // 8)
            return context.get_dummy_value()
        mask = _lane_mask(builder, lanes, ir.Constant(_I64, 0), count)
        if every == 2:  # the odd lanes off
            even = ir.Constant(
                ir.VectorType(ir.IntType(1), lanes), [j % 2 == 0 for j in range(lanes)]
            )
            mask = builder.and_(mask, even)
        name = f"llvm.masked.store.v{lanes}f{array.dtype.bitwidth}.p0"
        function = _masked_memory(
            builder, name, ir.VoidType(), [args[2].type, pointer.type, _I32, mask.type]
        )
        align = ir.Constant(_I32, array.dtype.bitwidth // 8)
        builder.call(function, [args[2], pointer, align, mask])
        return context.get_dummy_value()

    return types.none(array, index, value, count, step), codegen


def _store_by_count(builder, value, pointer, count, every, align):
    """:func:`masked_store` without a masked store: AVX2's ``vmaskmovps`` store took
    4.8 ns on a Zen 3 core against 0.7 for a plain one (docs/performance.md §43).

    A switch on ``count``: each count below the lane count stores its lanes
    as plain stores of sub-vectors (step 1: 8 = 4 + 2 + 1 lanes at most, by
    the count's bits) or of single lanes (step 2); a count of ``lanes`` or
    more stores the whole vector (step 1) or every even lane (step 2); a count
    of zero or less stores nothing.
    """
    lanes = value.type.count
    done = builder.append_basic_block("store_by_count.done")
    other = builder.append_basic_block("store_by_count.other")
    switch = builder.switch(count, other)
    for partial in range(1, lanes):
        block = builder.append_basic_block(f"store_by_count.{partial}")
        switch.add_case(ir.Constant(_I64, partial), block)
        builder.position_at_end(block)
        _store_first_lanes(builder, value, pointer, partial, every, align)
        builder.branch(done)
    builder.position_at_end(other)
    with builder.if_then(builder.icmp_signed(">=", count, ir.Constant(_I64, lanes))):
        _store_first_lanes(builder, value, pointer, lanes, every, align)
    builder.branch(done)
    builder.position_at_end(done)


def _store_first_lanes(builder, value, pointer, count, every, align):
    """Plain stores of ``value``'s lanes ``j < count`` (a constant) with ``j % every == 0``."""
    if every == 2:
        pieces = [(j, 1) for j in range(0, count, 2)]
    else:
        pieces, first, size = [], 0, value.type.count
        while size:
            if count & size:
                pieces.append((first, size))
                first += size
            size //= 2
    undefined = ir.Constant(value.type, ir.Undefined)
    for first, size in pieces:
        address = builder.gep(pointer, [ir.Constant(_I64, first)])
        if size == 1:
            builder.store(builder.extract_element(value, ir.Constant(_I32, first)), address,
                          align=align)  # fmt: skip
            continue
        order = ir.Constant(ir.VectorType(_I32, size), list(range(first, first + size)))
        piece = builder.shuffle_vector(value, undefined, order)
        builder.store(piece, builder.bitcast(address, piece.type.as_pointer()), align=align)


@intrinsic
def total(typingctx, vector):
    """The sum of ``vector``'s lanes: halves added lane by lane until one is left."""
    if not isinstance(vector, Vector):
        raise TypeError(f"expected a vector, got {vector}")

    def codegen(context, builder, signature, args):
        value = args[0]
        while value.type.count > 1:
            half = value.type.count // 2
            low, high = (
                builder.shuffle_vector(
                    value, value, ir.Constant(ir.VectorType(_I32, half), list(range(k, k + half)))
                )
                for k in (0, half)
            )
            value = builder.fadd(low, high)
        return builder.extract_element(value, ir.Constant(_I32, 0))

    return vector.dtype(vector), codegen


def _shuffle(first, second, order):
    """An intrinsic: lanes ``order`` of ``first`` then ``second`` (one ``shufflevector``)."""

    def codegen(context, builder, signature, args):
        lanes = args[0].type.count
        mask = ir.Constant(ir.VectorType(_I32, lanes), order(lanes))
        return builder.shuffle_vector(args[0], args[1], mask)

    if not isinstance(first, Vector) or second != first:
        raise TypeError(f"expected two vectors of one dtype, got {first, second}")
    return first(first, second), codegen


@intrinsic
def even_lanes(typingctx, first, second):
    """Lanes ``0, 2, 4, …`` of ``first`` followed by ``second``."""
    return _shuffle(first, second, lambda lanes: [2 * j for j in range(lanes)])


@intrinsic
def odd_lanes(typingctx, first, second):
    """Lanes ``1, 3, 5, …`` of ``first`` followed by ``second``."""
    return _shuffle(first, second, lambda lanes: [2 * j + 1 for j in range(lanes)])


def _spread(typingctx, vector, half):
    """Lane ``2j`` of the result is ``vector[half·lanes/2 + j]``; the odd lanes are zeros."""
    if not isinstance(vector, Vector):
        raise TypeError(f"expected a vector, got {vector}")

    def codegen(context, builder, signature, args):
        lanes = args[0].type.count
        # Indices from `lanes` on pick the second operand's lanes: zeros.
        order = [half * lanes // 2 + j // 2 if j % 2 == 0 else lanes for j in range(lanes)]
        zeros = ir.Constant(args[0].type, None)
        return builder.shuffle_vector(
            args[0], zeros, ir.Constant(ir.VectorType(_I32, lanes), order)
        )

    return vector(vector), codegen


@intrinsic
def spread_low(typingctx, vector):
    """Lane ``2j`` is ``vector[j]`` for ``j < lanes/2``; the odd lanes are zeros."""
    return _spread(typingctx, vector, 0)


@intrinsic
def spread_high(typingctx, vector):
    """Lane ``2j`` is ``vector[lanes/2 + j]`` for ``j < lanes/2``; the odd lanes are zeros."""
    return _spread(typingctx, vector, 1)


def _interleave_order(lanes: int, fields: int) -> list[int]:
    """Lane ``p`` of the records, ``(l, t) = divmod(p, fields)``, is lane ``t·lanes + l``
    of the fields' vectors laid end to end."""
    return [(p % fields) * lanes + p // fields for p in range(lanes * fields)]


def _concatenate(builder, vectors):
    """One long vector of ``vectors`` end to end (and undefined lanes up to a power of two)."""
    level, width = list(vectors), vectors[0].type.count
    while len(level) > 1:
        mask = ir.Constant(ir.VectorType(_I32, 2 * width), list(range(2 * width)))
        level = [
            builder.shuffle_vector(
                level[i],
                level[i + 1] if i + 1 < len(level) else ir.Constant(level[i].type, ir.Undefined),
                mask,
            )
            for i in range(0, len(level), 2)
        ]
        width *= 2
    return level[0]


@intrinsic
def store_interleaved(typingctx, array, index, fields):
    """``array.flat[index + l·T + t] = fields[t][l]`` for a tuple of ``T`` vectors.

    ``lanes`` records of ``T`` values, written as one contiguous run of
    ``lanes·T`` values (unaligned). Unchecked like :func:`store`.
    """
    _check_array(array)
    if not (isinstance(fields, types.UniTuple) and fields.dtype == Vector(array.dtype)):
        raise TypeError(f"expected a tuple of vectors of {array.dtype}, got {fields}")
    count = fields.count

    def codegen(context, builder, signature, args):
        vectors = [builder.extract_value(args[2], t) for t in range(count)]
        lanes = vectors[0].type.count
        joined = _concatenate(builder, vectors)
        records = builder.shuffle_vector(
            joined,
            ir.Constant(joined.type, ir.Undefined),
            ir.Constant(ir.VectorType(_I32, lanes * count), _interleave_order(lanes, count)),
        )
        pointer = _element_pointer(context, builder, signature.args[0], args[0], args[1])
        address = builder.bitcast(pointer, records.type.as_pointer())
        builder.store(records, address, align=array.dtype.bitwidth // 8)
        return context.get_dummy_value()

    return types.none(array, index, fields), codegen


@intrinsic(prefer_literal=True)
def load_interleaved(typingctx, array, index, count):
    """The tuple of ``count`` vectors ``v[t][l] = array.flat[index + l·count + t]``.

    The inverse of :func:`store_interleaved`: ``lanes`` records of ``count``
    values read as one contiguous run (unaligned), ``count`` a literal.
    Unchecked like :func:`load`.
    """
    _check_array(array)
    if not isinstance(count, types.IntegerLiteral):
        raise TypeError(f"the field count must be a literal integer, got {count}")
    fields = count.literal_value
    vector = Vector(array.dtype)
    result = types.UniTuple(vector, fields)

    def codegen(context, builder, signature, args):
        vector_type = context.get_value_type(vector)
        lanes = vector_type.count
        whole = ir.VectorType(vector_type.element, lanes * fields)
        pointer = _element_pointer(context, builder, signature.args[0], args[0], args[1])
        records = builder.load(
            builder.bitcast(pointer, whole.as_pointer()), align=array.dtype.bitwidth // 8
        )
        undefined = ir.Constant(whole, ir.Undefined)
        # Field t's lanes sit at l·fields + t of the records.
        vectors = [
            builder.shuffle_vector(
                records,
                undefined,
                ir.Constant(ir.VectorType(_I32, lanes), [l * fields + t for l in range(lanes)]),
            )
            for t in range(fields)
        ]
        return context.make_tuple(builder, result, vectors)

    return result(array, index, count), codegen
