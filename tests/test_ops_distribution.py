"""Distribution and effect ops on one device (replica_id, partition_id, the collectives over
groups of one, tokens), the errors for multi-device and host-transfer programs, and einsum."""

import jax
import ml_dtypes
import numpy as np
import pytest
from conftest import random_array as make, tensor_type as ttype
from jax.sharding import Mesh, PartitionSpec as P

from conftest import assert_same, run_mlir
from jax_pyrt import dtypes

DTYPES = [np.bool_, np.int8, np.int32, np.uint64, np.float16, ml_dtypes.bfloat16, np.float32,
          np.float64, np.complex64]
IDS = [np.dtype(d).name for d in DTYPES]
ONE = "dense<0> : tensor<1x1xi64>"
CHANNEL = "#stablehlo.channel_handle<handle = 1, type = 1>"


def module(params, results, body, replicas=1, partitions=1):
    ps = ", ".join(f"%{n}: {t}" for n, t in params)
    rs = ", ".join(t for _, t in results)
    vs = ", ".join(f"%{n}" for n, _ in results)
    return (f"module @m attributes {{mhlo.num_partitions = {partitions} : i32, "
            f"mhlo.num_replicas = {replicas} : i32}} {{\n"
            f"  func.func @main({ps}) -> ({rs}) {{\n{body}\n    return {vs} : {rs}\n  }}\n}}\n")


def region(op_name, t):
    return (f"  ({{\n    ^bb0(%lhs: {t}, %rhs: {t}):\n      %s = {op_name} %lhs, %rhs : {t}\n"
            f"      stablehlo.return %s : {t}\n  }})")


def expect_error(pyrt_device, text, *args, code="UNIMPLEMENTED", match=()):
    with pytest.raises(jax.errors.JaxRuntimeError) as info:
        run_mlir(pyrt_device, text, *args)
    message = str(info.value)
    assert code in message and all(m in message for m in match), message


# -- ids

def test_replica_and_partition_id(check_mlir):
    text = module([("x", "tensor<2xf32>")], [("x", "tensor<2xf32>"), ("r", "tensor<ui32>"),
                                             ("p", "tensor<ui32>")],
                  "    %r = stablehlo.replica_id : tensor<ui32>\n"
                  "    %p = stablehlo.partition_id : tensor<ui32>")
    check_mlir(text, np.zeros(2, np.float32))


# -- collectives written by hand

@pytest.mark.parametrize("dtype,body", [(d, "stablehlo.add") for d in DTYPES] + [
    (d, "stablehlo.maximum") for d in DTYPES if not dtypes.is_complex(np.dtype(d))], ids=str)
def test_all_reduce(check_mlir, dtype, body):
    t, s = ttype((3, 4), dtype), ttype((), dtype)
    text = module([("x", t)], [("r", t)],
                  f'    %r = "stablehlo.all_reduce"(%x) <{{channel_handle = {CHANNEL}, '
                  f"replica_groups = {ONE}, use_global_device_ids}}>\n{region(body, s)}"
                  f" : ({t}) -> {t}")
    check_mlir(text, make((3, 4), dtype))


def test_all_reduce_variadic_and_empty_groups(check_mlir):
    # Empty replica_groups: one group of all processes (here: just this one).
    t1, t2 = "tensor<2x3xf32>", "tensor<0xf32>"
    text = module([("x", t1), ("y", t2)], [("r#0", t1), ("r#1", t2)],
                  f'    %r:2 = "stablehlo.all_reduce"(%x, %y) <{{replica_groups = '
                  f"dense<> : tensor<0x0xi64>}}>\n{region('stablehlo.add', 'tensor<f32>')} : "
                  f"({t1}, {t2}) -> ({t1}, {t2})")
    check_mlir(text, make((2, 3), np.float32), np.zeros(0, np.float32))


def test_cross_replica_sum(check_mlir):
    t = "tensor<5xi16>"
    text = module([("x", t)], [("r", t)],
                  f'    %r = "stablehlo.cross-replica-sum"(%x) {{replica_groups = {ONE}}} : '
                  f"({t}) -> {t}")
    check_mlir(text, make((5,), np.int16))


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_all_gather(check_mlir, dtype):
    t = ttype((2, 3), dtype)
    text = module([("x", t), ("y", t)], [("r#0", t), ("r#1", t)],
                  f'    %r:2 = "stablehlo.all_gather"(%x, %y) <{{all_gather_dim = 1 : i64, '
                  f"channel_handle = {CHANNEL}, replica_groups = {ONE}, use_global_device_ids}}> "
                  f": ({t}, {t}) -> ({t}, {t})")
    check_mlir(text, make((2, 3), dtype), make((2, 3), dtype, seed=1))


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_all_to_all(check_mlir, dtype):
    t = ttype((4, 2), dtype)
    text = module([("x", t)], [("r", t)],
                  f'    %r = "stablehlo.all_to_all"(%x) <{{split_dimension = 1 : i64, '
                  f"concat_dimension = 0 : i64, split_count = 1 : i64, replica_groups = {ONE}}}> "
                  f": ({t}) -> {t}")
    check_mlir(text, make((4, 2), dtype))


