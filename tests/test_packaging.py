"""The project's metadata lives in settings.ini (nbdev), pyproject.toml (packaging), requirements/ (locks)
and .pre-commit-config.yaml (linters). Each fact has one source; these tests catch the copies drifting.

The locks are universal (one file per set, with environment markers) and must install, from wheels, on
every platform in `PLATFORMS` with Python 3.11. The tests that say so ask the package registry, as
`make lock` does: they need PyPI (or the index uv is configured to use).
"""

import configparser
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
SETS = [
    "prod",
    "dev",
    "cq",
    "build",
]  # requirements/<set>.in -> <set>.txt, in the order compile.sh locks them
# the first 3.11 and a late one (the last with installers): markers may tell them apart
PYTHONS = ["3.11.0", "3.11.9"]
MACOS = "14.0"  # torch and onnxruntime ship macOS wheels for 14 (Sonoma) and newer
# uv's target name -> the environment markers a lock is read with there
PLATFORMS = {
    "x86_64-unknown-linux-gnu": dict(
        sys_platform="linux", platform_system="Linux", platform_machine="x86_64"
    ),
    "aarch64-unknown-linux-gnu": dict(
        sys_platform="linux", platform_system="Linux", platform_machine="aarch64"
    ),
    "aarch64-apple-darwin": dict(
        sys_platform="darwin", platform_system="Darwin", platform_machine="arm64"
    ),
    "x86_64-pc-windows-msvc": dict(
        sys_platform="win32",
        platform_system="Windows",
        platform_machine="AMD64",
        os_name="nt",
    ),
}


def settings():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "settings.ini")
    return cfg["DEFAULT"]


def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def requirement_lines(path):
    lines = [ln.split("#")[0].strip() for ln in (ROOT / path).read_text().splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("-")]


def pins(path, env=None):
    "name -> version of the pins in lock file `path` whose markers hold in `env` (default: this machine)."
    lines = (ROOT / path).read_text().splitlines()
    reqs = [
        Requirement(ln) for ln in lines if ln and not ln.startswith((" ", "#", "-"))
    ]
    assert all(
        str(r.specifier).startswith("==") for r in reqs
    ), f"{path} pins with == only"
    return {
        canonicalize_name(r.name): str(r.specifier)[2:]
        for r in reqs
        if r.marker is None or r.marker.evaluate(env)
    }


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


@pytest.mark.parametrize("platform", PLATFORMS)
def test_lock_files_agree_with_each_other(platform):
    env = PLATFORMS[platform]
    prod, dev, cq, build = (pins(f"requirements/{s}.txt", env) for s in SETS)
    for name, version in prod.items():
        assert (
            dev.get(name, version) == version
        ), f"{name}: prod {version}, dev {dev[name]}"
    for name, version in dev.items():
        assert cq.get(name, version) == version, f"{name}: dev {version}, cq {cq[name]}"
        assert (
            build.get(name, version) == version
        ), f"{name}: dev {version}, build {build[name]}"


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


def uv(*args, **env):
    "Run the locked uv (installed with the build set) and return its output; a failure shows uv's words."
    exe = shutil.which("uv", path=sysconfig.get_path("scripts")) or shutil.which("uv")
    assert exe, "uv is missing: it comes with requirements/build.txt (make setup)"
    env = (
        os.environ | dict(UV_PYTHON_DOWNLOADS="never") | env
    )  # it needs no other interpreter
    out = subprocess.run(
        [exe, *args], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr.strip()
    return out.stdout


@pytest.mark.parametrize("lock", SETS)
@pytest.mark.parametrize("platform", PLATFORMS)
def test_every_pin_has_a_wheel_on_every_platform(platform, lock):
    """Resolve the lock for one platform from wheels only (what a laptop without compilers can install):
    a pin without a wheel there fails, and so does a dependency the lock does not pin there.
    """
    for python in PYTHONS:
        try:
            out = uv(
                "pip", "compile", "--quiet", "--no-header", "--no-annotate", "--only-binary", ":all:",
                "--python-platform", platform, "--python-version", python, ROOT / "requirements" / f"{lock}.txt",
                MACOSX_DEPLOYMENT_TARGET=MACOS,
            )  # fmt: skip
        except AssertionError as e:
            pytest.fail(
                f"requirements/{lock}.txt does not install on {platform}, Python {python}:\n{e}"
            )
        resolved = {
            canonicalize_name(r.name): str(r.specifier)[2:]
            for r in map(Requirement, out.split())
        }
        resolved.pop("pip", None)  # left unpinned on purpose (compile.sh)
        locked = pins(
            f"requirements/{lock}.txt",
            PLATFORMS[platform] | dict(python_full_version=python),
        )
        unpinned = {n: v for n, v in resolved.items() if locked.get(n) != v}
        unneeded = sorted(set(locked) - set(resolved))
        assert not unpinned and not unneeded, (
            f"requirements/{lock}.txt on {platform}, Python {python}: not pinned there (uv would take)"
            f" {unpinned}; pinned but not needed there {unneeded}: run make lock"
        )


def test_make_lock_regenerates_the_sets_identically(tmp_path):
    "compile.sh on a copy of requirements/ writes the committed files again, byte for byte (make check-lock)."
    shutil.copytree(ROOT / "requirements", tmp_path / "requirements")
    scripts = sysconfig.get_path("scripts")
    subprocess.run(
        ["bash", "requirements/compile.sh"], cwd=tmp_path, check=True,
        env=os.environ | dict(PATH=f"{scripts}{os.pathsep}{os.environ['PATH']}"),
    )  # fmt: skip
    for lock in SETS:
        name = f"requirements/{lock}.txt"
        assert (tmp_path / name).read_text() == (
            ROOT / name
        ).read_text(), f"make lock changes {name}"


def test_pip_sync_reads_the_universal_locks(tmp_path):
    "pip-sync (pip-tools) installs exactly the pins whose markers hold here, nothing filtered by hand."
    subprocess.run([sys.executable, "-m", "venv", tmp_path / "venv"], check=True)
    sets = [f"requirements/{lock}.txt" for lock in SETS[1:]]  # dev includes prod
    out = subprocess.run(
        [shutil.which("pip-sync", path=sysconfig.get_path("scripts")), "--dry-run",
         "--python-executable", tmp_path / "venv" / "bin" / "python", *sets],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert "Would install:" in out.stdout, out.stdout + out.stderr
    planned = out.stdout.split("Would install:")[1].split()
    wanted = {}
    for name in sets:
        wanted |= pins(name)
    wanted.pop("pip", None)
    assert sorted(planned) == sorted(f"{n}=={v}" for n, v in wanted.items())
