"""ocirt as Python users install it: a wheel built by pip from this checkout, pip-installed into
a fresh venv, whose `ocirt`, `ocimg`, `python -m ocirt` and `python -m ocimg` work like the
launcher's commands."""

from __future__ import annotations

import configparser
import filecmp
import os
import subprocess
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel_names(pip_install) -> list[str]:
    with zipfile.ZipFile(pip_install.wheel) as z:
        return z.namelist()


def _wheel_text(pip_install, suffix: str) -> str:
    with zipfile.ZipFile(pip_install.wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(suffix))
        return z.read(name).decode()


def test_wheel_carries_every_module_of_both_packages(wheel_names):
    sources = {os.path.relpath(os.path.join(d, f), REPO)
               for top in ("ocirt", "ocimg")
               for d, _, files in os.walk(REPO / top) for f in files if f.endswith(".py")}
    assert sources <= set(wheel_names), sorted(sources - set(wheel_names))


def test_wheel_carries_the_specs_as_package_data(wheel_names):
    specs = {f"ocirt/specs/{n}" for n in os.listdir(REPO / "specs")}
    assert "ocirt/specs/config-schema.json" in specs
    assert specs <= set(wheel_names), sorted(specs - set(wheel_names))


def test_wheel_carries_no_tests_hack_or_bytecode(wheel_names):
    tops = {n.split("/")[0] for n in wheel_names}
    assert tops == {"ocirt", "ocimg", "ocirt-0.1.0.dist-info"}, tops
    assert not [n for n in wheel_names if "__pycache__" in n or n.endswith(".pyc")]


def test_wheel_declares_both_console_scripts(pip_install):
    eps = configparser.ConfigParser()
    eps.read_string(_wheel_text(pip_install, ".dist-info/entry_points.txt"))
    assert dict(eps["console_scripts"]) == {"ocirt": "ocirt.__main__:run",
                                             "ocimg": "ocimg.cli:main"}


def test_wheel_metadata_has_the_requirements_and_the_test_extra(pip_install):
    meta = _wheel_text(pip_install, ".dist-info/METADATA")
    requires = [line.split(":", 1)[1].strip() for line in meta.splitlines()
                if line.startswith("Requires-Dist:")]
    assert {"urllib3>=2", "zstandard>=0.19", "rich>=12"} <= set(requires), requires
    assert 'pytest>=7; extra == "test"' in requires, requires
    assert "Provides-Extra: test" in meta


# Each console script and its `python -m` form, from outside the checkout.
@pytest.mark.parametrize("argv, expected", [
    (["ocirt", "--version"], "ocirt version 0.1.0\n"),
    (["python3", "-m", "ocirt", "--version"], "ocirt version 0.1.0\n"),
    (["ocimg", "--help"], "usage: ocimg"),
    (["python3", "-m", "ocimg", "--help"], "usage: ocimg"),
])
def test_installed_command_answers_from_the_venv(pip_install, argv, expected, tmp_path):
    p = subprocess.run([pip_install.bin(argv[0]), *argv[1:]], capture_output=True, text=True,
                       cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(expected), p.stdout


def test_installed_package_finds_its_specs(pip_install, tmp_path):
    p = subprocess.run([pip_install.bin("python3"), "-I", "-c",
                        "import ocirt; print(ocirt.SPECS_DIR)"],
                       capture_output=True, text=True, cwd=tmp_path, check=True)
    installed = p.stdout.strip()
    assert installed.startswith(str(pip_install.venv)), installed
    assert not os.path.islink(installed)
    names = sorted(os.listdir(REPO / "specs"))
    assert sorted(os.listdir(installed)) == names
    _, mismatch, errors = filecmp.cmpfiles(REPO / "specs", installed, names, shallow=False)
    assert mismatch == errors == []


def test_checkout_finds_the_same_specs():
    import ocirt
    assert os.path.samefile(ocirt.SPECS_DIR, REPO / "specs")
