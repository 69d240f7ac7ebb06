"""``python -m benchmarks --amp / --device`` (issue 15 part 4) and benchmarks/gpu_run.sh, on
the CPU: the flags parse and reject bad values by name, a tiny bf16 transformer run records
its precision and computes losses close to float32's, and the GPU script's dry run prints
what it would run without running it."""

import importlib.util
import math
import os
import pathlib
import shutil
import subprocess

import numpy as np
import pytest

from benchmarks import __main__ as cli
from benchmarks import models, precision, sections, transformer

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_run.sh"
HAS_TORCH = importlib.util.find_spec("torch") is not None
# bfloat16 keeps 8 significant bits (relative rounding 2**-9 per cast); the tiny encoder's
# first losses (about ln 10 = 2.3) move by a few 1e-3 through its casts. 0.05 is 2 % of it.
BF16_LOSS_TOLERANCE = 0.05


# ---------------------------------------------------------------------------------- CLI


def test_cli_parses_amp_and_device():
    import jax

    if jax.default_backend() != "cpu":
        pytest.skip("JAX already runs on an accelerator: --device cpu cannot pin it any more")
    args = cli.parse_args(["--amp", "bf16", "--device", "cpu", "--only", "transformer"])
    assert (args.amp, args.device, args.only) == ("bf16", "cpu", ["transformer"])
    default = cli.parse_args([])
    assert default.amp == "off" and default.device in ("cpu", "gpu")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--amp", "fp8"], "argument --amp: invalid choice: 'fp8'"),
        (["--device", "tpu"], "argument --device: invalid choice: 'tpu'"),
    ],
)
def test_cli_rejects_bad_values_naming_the_argument(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.parse_args(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_device_gpu_without_a_gpu_is_an_error_naming_the_argument(capsys):
    import jax

    if jax.default_backend() == "gpu":
        pytest.skip("this machine has a GPU")
    with pytest.raises(SystemExit):
        cli.parse_args(["--device", "gpu"])
    assert "--device gpu: JAX's default backend is 'cpu', not 'gpu'" in capsys.readouterr().err


def test_choose_device():
    assert precision.choose_device("auto", "gpu", True) == "gpu"
    assert precision.choose_device("auto", "gpu", False) == "cpu"
    assert precision.choose_device("auto", "gpu", None) == "cpu"  # as specified: both must see a GPU
    assert precision.choose_device("auto", "cpu", True) == "cpu"
    assert precision.choose_device("cpu", "gpu", True) == "cpu"
    assert precision.choose_device("gpu", "gpu", None) == "gpu"  # no PyTorch: nothing to move
    with pytest.raises(ValueError, match="--device gpu: PyTorch is installed but"):
        precision.choose_device("gpu", "gpu", False)
    with pytest.raises(ValueError, match="--device must be one of auto, cpu, gpu; got 'cuda'"):
        precision.choose_device("cuda", "gpu", True)


def test_sections_without_amp_say_so():
    assert cli.precision_notes("per_call", "bf16", "cpu") == [
        "--amp bf16 is not applied in this section: it ran in float32."
    ]
    assert cli.precision_notes("per_call", "off", "cpu") == []
    assert cli.precision_notes("transformer", "f16", "gpu") == []  # its own notes say it
    assert "on the CPU" in cli.precision_notes("wide_deep", "off", "gpu")[0]


def test_markdown_names_the_precision():
    report = {"mode": "quick", "amp": "f16", "device": "cpu", "machine": {"jax": "x"}, "sections": {}}
    assert cli.markdown(report).startswith("quick run, f16 AMP, cpu")


# ---------------------------------------------------------------------- a bf16 run


def test_transformer_bf16_run_records_amp_and_its_rows():
    cfg = transformer.CONFIGS["quick"]
    result = transformer.run(cfg, steps=1, rounds=1, quick=True, with_torch=False, amp="bf16")
    assert "bf16 AMP, cpu" in result["title"]
    assert any("bfloat16 AMP (--amp bf16)" in n for n in result["notes"])
    assert [r["implementation"] for r in result["rows"]] == ["jobflow", transformer.HAND]
    assert all(r["ms/step"] > 0 for r in result["rows"])
    first = result["first_losses"]
    assert all(math.isfinite(v) for v in first["jobflow"] + first[transformer.HAND])
    # the same flax module cloned with dtype=bfloat16 in both: the same casts
    assert max(abs(a - b) for a, b in zip(first["jobflow"], first[transformer.HAND])) < BF16_LOSS_TOLERANCE


def test_mlp_bf16_losses_are_close_to_float32_and_the_dots_are_bf16():
    batches = models.class_batches(3, models.MLP["batch"], (models.MLP["sizes"][0],))
    sections._fresh()
    f32_job = models.mlp_job(name="mlp_f32")
    f32 = sections._first_losses(models.JobLoop(f32_job), batches)
    loops = sections.mlp_loops("bf16", "cpu", [])
    bf16 = {name: sections._first_losses(loop, batches) for name, loop in loops.items()}
    assert len(bf16) == 4 if HAS_TORCH else 3
    assert all(math.isfinite(v) for v in bf16["jobflow"]) and bf16["jobflow"][0] != f32[0]
    assert abs(bf16["jobflow"][0] - f32[0]) < BF16_LOSS_TOLERANCE
    for name, losses in bf16.items():  # the same model: every contender's casts agree with jobflow's
        assert max(abs(a - b) for a, b in zip(losses, bf16["jobflow"])) < BF16_LOSS_TOLERANCE, name
    text = loops["jobflow"].job.lower_text()
    dots = [line for line in text.splitlines() if "stablehlo.dot_general" in line]
    # 3 forward, 3 weight gradients, 2 input gradients (none for the placeholder)
    assert len(dots) == 8 and all("xbf16>" in line.split(":")[-1] for line in dots)
    assert "bf16" not in f32_job.lower_text()
    sections._fresh()


def test_jobflow_f16_jobs_scale_the_loss_from_two_to_the_16():
    sections._fresh()
    job = models.mlp_job(name="mlp_f16", amp="f16")
    x, y = models.class_batches(1, models.MLP["batch"], (models.MLP["sizes"][0],))[0]
    assert math.isfinite(float(np.asarray(job(x, y))))
    info = job.last_info
    assert info["loss_scale"] == precision.F16_INITIAL_SCALE and not info["skipped"]
    assert "xf16>" in job.lower_text()
    sections._fresh()


# ------------------------------------------------------------------------- PyTorch


@pytest.mark.skipif(not HAS_TORCH, reason="PyTorch is not installed")
@pytest.mark.parametrize("amp", ["bf16", "f16"])
def test_torch_loop_under_amp_autocasts_and_scales(amp):
    import torch

    from benchmarks.cnn import TorchLoop

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    before = [p.detach().clone() for p in model.parameters()]
    loop = TorchLoop(model, lr=0.1, clip=1.0, amp=amp, device="cpu")
    x, y = np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32), np.array([0, 1, 2, 0], np.int32)
    with loop.amp.autocast():
        assert model(torch.from_numpy(x)).dtype == {"bf16": torch.bfloat16, "f16": torch.float16}[amp]
    assert math.isfinite(loop.step(x, y))
    assert all(p.dtype == torch.float32 for p in model.parameters())  # float32 master weights
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    if amp == "f16":
        assert loop.amp.scaler.get_scale() == precision.F16_INITIAL_SCALE
    else:
        assert loop.amp.scaler is None


# ------------------------------------------------------------------------ gpu_run.sh


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_gpu_run_script_parses():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def _dry_run(tmp_path, **env):
    out = tmp_path / "out"
    full = {**os.environ, "OUT": str(out), **env}
    proc = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run"], capture_output=True, text=True, env=full, timeout=60
    )
    return proc, out


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_gpu_run_dry_run_prints_the_commands_and_runs_none(tmp_path):
    proc, out = _dry_run(tmp_path)
    assert proc.returncode == 0, proc.stderr
    runs = [line for line in proc.stdout.splitlines() if "-m benchmarks" in line]
    assert [line.split("--amp ")[1].split()[0] for line in runs] == ["bf16", "f16", "off"]
    for line, mode in zip(runs, ("bf16", "f16", "off")):
        assert "--only train_step cnn transformer" in line and "--device gpu" in line
        assert f"--out {out}/{mode}.json --markdown {out}/{mode}.md" in line
    assert f"PYTHONPATH={ROOT}" in proc.stdout
    assert sorted(p.name for p in out.iterdir()) == ["log"]  # nothing ran
    assert (out / "log").read_text() == proc.stdout


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_gpu_run_skips_modes_when_the_budget_is_spent(tmp_path):
    proc, _ = _dry_run(tmp_path, GPU_RUN_BUDGET_S="10", GPU_RUN_MODES="bf16")
    assert proc.returncode == 1
    assert "skipping --amp bf16: 10s of the budget left" in proc.stdout
    assert "-m benchmarks" not in proc.stdout
