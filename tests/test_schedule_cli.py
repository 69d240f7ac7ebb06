"""Looking at schedules: the `jobflow schedule` command and examples/schedule_gallery.py."""

import importlib.util
import pathlib

import numpy as np
import pytest

from jobflow._src.cli import main as cli
from jobflow._src.cli import schedule as schedule_cli
from jobflow.schedule import transformers as T

PNG = b"\x89PNG\r\n\x1a\n"


def test_cosine_with_warmup_prints_table_sparkline_and_writes_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "lr.png"
    rc = cli.main(
        ["schedule", "cosine", "--base-lr", "0.1", "--steps", "1000", "--warmup", "100", "--plot", str(png)]
    )
    out = capsys.readouterr().out
    assert rc == 0
    want = T.get_cosine_schedule_with_warmup(0.1, 100, 1000).values(1000)
    for step in (0, 99, 100, 500, 999):  # the table shows the warmup boundary and evenly spaced steps
        assert f" {step} │" in out, step
    assert f"{want[500]:.6g}" in out and f"{want[99]:.6g}" in out
    spark = next(line for line in out.splitlines() if set(line) <= set(schedule_cli._BLOCKS) and line)
    assert len(spark) == 64 and spark[0] in "▁▂" and spark[-1] == "▁" and "█" in spark[10:20]
    assert png.read_bytes()[:8] == PNG


def test_catalog_names_and_args(capsys):
    rc = cli.main(["schedule", "pytorch.StepLR", "--arg", "step_size=30", "--steps", "100", "--base-lr", "1"])
    out = capsys.readouterr().out
    assert rc == 0 and "StepLR(base_lr=1.0, step_size=30, gamma=0.1)" in out and "0.001" in out
    rc = cli.main(
        [
            "schedule",
            "mindspore.warmup_lr",
            "--arg",
            "learning_rate=0.2",
            "--arg",
            "total_step=10",
            "--arg",
            "step_per_epoch=2",
            "--arg",
            "warmup_epoch=2",
            "--steps",
            "12",
        ]
    )
    assert rc == 0 and "0.2" in capsys.readouterr().out


def test_list_shows_every_schedule_with_parameters(capsys):
    assert cli.main(["schedule", "--list"]) == 0
    out = capsys.readouterr().out
    for name in schedule_cli.catalog():
        assert name in out, name
    assert "T_mult=1" in out and "warmup_prefix=False" in out


def test_bad_input_exit_code_names_argument(capsys):
    assert cli.main(["schedule", "StepLR", "--arg", "step_size=0"]) == 2
    assert "StepLR(step_size) must be an int >= 1; got step_size=0" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="unknown schedule 'cosin'"):
        cli.main(["schedule", "cosin"])
    assert cli.main(["schedule", "cosine", "--steps", "0"]) == 2


def test_sparkline_levels():
    assert schedule_cli.sparkline(np.linspace(0, 1, 8), width=8) == "▁▂▃▄▅▆▇█"
    assert schedule_cli.sparkline(np.ones(5)) == "▄▄▄▄▄"


def test_gallery_draws_every_family(tmp_path):
    pytest.importorskip("matplotlib")
    path = pathlib.Path(__file__).parents[1] / "examples" / "schedule_gallery.py"
    spec = importlib.util.spec_from_file_location("schedule_gallery", path)
    gallery = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gallery)
    panels = gallery.families(120)
    assert len(panels) == 7 and sum(len(p) for p in panels.values()) >= 45
    out = gallery.draw(str(tmp_path / "g.png"), 120)
    assert pathlib.Path(out).read_bytes()[:8] == PNG
