"""Every fenced ```python block of README.md and docs/*.md runs.

Each block runs in its own Python process, in a fresh temporary directory, with warnings
as errors, after the imports every page assumes::

    import numpy as np
    import jobflow as flow
    import jobflow.typing as tp

A block that cannot run as it stands says so in an HTML comment right above its fence,
which the reader of the rendered page does not see (options separated by commas)::

    <!-- snippet: skip (a signature sketch: the body is elided) -->
    <!-- snippet: continues -->        runs joined to the previous block of the page
    <!-- snippet: devices=4 -->        runs with 4 (fake CPU) devices
    <!-- snippet: setup
    x = np.ones((8, 4), np.float32)    the lines after "setup" run before the block
    -->

A skip must give its reason in parentheses.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PRELUDE = "import numpy as np\nimport jobflow as flow\nimport jobflow.typing as tp\n"
_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
_MARKER = re.compile(r"<!--\s*snippet:(.*)-->", re.S)


@dataclasses.dataclass
class Snippet:
    page: str
    line: int
    code: str
    skip: str | None = None
    continues: bool = False
    devices: int | None = None
    setup: str = ""


def _options(marker: str, where: str) -> dict:
    """The options of one ``<!-- snippet: ... -->`` comment."""
    head, _, rest = marker.partition("\n")
    out: dict = {"setup": ""}
    for option in (o.strip() for o in re.split(r",(?![^()]*\))", head) if o.strip()):
        if option.startswith("skip"):
            reason = re.fullmatch(r"skip\s*\((.+)\)", option)
            assert reason, f"{where}: a skip needs its reason in parentheses: {option!r}"
            out["skip"] = reason.group(1)
        elif option == "continues":
            out["continues"] = True
        elif option.startswith("devices="):
            out["devices"] = int(option.split("=", 1)[1])
        elif option == "setup":
            out["setup"] = rest
        else:
            raise AssertionError(f"{where}: unknown snippet option {option!r}")
    return out


def snippets(page: pathlib.Path) -> list[Snippet]:
    """The python blocks of ``page`` with the options of the comment above each."""
    text = page.read_text(encoding="utf-8")
    found = []
    for m in _FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        where = f"{page.relative_to(ROOT)}:{line}"
        before = text[: m.start()].rstrip()
        comment = before[before.rfind("<!--") :] if before.endswith("-->") else ""
        marker = _MARKER.fullmatch(comment)
        options = _options(marker.group(1), where) if marker else {}
        found.append(Snippet(str(page.relative_to(ROOT)), line, m.group(1), **options))
    return found


def programs() -> list[tuple[str, Snippet, str]]:
    """``(id, first snippet, program text)`` per runnable group of blocks."""
    out: list = []
    for page in PAGES:
        for s in snippets(page):
            code = s.setup + "\n" + s.code
            if s.continues:
                assert out and out[-1][1].page == s.page, f"{s.page}:{s.line}: continues nothing"
                ident, first, text = out[-1]
                out[-1] = (ident, first, text + "\n" + code)
                first.skip = first.skip or s.skip
                first.devices = s.devices or first.devices
            else:
                out.append((f"{s.page}:{s.line}", s, PRELUDE + code))
    return out


PROGRAMS = programs()


def test_every_page_is_read():
    assert len(PROGRAMS) >= 15 and {p[0].split(":")[0] for p in PROGRAMS} >= {
        "README.md",
        "docs/schedules.md",
    }


def _env(devices: int | None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("JAX_PLATFORMS", "cpu")
    flags = re.sub(r"--xla_force_host_platform_device_count=\d+", "", env.get("XLA_FLAGS", ""))
    env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={devices or 1}".strip()
    env["MPLBACKEND"] = "Agg"
    return env


@pytest.mark.parametrize("ident, first, program", PROGRAMS, ids=[p[0] for p in PROGRAMS])
def test_snippet_runs(ident, first, program, tmp_path):
    if first.skip:
        pytest.skip(f"{ident}: {first.skip}")
    if "sklearn" in program:
        pytest.importorskip("sklearn")
    path = tmp_path / "snippet.py"
    path.write_text(program, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-W", "error", str(path)],
        cwd=tmp_path,
        env=_env(first.devices),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (
        f"{ident} failed:\n{program}\n--- output ---\n{proc.stdout}{proc.stderr[-4000:]}"
    )
