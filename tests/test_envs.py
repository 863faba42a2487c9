"""What the project declares: the conda environment used under --use-conda installs this project and asks
for what pyproject.toml pins; the GPL library stays a test dependency; the licence file is the one named."""

import re
import shutil
import tomllib

import pytest
import yaml
from helpers import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
ENV_FILES = sorted((ROOT / "envs").glob("*.yaml"))
# How pip writes an environment variable in a requirement line, which it expands from the environment.
ENV_VARIABLE = re.compile(r"\$\{[A-Z0-9_]+\}")


def _name(requirement):
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.\-]+", requirement.strip())[0]).lower()


def _requirements(lines):
    """name -> version spec, names normalised the way pip compares them."""
    parsed = {}
    for line in lines:
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(.*)", line.strip())
        parsed[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[2].replace(" ", "")
    return parsed


def _pip(env_file):
    env = yaml.safe_load(env_file.read_text())
    return next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)


def _project_lines(pip):
    """The lines that install this project rather than name a package."""
    return [line for line in pip if line.startswith("-")]


@pytest.mark.parametrize("env_file", ENV_FILES, ids=[f.name for f in ENV_FILES])
def test_every_rule_environment_agrees_with_pyproject(env_file):
    packages = [line for line in _pip(env_file) if not line.startswith("-")]
    assert _requirements(packages) == _requirements(PYPROJECT["dependencies"])
    env = yaml.safe_load(env_file.read_text())
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert python == "python=3.11"


@pytest.mark.parametrize("env_file", ENV_FILES, ids=[f.name for f in ENV_FILES])
@pytest.mark.parametrize("conda_prefix", [".snakemake/conda", "elsewhere/conda-envs"])
def test_every_rule_environment_installs_this_project_wherever_it_is_copied(env_file, conda_prefix, tmp_path):
    """Snakemake copies the env file to <conda prefix>/<hash>.yaml and runs `conda env create --file`
    on the copy; conda runs pip in the copy's folder, so a relative path would resolve there. pip
    expands ${NAME} in requirement lines from the environment, which the rules set to the checkout."""
    (line,) = _project_lines(_pip(env_file))
    assert line.startswith("-e "), line  # editable: jobs run the checkout's code, which the env's hash ignores
    copy = tmp_path / "workdir" / conda_prefix / "0123abcd.yaml"
    copy.parent.mkdir(parents=True)
    shutil.copy(env_file, copy)
    expanded = ENV_VARIABLE.sub(str(ROOT), line.removeprefix("-e "))  # the rules set the variable to the checkout
    project = (copy.parent / expanded).resolve()
    assert project == ROOT, f"{env_file.name}: {line!r} installs {project} from a copy in {copy.parent}"
    assert tomllib.loads((project / "pyproject.toml").read_text())["project"]["name"] == "diffaug"
    assert (project / "src" / "diffaug" / "__init__.py").is_file()


def test_the_gpl_library_is_only_a_test_dependency():
    """audiodiffusion (GPL-3.0) is imported by a test alone; the runtime needs librosa, which it pulled in."""
    runtime = {_name(r) for r in PYPROJECT["dependencies"]}
    assert "audiodiffusion" not in runtime and "librosa" in runtime
    assert "audiodiffusion" in {_name(r) for r in PYPROJECT["optional-dependencies"]["test"]}
    for env_file in ENV_FILES:
        assert "audiodiffusion" not in {_name(r) for r in _pip(env_file) if not r.startswith("-")}, env_file.name
    imports = {
        path.relative_to(ROOT)
        for folder in ("src", "scripts", "workflow", "benchmarks")
        for path in (ROOT / folder).rglob("*")
        if path.suffix in (".py", ".smk") and re.search(r"^\s*(from|import) audiodiffusion\b", path.read_text(), re.M)
    }
    assert not imports


def test_every_rule_uses_a_shipped_environment():
    for rules in (ROOT / "workflow" / "rules").glob("*.smk"):
        for env in re.findall(r'conda:\s*"([^"]+)"', rules.read_text()):
            assert (rules.parent / env).resolve().is_file(), f"{rules.name}: {env}"


def test_the_licence_is_the_one_pyproject_names():
    assert PYPROJECT["license"] == {"text": "MIT"}
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Copyright (c) 2026 The diffaug authors" in text
    assert "Permission is hereby granted, free of charge" in text