@pytest.mark.parametrize("dtype", [np.int8, np.uint32, np.float16, np.float64, np.complex128],
                         ids=str)
def test_reduce_scatter(check_mlir, dtype):
    t, s = ttype((2, 4), dtype), ttype((), dtype)
    text = module([("x", t)], [("r", t)],
                  f'    %r = "stablehlo.reduce_scatter"(%x) <{{channel_handle = {CHANNEL}, '
                  f"replica_groups = {ONE}, scatter_dimension = 1 : i64, use_global_device_ids}}>"
                  f"\n{region('stablehlo.add', s)} : ({t}) -> {t}")
    check_mlir(text, make((2, 4), dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_collective_permute(check_mlir, dtype):
    t = ttype((3, 2), dtype)
    text = module([("x", t)], [("r", t)],
                  f'    %r = "stablehlo.collective_permute"(%x) <{{channel_handle = {CHANNEL}, '
                  f"source_target_pairs = dense<0> : tensor<1x2xi64>}}> : ({t}) -> {t}")
    check_mlir(text, make((3, 2), dtype))


def test_collective_permute_receiving_nothing_gives_zeros(pyrt_device):
    # No pair sends to process 0: per spec it receives zeros. (XLA:CPU rejects an empty
    # source_target_pairs, so the oracle is zeros_like.)
    t = "tensor<3xf32>"
    text = module([("x", t)], [("r", t)],
                  f'    %r = "stablehlo.collective_permute"(%x) <{{channel_handle = {CHANNEL}, '
                  f"source_target_pairs = dense<> : tensor<0x2xi64>}}> : ({t}) -> {t}")
    x = np.array([1.0, np.nan, -2.0], np.float32)
    assert_same(run_mlir(pyrt_device, text, x), [np.zeros_like(x)])


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_collective_broadcast(pyrt_device, cpu_device, dtype):
    # XLA:CPU has no collective-broadcast; on one device it is the same as collective_permute
    # from process 0 to itself, which CPU runs.
    t = ttype((2, 2), dtype)

    def text(op_text):
        return module([("x", t)], [("r", t)], f"    %r = {op_text} : ({t}) -> {t}")

    broadcast = text(f'"stablehlo.collective_broadcast"(%x) <{{channel_handle = {CHANNEL}, '
                     f"replica_groups = {ONE}}}>")
    permute = text('"stablehlo.collective_permute"(%x) <{source_target_pairs = '
                   "dense<0> : tensor<1x2xi64>}>")
    x = make((2, 2), dtype)
    assert_same(run_mlir(pyrt_device, broadcast, x), run_mlir(cpu_device, permute, x))


def test_collectives_zero_size_and_scalar(check_mlir):
    t0, ts = "tensor<0x3xf32>", "tensor<i32>"
    text = module([("x", t0), ("y", ts)], [("a", t0), ("b", ts), ("c", ts)], "\n".join([
        f'    %a = "stablehlo.all_gather"(%x) <{{all_gather_dim = 1 : i64, replica_groups = {ONE}}}>'
        f" : ({t0}) -> {t0}",
        f'    %b = "stablehlo.all_reduce"(%y) <{{replica_groups = {ONE}}}>\n'
        f"{region('stablehlo.add', ts)} : ({ts}) -> {ts}",
        f'    %c = "stablehlo.collective_permute"(%y) <{{source_target_pairs = '
        f"dense<0> : tensor<1x2xi64>}}> : ({ts}) -> {ts}"]))
    check_mlir(text, np.zeros((0, 3), np.float32), np.int32(-2 ** 31))


# -- collectives from JAX (shard_map over a one-device mesh)

def both(pyrt_device, cpu_device, make_fn, *args, **tolerances):
    """make_fn(device) -> jitted function; runs it on each device and compares."""
    def run(device):
        out = make_fn(device)(*[jax.device_put(a, device) for a in args])
        return jax.tree_util.tree_map(np.asarray, out)

    assert_same(run(pyrt_device), run(cpu_device), **tolerances)


@pytest.mark.parametrize("dtype", [np.int32, np.float32, np.float64], ids=str)
def test_shard_map_collectives(pyrt_device, cpu_device, dtype):
    def make_fn(device):
        mesh = Mesh(np.array([device]), ("x",))

        def body(a):
            return (jax.lax.psum(a, "x"), jax.lax.pmax(a, "x"), jax.lax.pmin(a, "x"),
                    jax.lax.all_gather(a, "x"), jax.lax.all_gather(a, "x", tiled=True, axis=1),
                    jax.lax.psum_scatter(a, "x", scatter_dimension=1, tiled=True),
                    jax.lax.ppermute(a, "x", [(0, 0)]),
                    jax.lax.all_to_all(a, "x", 0, 1, tiled=True),
                    a + jax.lax.axis_index("x").astype(a.dtype))

        return jax.jit(jax.shard_map(body, mesh=mesh, in_specs=P("x"),
                                     out_specs=(P("x"), P("x"), P("x"), P(), P("x"), P("x"),
                                                P("x"), P("x"), P("x")), check_vma=False))

    both(pyrt_device, cpu_device, make_fn, make((4, 3), dtype))


# -- multi-device programs

@pytest.mark.parametrize("replicas,partitions,code,message", [
    (2, 1, "UNIMPLEMENTED", "compiled for one device, but this collective's group has 2"),
    (1, 4, "INVALID_ARGUMENT", "names ids outside [0, 1)")])
def test_collectives_need_a_program_compiled_for_their_group(pyrt_device, replicas, partitions,
                                                              code, message):
    t = "tensor<4xf32>"
    text = module([("x", t)], [("r", t)],
                  f'    %r = "stablehlo.all_reduce"(%x) <{{replica_groups = dense<[[0, 1]]> : '
                  f"tensor<1x2xi64>}}>\n{region('stablehlo.add', 'tensor<f32>')} : ({t}) -> {t}",
                  replicas=replicas, partitions=partitions)
    expect_error(pyrt_device, text, np.ones(4, np.float32), code=code,
                 match=["stablehlo.all_reduce", message])


@pytest.mark.parametrize("op_text", [
    '"stablehlo.all_gather"(%x) <{all_gather_dim = 0 : i64, replica_groups = '
    'dense<[[0], [1]]> : tensor<2x1xi64>}> : (tensor<4xf32>) -> tensor<4xf32>',
    '"stablehlo.collective_permute"(%x) <{source_target_pairs = dense<[[0, 1]]> : '
    'tensor<1x2xi64>}> : (tensor<4xf32>) -> tensor<4xf32>',
    '"stablehlo.collective_broadcast"(%x) <{replica_groups = dense<[[1, 0]]> : '
    'tensor<1x2xi64>}> : (tensor<4xf32>) -> tensor<4xf32>',
], ids=["all_gather", "collective_permute", "collective_broadcast"])
def test_groups_naming_other_devices_need_them(pyrt_device, op_text):
    text = module([("x", "tensor<4xf32>")], [("r", "tensor<4xf32>")], f"    %r = {op_text}")
    expect_error(pyrt_device, text, np.ones(4, np.float32), code="INVALID_ARGUMENT",
                 match=["names ids outside [0, 1)", "compiled for 1 replicas x 1 partitions"])


# -- tokens and host transfers

def test_tokens(check_mlir):
    t = "tensor<3xi32>"
    text = (f"module {{\n  func.func @main(%x: {t}) -> {t} {{\n"
            "    %t0 = stablehlo.create_token : !stablehlo.token\n"
            "    %t1 = stablehlo.after_all %t0, %t0 : !stablehlo.token\n"
            f"    %r:2 = func.call @f(%t1, %x) : (!stablehlo.token, {t}) -> "
            f"(!stablehlo.token, {t})\n"
            "    %t2 = stablehlo.after_all %r#0 : !stablehlo.token\n"
            f"    return %r#1 : {t}\n  }}\n"
            f"  func.func private @f(%t: !stablehlo.token, %x: {t}) -> (!stablehlo.token, {t}) {{\n"
            "    %u = stablehlo.after_all : !stablehlo.token\n"
            f"    %y = stablehlo.add %x, %x : {t}\n"
            f"    return %t, %y : !stablehlo.token, {t}\n  }}\n}}\n")
    check_mlir(text, np.array([1, -5, 2 ** 30], np.int32))


HOST_TRANSFERS = {
    "infeed": ('%r:2 = "stablehlo.infeed"(%t) {infeed_config = "", layout = [[0]]} : '
               "(!stablehlo.token) -> (tensor<4xf32>, !stablehlo.token)", "%r#0"),
    "outfeed": ('%o = "stablehlo.outfeed"(%x, %t) {outfeed_config = ""} : '
                "(tensor<4xf32>, !stablehlo.token) -> !stablehlo.token", "%x"),
    "send": ('%o = "stablehlo.send"(%x, %t) {channel_handle = '
             "#stablehlo.channel_handle<handle = 1, type = 2>, is_host_transfer = true} : "
             "(tensor<4xf32>, !stablehlo.token) -> !stablehlo.token", "%x"),
    "recv": ('%r:2 = "stablehlo.recv"(%t) {channel_handle = '
             "#stablehlo.channel_handle<handle = 1, type = 3>, is_host_transfer = true} : "
             "(!stablehlo.token) -> (tensor<4xf32>, !stablehlo.token)", "%r#0"),
}


@pytest.mark.parametrize("name", sorted(HOST_TRANSFERS))
def test_host_transfers_are_unimplemented(pyrt_device, name):
    op_text, result = HOST_TRANSFERS[name]
    text = ("module {\n  func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {\n"
            "    %t = stablehlo.create_token : !stablehlo.token\n"
            f'    {op_text} loc("feeder.py":12:3)\n'
            f"    return {result} : tensor<4xf32>\n  }}\n}}\n")
    expect_error(pyrt_device, text, np.ones(4, np.float32),
                 match=[f"stablehlo.{name} is not supported by pyrt",
                        "host transfer channel", "feeder.py:12"])


# -- einsum

EINSUMS = [  # config, lhs shape, rhs shape, result shape
    ("ab,bc->ac", (2, 3), (3, 4), (2, 4)),
    ("bij,bjk->bki", (5, 2, 3), (5, 3, 4), (5, 4, 2)),
    ("...ab,...bc->...ca", (5, 2, 3), (5, 3, 4), (5, 4, 2)),
    ("i,j->ij", (3,), (4,), (3, 4)),
    ("ab,ab->", (2, 3), (2, 3), ()),
]


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float16, ml_dtypes.bfloat16, np.float32,
                                   np.float64, np.complex64], ids=str)
