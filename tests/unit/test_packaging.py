"""A non-editable install finds the trained models (the wheel carries models/ and trained_models_dir() looks there)
and the package data (prompts, the web page)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

import osum.runtime
from osum.runtime import trained_models_dir

ROOT = Path(__file__).resolve().parents[2]


def test_trained_models_dir_order(monkeypatch, tmp_path):
    monkeypatch.setenv("OSUM_MODELS_DIR", str(tmp_path))
    assert trained_models_dir() == tmp_path
    monkeypatch.delenv("OSUM_MODELS_DIR")
    assert trained_models_dir() == ROOT / "models"  # a source checkout
    # installed from a wheel: no models/ beside the package, so <prefix>/share/osum/models
    fake = tmp_path / "site-packages" / "osum" / "runtime.py"
    monkeypatch.setattr(osum.runtime, "__file__", str(fake))
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "venv"))
    assert trained_models_dir() == tmp_path / "venv" / "share" / "osum" / "models"


@pytest.mark.slow
def test_wheel_carries_the_committed_models(tmp_path):
    files = (
        subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    src = tmp_path / "src"
    for name in filter(None, files):  # the tracked tree only, so the build leaves the checkout untouched
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    committed = sorted(p.relative_to(src).as_posix() for p in (src / "models").rglob("*") if p.is_file())
    assert "models/mini-stage1/delta.safetensors" in committed
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            ".",
        ],
        cwd=src,
        check=True,
    )
    (wheel,) = tmp_path.glob("osum-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in committed:
        assert f"osum-0.1.0.data/data/share/osum/{path}" in names
    # the web page of `osum serve` and the task prompts are package data
    for path in (
        "osum/serving/static/index.html",
        "osum/serving/static/app.js",
        "osum/tasks/prompts/asr.yaml",
    ):
        assert path in names


def test_cli_says_its_version(capsys):
    import pytest

    import osum
    from osum.cli.main import main

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"osum {osum.__version__}"


def _name(requirement: str) -> str:
    """'praat-parselmouth>=0.4  # why' -> 'praat-parselmouth' (PEP 503 normalised)."""
    return re.sub(r"[-_.]+", "-", re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0]).lower()


def test_the_pinned_environment_has_every_declared_dependency():
    """`make` installs requirements/cpu.txt and then osum with --no-deps, so a dependency added to pyproject.toml
    but not pinned there is missing on a fresh machine (CI failed that way once, on praat-parselmouth)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_name(r) for r in project["dependencies"]}
    for extra in ("assets", "dev", "train", "serve"):
        declared |= {_name(r) for r in project["optional-dependencies"][extra]}
    pinned = {
        _name(line)
        for line in (ROOT / "requirements" / "cpu.txt").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    }
    assert declared - pinned == set(), f"declared in pyproject.toml but not pinned in requirements/cpu.txt: {declared - pinned}"
