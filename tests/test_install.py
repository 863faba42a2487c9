"""An installed diffaug, not an editable one, checks configs away from the checkout: the schema ships in the package."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT

CHECK_CONFIGS = """
import json, sys
import yaml
import diffaug.plan
from diffaug.plan import check_config
from diffaug.schema import ConfigError, with_defaults

config = yaml.safe_load(open(sys.argv[1]))
config["classifier"].pop("model", None)
check_config(config)
bad = yaml.safe_load(open(sys.argv[1]))
bad["classifier"]["epoch"] = 3
try:
    check_config(bad)
    refusal = ""
except ConfigError as error:
    refusal = str(error)
print(json.dumps({
    "module": diffaug.plan.__file__,
    "filled_default": config["classifier"]["model"],
    "section_default": with_defaults("classifier", {})["model"],
    "refusal": refusal,
}))
"""

PRINT_SITE_PACKAGES = "import sysconfig; print(sysconfig.get_path('purelib'))"


def _package_folders() -> list[str]:
    """The folders this interpreter imports installed packages from (the project venv's site-packages);
    not the checkout's src, which an editable install or PYTHONPATH puts on the path."""
    return [entry for entry in sys.path if Path(entry).name in ("site-packages", "dist-packages")]


def _isolated_env() -> dict[str, str]:
    """This environment without PYTHONPATH and the like (which would import the checkout) or pip settings
    (a user's pip config could ask for an index or a --user install)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "PIP_"))}
    return env | {"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def _run(command: list, cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=_isolated_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return result


@pytest.mark.slow
def test_a_non_editable_install_checks_configs_without_the_checkout(tmp_path):
    # Built from a copy so that the build's files stay out of the checkout.
    project = tmp_path / "project"
    shutil.copytree(ROOT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, project / name)

    # A venv that borrows the project venv's packages (torch and all, too slow to install again) through a
    # .pth file, whose folders come after its own site-packages, so that its own diffaug is the one imported.
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    site_packages = Path(_run([python, "-c", PRINT_SITE_PACKAGES], tmp_path).stdout.strip())
    (site_packages / "borrowed.pth").write_text("\n".join(_package_folders()) + "\n")

    # Offline, with the borrowed setuptools; --ignore-installed leaves alone the project venv's editable diffaug,
    # which pip sees on the borrowed path.
    offline = ["--no-deps", "--no-build-isolation", "--no-index", "--ignore-installed", "--no-cache-dir"]
    _run([python, "-m", "pip", "install", *offline, str(project)], cwd=tmp_path)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    checked = json.loads(_run([python, "-c", CHECK_CONFIGS, str(ROOT / "config.yaml")], elsewhere).stdout)

    module = Path(checked["module"])
    assert module.is_relative_to(site_packages), module
    assert not module.is_relative_to(ROOT / "src"), module
    assert checked["filled_default"] == checked["section_default"] == "published_cnn"
    assert "classifier: unknown key(s) epoch; allowed:" in checked["refusal"]


def test_the_workflow_reads_the_schema_the_package_ships():
    """One file, not two copies that could drift apart."""
    workflow_schema = ROOT / "workflow" / "schemas" / "config.schema.yaml"
    assert workflow_schema.is_symlink() and workflow_schema.samefile(ROOT / "src" / "diffaug" / "config.schema.yaml")