@pytest.mark.parametrize("case", range(len(EINSUMS)))
def test_einsum(check_mlir, dtype, case):
    config, a, b, out = EINSUMS[case]
    ta, tb, to = ttype(a, dtype), ttype(b, dtype), ttype(out, dtype)
    text = module([("x", ta), ("y", tb)], [("r", to)],
                  f'    %r = stablehlo.einsum %x, %y, config = "{config}" : ({ta}, {tb}) -> {to}')
    rng = np.random.default_rng(case)
    x, y = (rng.integers(-9, 9, s).astype(dtype) for s in (a, b))
    narrow = np.dtype(dtype).itemsize < 4 and dtypes.is_float(np.dtype(dtype))
    check_mlir(text, x, y, rtol=1e-2 if narrow else None)


@pytest.mark.parametrize("config,shape,equivalent", [
    ("ab->a", (3, 4), "stablehlo.reduce(%x init: %z) applies stablehlo.add across dimensions = "
                      "[1] : (tensor<3x4xf32>, tensor<f32>) -> tensor<3xf32>"),
    ("abc->cab", (2, 3, 4), "stablehlo.transpose %x, dims = [2, 0, 1] : "
                            "(tensor<2x3x4xf32>) -> tensor<4x2x3xf32>"),
])
def test_unary_einsum(pyrt_device, cpu_device, config, shape, equivalent):
    # XLA:CPU rejects unary_einsum: the oracle is CPU running the equivalent reduce/transpose.
    out = {"ab->a": (3,), "abc->cab": (4, 2, 3)}[config]
    t, to = ttype(shape, np.float32), ttype(out, np.float32)
    zero = "    %z = stablehlo.constant dense<0.0> : tensor<f32>\n"
    einsum = module([("x", t)], [("r", to)],
                    f'    %r = stablehlo.unary_einsum %x, config = "{config}" : ({t}) -> {to}')
    plain = module([("x", t)], [("r", to)], f"{zero}    %r = {equivalent}")
    x = make(shape, np.float32, seed=5)
    x[~np.isfinite(x)] = 1.5
    assert_same(run_mlir(pyrt_device, einsum, x), run_mlir(cpu_device, plain, x), rtol=1e-6)
