"""The project's metadata lives in settings.ini (nbdev), pyproject.toml (packaging), requirements/ (locks)
and .pre-commit-config.yaml (linters). Each fact has one source; these tests catch the copies drifting.
"""

import configparser
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def settings():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "settings.ini")
    return cfg["DEFAULT"]


def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def requirement_lines(path):
    lines = [ln.split("#")[0].strip() for ln in (ROOT / path).read_text().splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("-")]


def pins(path):
    "name -> version of a pip-compile lock file."
    found = re.findall(
        r"^([A-Za-z0-9_.\-]+)==([^\s]+)", (ROOT / path).read_text(), re.MULTILINE
    )
    return {name.lower().replace("_", "-"): version for name, version in found}


def test_names_python_and_description_agree():
    s, p = settings(), pyproject()
    assert p["name"] == s["lib_name"]
    assert p["requires-python"] == f">={s['min_python']}"
    assert p["description"] == s["description"]


def test_version_is_single_sourced():
    init = (ROOT / "image_classifier" / "__init__.py").read_text()
    assert f'__version__ = "{settings()["version"]}"' in init
    assert "version" in pyproject()["dynamic"] and "version" not in pyproject()


def test_runtime_dependencies_match_prod_requirements():
    deps = pyproject()["dependencies"]
    assert deps, "pyproject.toml must list the real runtime dependencies"
    assert sorted(deps) == sorted(requirement_lines("requirements/prod.in"))


def test_every_runtime_dependency_is_locked():
    locked = pins("requirements/prod.txt")
    for dep in pyproject()["dependencies"]:
        name, _, version = dep.partition("==")
        assert (
            name.lower() in locked
        ), f"{name} is missing from requirements/prod.txt: run requirements/compile.sh"
        if version:
            assert locked[name.lower()] == version


def test_console_scripts_agree():
    ini = dict(line.split("=", 1) for line in settings()["console_scripts"].split())
    assert ini == pyproject()["scripts"]


def test_lock_files_agree_with_each_other():
    prod, dev, cq = (
        pins("requirements/prod.txt"),
        pins("requirements/dev.txt"),
        pins("requirements/cq.txt"),
    )
    for name, version in prod.items():
        assert (
            dev.get(name, version) == version
        ), f"{name}: prod {version}, dev {dev[name]}"
    for name, version in dev.items():
        assert cq.get(name, version) == version, f"{name}: dev {version}, cq {cq[name]}"


def test_pre_commit_hooks_pin_the_locked_versions():
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    locked = pins("requirements/dev.txt") | pins("requirements/cq.txt")
    hooks = [hook for repo in config["repos"] for hook in repo["hooks"]]
    assert all(repo["repo"] == "local" for repo in config["repos"])
    for hook in hooks:
        assert hook["additional_dependencies"], hook["id"]
        for dep in hook["additional_dependencies"]:
            name, _, version = dep.partition("==")
            assert (
                locked.get(name) == version
            ), f"{hook['id']}: {dep}, but the lock files have {locked.get(name)}"
