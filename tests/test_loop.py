"""The Git LFS loop, tested without GitHub: train from the form and commit the run, fine-tune from it on the
next dispatch, read the job summary; refuse a run name that is taken; check drift against a committed run.

The workflows' own steps run in order, read from their YAML files, against a local bare `origin` with Git
LFS (a file:// remote: git-lfs transfers to it without a server), on the embedded digits with one epoch.
What stands in for GitHub: every job starts from a fresh clone of `origin` without LFS objects (as
actions/checkout with lfs: false); `env:` and `if:` are read as the YAML maps them, through a small
evaluator of the `${{ }}` expressions the workflows use; GITHUB_ENV, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY
are files; artifacts are folders. `docker run` runs the package's commands from this environment instead
of the image, so the steps that build the image or install the package are skipped (`make recipe` checks
the image's install); `gh` records its arguments.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image, ImageOps

from image_classifier.data import write_digits

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SKIPPED = {
    "Build the image",
    "Install",
}  # the image and the package: this environment stands in
DOCKER = f"""#!/usr/bin/env bash
# docker run [options] TAG [arguments]: the image's command (--entrypoint, else the trainer) from here
[ "$1" = run ] || exit 0
shift
command=image_classifier_trainer
while [ $# -gt 0 ]; do
    case "$1" in
        --rm) shift ;;
        --entrypoint) command="$2"; shift 2 ;;
        --*) shift 2 ;;
        *) break ;;
    esac
