"""The conda environment used under --use-conda asks for what pyproject.toml pins."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _requirements(lines):
    """name -> version spec, names normalised the way pip compares them."""
    parsed = {}
    for line in lines:
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(.*)", line.strip())
        parsed[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[2].replace(" ", "")
    return parsed


def test_every_rule_environment_agrees_with_pyproject():
    project = _requirements(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    for env_file in (ROOT / "envs").glob("*.yaml"):
        env = yaml.safe_load(env_file.read_text())
        pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
        assert _requirements(pip) == project, env_file.name
        python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
        assert python == "python=3.11"


def test_every_rule_uses_a_shipped_environment():
    for rules in (ROOT / "workflow" / "rules").glob("*.smk"):
        for env in re.findall(r'conda:\s*"([^"]+)"', rules.read_text()):
            assert (rules.parent / env).resolve().is_file(), f"{rules.name}: {env}"
