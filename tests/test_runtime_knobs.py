"""OneFlow's runtime knobs: ``flow.config.*``, ``flow.config.collective_boxing.*`` and the
``flow.env`` logging / port / machine settings. Each is accepted with OneFlow's argument
type, recorded and returns None; a wrong type raises TypeError. ``flow.env.machine`` +
``flow.env.ctrl_port`` describe the processes of jax.distributed."""

import socket

import jax
import pytest

import jobflow as flow
from jobflow._src.graph import env, runtime_knobs

CONFIG_CALLS = [
    ("config.enable_debug_mode", flow.config.enable_debug_mode, True),
    ("config.enable_model_io_v2", flow.config.enable_model_io_v2, True),
    ("config.nccl_use_compute_stream", flow.config.nccl_use_compute_stream, True),
    ("config.reserved_device_mem_mbyte", flow.config.reserved_device_mem_mbyte, 1024),
    ("config.machine_num", flow.config.machine_num, 2),
    (
        "config.collective_boxing.nccl_fusion_threshold_mb",
        flow.config.collective_boxing.nccl_fusion_threshold_mb,
        32,
    ),
    ("config.collective_boxing.enable_fusion", flow.config.collective_boxing.enable_fusion, False),
    ("env.log_dir", flow.env.log_dir, "./log"),
    ("env.data_port", flow.env.data_port, 9989),
    ("env.logtostderr", flow.env.logtostderr, 1),
    ("env.grpc_use_no_signal", flow.env.grpc_use_no_signal, True),
]


@pytest.mark.parametrize("key, setter, value", CONFIG_CALLS, ids=[c[0] for c in CONFIG_CALLS])
def test_a_knob_is_accepted_recorded_and_checked(key, setter, value):
    assert setter(value) is None
    assert runtime_knobs.recorded()[key] == value
    wrong = 1 if isinstance(value, (bool, str)) else "x"
    with pytest.raises(TypeError, match=rf"flow.{key}\(val\) needs an? {type(value).__name__}"):
        setter(wrong)


def test_defaults_follow_oneflow():
    flow.config.use_rdma()
    flow.env.grpc_use_no_signal()
    flow.config.nccl_use_compute_stream()
    assert runtime_knobs.recorded()["config.use_rdma"] is True
    assert runtime_knobs.recorded()["config.nccl_use_compute_stream"] is False
    with pytest.raises(TypeError, match="needs an int argument"):
        flow.config.compute_thread_pool_size()
    with pytest.raises(TypeError, match="needs an int"):
        flow.config.compute_thread_pool_size(True)  # a bool is not an int, as in OneFlow


def test_legacy_model_io_enabled_reads_back_the_setting():
    assert flow.config.legacy_model_io_enabled() is False
    flow.config.enable_legacy_model_io(True)
    assert flow.config.legacy_model_io_enabled() is True
    flow.config.enable_legacy_model_io(False)


def test_tensor_float_32_sets_the_matmul_precision():
    try:
        flow.config.enable_tensor_float_32_compute(False)
        assert jax.config.jax_default_matmul_precision == "highest"
    finally:
        flow.config.enable_tensor_float_32_compute(True)
    assert jax.config.jax_default_matmul_precision is None


def test_eager_execution_is_off():
    assert flow.eager_execution_enabled() is False
    flow.enable_eager_execution(False)
    with pytest.raises(NotImplementedError, match="static-job API"):
        flow.enable_eager_execution(True)


@pytest.fixture
def machines():
    saved = dict(env._machines)
    yield
    env._machines.update(saved)


def test_machines_and_ctrl_port_map_onto_jax_distributed(machines):
    flow.env.machine([{"addr": "10.0.0.1"}, {"addr": "10.0.0.2", "ctrl_port_agent": 1}])
    with pytest.raises(ValueError, match="set flow.env.ctrl_port"):
        env._resolve(None, None, None, {"RANK": "1"})
    flow.env.ctrl_port(9988)
    assert env._resolve(None, None, None, {"JAX_PROCESS_ID": "1"})[:3] == ("10.0.0.1:9988", 2, 1)
    with pytest.raises(ValueError, match="cannot tell which of"):
        env._resolve(None, None, None, {})
    # the environment's own multi-process settings win
    torch_style = {"MASTER_ADDR": "h", "MASTER_PORT": "1", "WORLD_SIZE": "3", "RANK": "2"}
    assert env._resolve(None, None, None, torch_style)[:3] == ("h:1", 3, 2)


def test_this_host_is_found_by_its_name(machines):
    flow.env.machine("10.255.255.1", socket.gethostname())
    flow.env.ctrl_port(9988)
    assert env._resolve(None, None, None, {})[:3] == ("10.255.255.1:9988", 2, 1)


def test_one_machine_is_one_process(machines):
    flow.env.machine([{"addr": "127.0.0.1"}])
    flow.env.ctrl_port(9988)
    assert env._resolve(None, None, None, {})[:3] == (None, None, None)


def test_bad_machine_settings_raise(machines):
    with pytest.raises(ValueError, match="listed twice"):
        flow.env.machine("a", "a")
    with pytest.raises(TypeError, match="each machine is an address"):
        flow.env.machine([{"port": 1}])
    with pytest.raises(TypeError, match="ctrl_port"):
        flow.env.ctrl_port("9988")