done
shift
exec "{BIN}/$command" "$@"
"""
GH = '#!/usr/bin/env bash\nprintf "%s\\n" "$*" >> "$GH_LOG"\n'

pytestmark = pytest.mark.skipif(
    shutil.which("git-lfs") is None,
    reason="git-lfs is not installed (make tools says how)",
)


class Context(dict):
    "The `${{ }}` contexts (inputs, github, steps, needs) with attribute access; a missing name is empty."

    def __getattr__(self, name):
        value = self.get(name, {})
        return Context(value) if isinstance(value, dict) else value

    def __str__(self):
        return "" if not self else super().__str__()


def evaluate(expression: str, contexts: dict):
    "The value of a `${{ }}` expression of the kinds the workflows use (||, &&, !, ==, !=, literals)."
    expression = re.sub(r"^\$\{\{\s*|\s*\}\}$", "", str(expression).strip())
    python = re.sub(
        r"!(?!=)", " not ", expression.replace("&&", " and ").replace("||", " or ")
    )
    python = python.replace("cancelled()", "False").replace("always()", "True")
    return eval(python, {}, {k: Context(v) for k, v in contexts.items()})


def substitute(text, contexts: dict) -> str:
    "`text` with each `${{ }}` replaced as GitHub writes values (true/false for booleans)."

    def value(match):
        v = evaluate(match.group(1), contexts)
        return str(v).lower() if isinstance(v, bool) else str(v)

    return re.sub(r"\$\{\{\s*(.*?)\s*\}\}", value, str(text))


def read_pairs(path: Path) -> dict:
    "KEY=VALUE lines of a GITHUB_ENV or GITHUB_OUTPUT file."
    lines = path.read_text().splitlines() if path.exists() else []
    return dict(line.split("=", 1) for line in lines if "=" in line)


class GitHub:
    "A repository on a local bare origin with Git LFS, and a runner for its workflows' jobs."

    def __init__(self, tmp: Path):
        self.tmp, self.artifacts, self.runs = tmp, tmp / "artifacts", 0
        stubs = tmp / "stubs"
        tmp.mkdir(parents=True, exist_ok=True)
        stubs.mkdir()
        for name, script in (("docker", DOCKER), ("gh", GH)):
            (stubs / name).write_text(script)
            (stubs / name).chmod(0o755)
        self.env = os.environ | dict(
            HOME=str(tmp / "home"),
            GIT_CONFIG_NOSYSTEM="1",
            PATH=os.pathsep.join([str(stubs), str(BIN), os.environ["PATH"]]),
            HF_HUB_OFFLINE="1",
            IMAGE_CLASSIFIER_CACHE=str(tmp / "cache"),
            OMP_NUM_THREADS="2",
            GH_LOG=str(tmp / "gh.log"),
        )
        (tmp / "home").mkdir()
        self.git(tmp, "config", "--global", "user.name", "t")
        self.git(tmp, "config", "--global", "user.email", "t@t")
        self.origin = tmp / "origin.git"
        self.git(tmp, "init", "-q", "--bare", "-b", "main", self.origin)
        self.dev = (
            tmp / "dev"
        )  # the project as it is now: its tracked files, committed and pushed
        self.git(tmp, "init", "-q", "-b", "main", self.dev)
        self.git(self.dev, "lfs", "install", "--local")
        for name in (
            subprocess.run(
                ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
            )
            .stdout.decode()
            .split("\0")
        ):
            if name and (ROOT / name).is_file():
                (self.dev / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, self.dev / name)
        self.git(self.dev, "add", ".")
        self.git(self.dev, "commit", "-qm", "the project")
        self.git(self.dev, "remote", "add", "origin", self.origin.as_uri())
        self.git(self.dev, "push", "-q", "origin", "main")

    def git(self, cwd, *args, **env) -> str:
        done = subprocess.run(
            ["git", *map(str, args)],
            cwd=cwd,
            env=self.env | env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, (args, done.stderr)
        return done.stdout.strip()

    def main(self) -> str:
        return self.git(self.origin, "rev-parse", "main")

    def checkout(self) -> Path:
        "A fresh clone of origin's main without LFS objects, as actions/checkout with lfs: false."
        self.runs += 1
        work = self.tmp / f"job{self.runs}"
        self.git(
            self.tmp, "clone", "-q", self.origin.as_uri(), work, GIT_LFS_SKIP_SMUDGE="1"
        )
        return work

    def dispatch(self, file: str, event: str = "workflow_dispatch", **given) -> dict:
        "Run the jobs of `.github/workflows/file` in order; {job: {result, outputs, log, work, summary}}."
        wf = yaml.safe_load((self.dev / ".github" / "workflows" / file).read_text())
        shutil.rmtree(
            self.artifacts, ignore_errors=True
        )  # a dispatch sees its own artifacts only
        declared = (
            wf[True].get("workflow_dispatch", {}).get("inputs", {})
            if event == "workflow_dispatch"
            else {}
        )
        inputs = {k: given.get(k, v.get("default", "")) for k, v in declared.items()}
        github = dict(
            token="",
            ref_name="main",
            ref_type="branch",
            event_name=event,
            repository="o/r",
            run_id=str(self.runs + 1),
        )
        done = {}
        for name, job in wf["jobs"].items():
            contexts = dict(
                inputs=inputs, github=github, needs={n: done[n] for n in done}, steps={}
            )
            needs = (
                [job["needs"]]
                if isinstance(job.get("needs"), str)
                else job.get("needs", [])
            )
            status = str(
                job.get("if", "")
            )  # without a status function, a job needs its needs to succeed
            blocked = any(
                done[n]["result"] != "success" for n in needs
            ) and not re.search(r"always\(\)|cancelled\(\)", status)
            if blocked or "if" in job and not evaluate(job["if"], contexts):
                done[name] = dict(result="skipped", outputs={}, log="")
                continue
            done[name] = self.run_job(job, wf.get("env", {}), contexts)
        return done

    def run_job(self, job: dict, workflow_env: dict, contexts: dict) -> dict:
        env = {
            k: substitute(v, contexts)
            for k, v in (workflow_env | job.get("env", {})).items()
        }
        files = {
            k: self.tmp / f"{k.lower()}-{self.runs}-{id(job)}"
            for k in ("GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY")
        }
        work, log, failed = None, [], False
        for step in job["steps"]:
            condition = step.get("if", "success()").replace("success()", "True")
            if (
                failed
                and "always()" not in condition
                or not evaluate(condition, contexts)
            ):
                continue
            action, name = step.get("uses", ""), step.get("name", step.get("uses"))
            if action.startswith("actions/checkout"):
                work = self.checkout()
            elif action.startswith(
                ("actions/upload-artifact", "actions/download-artifact")
            ):
                args = {k: substitute(v, contexts) for k, v in step["with"].items()}
                store = self.artifacts / args["name"]
                upload = action.startswith("actions/upload-artifact")
                if upload and (work / args["path"]).is_dir():
                    shutil.copytree(work / args["path"], store, dirs_exist_ok=True)
                elif (
                    upload and (work / args["path"]).is_file()
                ):  # a file keeps its name
                    store.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(work / args["path"], store)
                elif action.startswith("actions/download-artifact"):
                    shutil.copytree(store, work / args["path"], dirs_exist_ok=True)
            elif "run" in step and name not in SKIPPED:
                step_env = (
                    env
                    | read_pairs(files["GITHUB_ENV"])
                    | {k: str(v) for k, v in files.items()}
                )
                step_env |= {
                    k: substitute(v, contexts) for k, v in step.get("env", {}).items()
                }
                ran = subprocess.run(
                    ["bash", "-e", "-c", step["run"]],
                    cwd=work,
                    env=self.env | step_env,
                    capture_output=True,
                    text=True,
                )
                log.append(
                    f"--- {name}: exit {ran.returncode}\n{ran.stdout}{ran.stderr}"
                )
                outputs = read_pairs(files["GITHUB_OUTPUT"])
                files["GITHUB_OUTPUT"].unlink(missing_ok=True)
                if step.get("id"):
                    contexts["steps"][step["id"]] = dict(outputs=outputs)
                failed = failed or (
                    ran.returncode != 0 and not step.get("continue-on-error")
                )
        outputs = {
            k: substitute(v, contexts) for k, v in job.get("outputs", {}).items()
        }
        summary = files["GITHUB_STEP_SUMMARY"]
        return dict(
            result="failure" if failed else "success",
            outputs=outputs,
            log="\n".join(log),
            work=work,
            summary=summary.read_text() if summary.exists() else "",
        )


def lfs_objects(clone: Path) -> set:
    "The oids of the LFS objects present in `clone`."
    return {
        p.name for p in (clone / ".git" / "lfs" / "objects").rglob("*") if p.is_file()
    }


def pointer_oid(text: str) -> str:
    return re.search(r"oid sha256:([0-9a-f]{64})", text).group(1)


def test_train_commit_fine_tune_compare_and_check_drift(tmp_path):
    gh = GitHub(tmp_path)
    show = lambda path: gh.git(gh.origin, "show", f"main:{path}")  # noqa: E731
    # dispatch 1 trains run A and commits it: origin holds pointers in its tree, objects in its LFS store
    form = dict(num_epochs="1", commit_results=True)
    first = gh.dispatch("training.yaml", run_name="A", **form)
    assert first["train"]["result"] == first["commit"]["result"] == "success", (
        first["train"]["log"] + first["commit"]["log"]
    )
    a_oid = pointer_oid(show("experiments/default/A/model.pth"))
    assert (gh.origin / "lfs" / "objects" / a_oid[:2] / a_oid[2:4] / a_oid).is_file()
    # text stays text, the recipe's reasons with it
    params = show("experiments/default/A/params.yaml")
    assert (
        params.startswith("# chosen from the data")
        and "\ndataset_folder: digits\n" in params
    ), params
    b = gh.dispatch(
        "training.yaml", run_name="B", seed="7", **form
    )  # the same seed would give A again
    b_oid = pointer_oid(show("experiments/default/B/model.pth"))
    assert b["commit"]["result"] == "success" and b_oid != a_oid
    # dispatch 2 fine-tunes from A: only A's weights are fetched, and run C records A as its parent
    second = gh.dispatch(
        "training.yaml", run_name="C", pretrained_model="default/A/model.pth", **form
    )
    train = second["train"]
    assert train["result"] == second["commit"]["result"] == "success", (
        train["log"] + second["commit"]["log"]
    )
    assert lfs_objects(train["work"]) == {a_oid}, lfs_objects(train["work"])
    parent = yaml.safe_load(show("experiments/default/C/environment.json"))["parent"]
    assert (parent["run"], parent["commit"]) == (
        "default/A",
        gh.git(
            gh.origin,
            "log",
            "-1",
            "--format=%H",
            "main",
            "--",
            "experiments/default/A/model.pth",
        ),
    )
    assert train["summary"].startswith("### Run `default/C`: finished"), train[
        "summary"
    ]
    assert (
        "Fine-tuned from `default/A`" in train["summary"]
        and "| metric | parent `default/A` |" in train["summary"]
    )
    print(train["summary"])
    # the experiment's report page is uploaded beside the run: A and B (their pictures in this clone are LFS
    # pointers, so their confusion matrices are drawn again from metrics.json), and C with its lineage
    page = (gh.artifacts / "report" / "report.html").read_text()
    assert all(f"default/{r}" in page for r in "ABC"), page[:2000]
    assert (
        "fine-tuned from default/A (finished" in page and page.count("<img ") >= 4
    ), page[:2000]
    # dispatch 3 reuses a run name: refused before training, and origin is unchanged
    before = gh.main()
    third = gh.dispatch("training.yaml", run_name="A", **form)
    assert (
        third["train"]["result"] == "failure" and third["commit"]["result"] == "skipped"
    )
    assert (
        "experiments/default/A already exists" in third["train"]["log"]
        and gh.main() == before
    )
    # the commit job alone, as when another dispatch of the same name pushed first: nothing is overwritten
    shutil.copytree(
        train["work"] / "experiments" / "default" / "C", gh.artifacts / "run"
    )
    (gh.artifacts / "run" / "metrics.json").write_text(
        "{}"
    )  # another run's results, under the same name
    wf = yaml.safe_load(
        (gh.dev / ".github" / "workflows" / "training.yaml").read_text()
    )
    inputs = dict(experiment_name="default", run_name="C", commit_results=True)
    commit = gh.run_job(
        wf["jobs"]["commit"],
        wf["env"],
        dict(inputs=inputs, github=dict(ref_name="main", ref_type="branch"), steps={}),
    )
    assert commit["result"] == "failure", commit["log"]
    assert (
        "experiments/default/C already exists on main" in commit["log"]
        and gh.main() == before
    )
    # drift.yaml on a repository without a committed run or new data: green, with a notice
    fresh = GitHub(tmp_path / "fresh")
    scheduled = fresh.dispatch("drift.yaml", event="schedule")
    assert (
        scheduled["drift"]["result"] == "success"
        and "::notice::nothing to check yet" in scheduled["drift"]["log"]
    )
    assert scheduled["retrain"]["result"] == "skipped"
    # new images that no longer look like the digits, committed through LFS: drift, and a retraining dispatch
    digits = write_digits(tmp_path / "digits")
    incoming = gh.dev / "data" / "incoming"
    for path in sorted(digits.rglob("*.png"))[::6]:
        (incoming / path.parent.name).mkdir(parents=True, exist_ok=True)
        ImageOps.invert(Image.open(path).convert("RGB")).save(
            incoming / path.parent.name / path.name
        )
    gh.git(gh.dev, "pull", "-q", "origin", "main", GIT_LFS_SKIP_SMUDGE="1")
    gh.git(gh.dev, "add", "data/incoming")
    gh.git(gh.dev, "commit", "-qm", "new images")
    gh.git(gh.dev, "push", "-q", "origin", "main")
    assert show(f"data/incoming/{path.parent.name}/{path.name}").startswith(
        "version https://git-lfs"
    )
    drift = gh.dispatch("drift.yaml", run="experiments/default/A", retrain=True)
    assert (
        drift["drift"]["result"] == "failure"
        and drift["drift"]["outputs"]["verdict"] == "drift"
    ), drift["drift"]["log"]
    assert drift["retrain"]["result"] == "success", drift["retrain"]["log"]
    asked = (tmp_path / "gh.log").read_text()
    assert (
        "workflow run training.yaml -f experiment_name=default" in asked
        and "-f pretrained_model=default/A" in asked
    ), asked
