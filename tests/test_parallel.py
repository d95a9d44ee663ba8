"""Data parallelism: meshes, shardings, batch placement, and runs on 8 forced CPU devices.

The device count is fixed when JAX starts, so the many-device runs happen in subprocesses
(``tests/parallel_scripts/``) started with ``XLA_FLAGS=--xla_force_host_platform_device_count``;
each prints JSON that the tests check. The multi-host test starts two processes that join
over loopback with ``jax.distributed.initialize``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import optax
import pytest

import jaxnets as jn
from jaxnets import distributed

SCRIPTS = Path(__file__).parent / "parallel_scripts"
TIMEOUT = 600


def forced_env(devices: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "_proxy" not in k.lower()}
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["JAX_PLATFORMS"] = "cpu"
    return env


def run_script(*args: str, devices: int = 8) -> dict:
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / args[0]), *args[1:]],
        env=forced_env(devices),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- in process


def test_make_mesh_over_given_devices():
    mesh = distributed.make_mesh(jax.devices()[:1])
    assert mesh.axis_names == ("data",)
    assert dict(mesh.shape) == {"data": 1}
    with pytest.raises(ValueError, match="empty"):
        distributed.make_mesh([])
    with pytest.raises(ValueError, match="repeats"):
        distributed.make_mesh(jax.devices()[:1] * 2)


def test_plan_shards_large_arrays_on_a_divisible_axis():
    mesh = distributed.make_mesh(jax.devices()[:1])
    plan = distributed.fully_sharded(mesh, min_size=100)
    assert tuple(plan.sharding_for((10, 20)).spec) == (None, "data")  # the larger axis
    assert tuple(plan.sharding_for((9,)).spec) == ()  # too small: replicated
    assert tuple(plan.sharding_for(()).spec) == ()
    assert tuple(distributed.as_plan(mesh).sharding_for((10, 20)).spec) == ()  # replicated


def test_plan_skips_axes_the_devices_do_not_divide():
    # A plan over 8 devices is only needed for its rule; the mesh is never used here.
    plan = distributed.DataParallel(distributed.make_mesh(jax.devices()[:1]), True, 1)
    eight = plan._replace(mesh=jax.sharding.AbstractMesh((8,), ("data",)))
    assert tuple(eight.sharding_for((6, 16)).spec) == (None, "data")
    assert tuple(eight.sharding_for((24, 16)).spec) == ("data", None)
    assert tuple(eight.sharding_for((6, 10)).spec) == ()  # nothing divides by 8


def test_as_plan_rejects_other_values():
    with pytest.raises(TypeError, match="make_mesh"):
        distributed.as_plan(jax.devices())
    mesh = distributed.make_mesh(jax.devices()[:1])
    with pytest.raises(ValueError, match="model"):
        distributed.as_plan(distributed.DataParallel(mesh, axis="model"))


def test_valid_batch_sizes():
    assert distributed.valid_batch_sizes(8, 30) == [16, 24, 32, 40]
    assert distributed.valid_batch_sizes(8, 5) == [8, 16]
    assert distributed.valid_batch_sizes(4, 8) == [4, 8, 12, 16]


def test_pad_batch_adds_zero_mask_rows():
    x, y, mask = distributed.pad_batch((np.ones((5, 2)), np.arange(5), np.ones(5)), 4)
    assert x.shape == (8, 2) and y.tolist() == [0, 1, 2, 3, 4, 0, 0, 0]
    assert mask.tolist() == [1, 1, 1, 1, 1, 0, 0, 0]
    batch = (np.ones((8, 2)), np.ones(8), np.ones(8))
    assert distributed.pad_batch(batch, 4) is batch


def test_host_shard_gives_equal_contiguous_blocks():
    data = jn.data.ArrayDataset(np.arange(11.0)[:, None], np.arange(11))
    shards = [distributed.host_shard(data, i, 3) for i in range(3)]
    assert [s.labels.tolist() for s in shards] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert distributed.host_shard(data).labels.tolist() == list(range(11))  # one process
    with pytest.raises(ValueError, match="outside"):
        distributed.host_shard(data, 3, 3)
    with pytest.raises(ValueError, match="cannot feed"):
        distributed.host_shard(data.take(slice(0, 2)), 0, 3)


def test_initialize_checks_the_process_id_first():
    with pytest.raises(ValueError, match=r"outside 0\.\.1"):
        distributed.initialize("127.0.0.1:1", 2, 2)


def test_shard_batch_rejects_ragged_batches():
    mesh = distributed.make_mesh(jax.devices()[:1])
    with pytest.raises(ValueError, match="leading"):
        distributed.shard_batch((np.ones((4, 2)), np.ones(3)), mesh)


def test_one_device_mesh_matches_plain_step():
    model = jn.models.mlp((16,), 3, batch_norm=True)
    opt = optax.adam(1e-2)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 5)).astype(np.float32)
    y = rng.integers(0, 3, 8).astype(np.int32)
    mesh = distributed.make_mesh(jax.devices()[:1])
    results = []
    for m in (None, mesh, distributed.fully_sharded(mesh, min_size=1)):
        ts = jn.create_train_state(model, opt, (8, 5))
        step = jn.make_train_step(model, "softmax_cross_entropy", opt, mesh=m)
        for _ in range(3):
            ts, _ = step(ts, (x, y))
        results.append(jax.device_get((ts.params, ts.state)))
    for other in results[1:]:
        jax.tree.map(np.testing.assert_array_equal, results[0], other)


def test_place_state_and_bytes_per_device():
    mesh = distributed.make_mesh(jax.devices()[:1])
    tree = distributed.place_state(
        {"w": np.ones((4, 4), np.float32), "s": np.ones((), np.float32)}, mesh
    )
    assert tree["w"].sharding == distributed.as_plan(mesh).replicated()
    assert distributed.bytes_per_device(tree) == {jax.devices()[0]: 64 + 4}


# --------------------------------------------------------------------------- 8 devices


@pytest.mark.parametrize("model", ["mlp", "mlp_bn", "cnn", "lstm"])
def test_eight_devices_match_one(model):
    report = run_script("equivalence.py", model)
    assert report["devices"] == 8
    assert report["loss_first_last"][1] < report["loss_first_last"][0]  # it trained
    assert report["max_abs_diff_mesh_vs_single"] < 1e-5
    assert report["max_abs_diff_sharded_vs_replicated"] < 1e-5
    assert report["replicated_param_spec"] == "P()"
    assert report["large_params"]
    for leaf in report["large_params"].values():
        assert leaf["fraction"] == pytest.approx(1 / 8)
        assert leaf["devices_holding"] == 8


def test_eight_device_behaviours():
    report = run_script("checks.py")
    bn = report["batchnorm"]
    assert bn["x_sharding"] == "P('data',)"
    assert bn["max_abs_diff_vs_global"] < 1e-5  # statistics of the global batch
    assert bn["max_abs_diff_vs_first_shard"] > 0.1  # not those of one device's shard
    for where in ("step", "fit"):
        message = report["errors"][where]
        assert "30 examples" in message and "8 devices" in message
        assert "16, 24, 32, 40" in message
    ev = report["evaluation"]
    assert ev["counts_direct"] == [12.0, 12.0, 12.0, 1.0]  # 37 examples, each once
    assert ev["max_abs_diff"] < 1e-6
    fit = report["fit"]
    assert fit["params_diff_replicated"] < 1e-5
    assert fit["params_diff_sharded"] < 1e-5
    assert fit["history_diff"] < 1e-5  # loss, accuracy and validation on 61 examples
    assert fit["replicated_kernel_spec"] == "P()"
    assert fit["sharded_kernel_spec"] == "P('data', None)"
    assert fit["sharded_kernel_shard_shape"] == [8, 64]


def test_docs_python_blocks_run_on_eight_devices():
    report = run_script("docs_blocks.py")
    assert report["ran"] == report["blocks"] - 1 >= 3  # all but the multi-process block
    assert report["kernel_spec"] == "P(None, 'data')"  # the values the page shows
    assert report["kernel_shard_shape"] == [64, 32]


# --------------------------------------------------------------------------- 2 processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_on_loopback_match_one_process(tmp_path):
    """Two processes x 2 CPU devices join over 127.0.0.1 (jax.distributed, gloo CPU
    collectives); each reads its own half of the data. The result equals one process with
    4 devices fed the same global batches."""
    port = free_port()
    outs = [tmp_path / f"worker{i}.npz" for i in range(2)]
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                str(SCRIPTS / "multihost.py"),
                "worker",
                str(i),
                "2",
                str(port),
                str(outs[i]),
            ],
            env=forced_env(2),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    try:
        logs = [w.communicate(timeout=TIMEOUT) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    for w, (_, err) in zip(workers, logs, strict=True):
        assert w.returncode == 0, err[-4000:]
    ref_path = tmp_path / "reference.npz"
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "multihost.py"), "reference", "2", str(ref_path)],
        env=forced_env(4),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    w0, w1, ref = (np.load(p) for p in (*outs, ref_path))
    assert w0["devices"].tolist() == [4, 2]  # 4 devices in all, 2 local
    for key in w0.files:
        np.testing.assert_array_equal(w0[key], w1[key])  # both processes agree
        if key in ref.files:
            np.testing.assert_allclose(w0[key], ref[key], atol=1e-5, err_msg=key)
    assert {k for k in w0.files if k.startswith("fit_")} >= {"fit_loss", "fit_val_loss"}
    assert any(k.startswith("pipe_params") for k in ref.files)  # the Pipeline's fit compared
