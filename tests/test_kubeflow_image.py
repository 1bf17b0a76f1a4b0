"""The images build, judged by the steps a build would run (no Docker here): pinned bases, a
compiler before the locked stack is installed (pyfarmhash builds from source), only the lock's
packages installed, the project installed non-editable from paths that exist and are in the build
context, and a non-root user at run time."""

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILES = [ROOT / "kubeflow" / "Dockerfile", ROOT / "serving" / "Dockerfile.app"]
LOCK = ROOT / "requirements.lock"


def instructions(dockerfile: Path) -> list:
    """(INSTRUCTION, rest) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    lines = (line.strip() for line in text.splitlines())
    return [
        tuple((line.split(None, 1) + [""])[:2])
        for line in lines
        if line and not line.startswith("#")
    ]


def stages(dockerfile: Path) -> list:
    """One list of (INSTRUCTION, rest) per FROM, ARG defaults substituted in FROM."""
    args: dict[str, str] = {}
    result: list[list] = []
    for op, rest in instructions(dockerfile):
        if op == "ARG" and "=" in rest and not result:
            name, value = rest.split("=", 1)
            args[name] = value
        elif op == "FROM":
            result.append([(op, re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], rest))])
        else:
            result[-1].append((op, rest))
    return result


def locked() -> set:
    return {
        line.strip().lower()
        for line in LOCK.read_text().splitlines()
        if re.match(r"^[\w.-]+==", line)
    }


def ignored() -> set:
    return {
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip()
    }


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_bases_are_pinned(dockerfile):
    aliases = set()
    for stage in stages(dockerfile):
        image, *alias = stage[0][1].split(" AS ")
        aliases.update(a.strip() for a in alias)
        if image in aliases:
            continue
        assert "@sha256:" in image or re.search(r":\d+\.\d+\.\d+", image), f"unpinned base {image}"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_copied_paths_exist_in_the_build_context(dockerfile):
    copies = [rest for stage in stages(dockerfile) for op, rest in stage if op == "COPY"]
    assert copies
    for rest in copies:
        if rest.startswith("--from="):
            continue
        for source in shlex.split(rest)[:-1]:
            assert (ROOT / source).exists(), f"{dockerfile.name} copies missing {source}"
            assert source.split("/")[0] not in ignored(), f"{source} is excluded by .dockerignore"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_only_locked_packages_are_installed_after_a_compiler(dockerfile):
    lock = locked()
    synced = False
    for stage in stages(dockerfile):
        compiler = False
        for op, rest in stage:
            if op != "RUN":
                continue
            compiler |= "build-essential" in rest or "g++" in rest
            words = shlex.split(rest)
            if "pip" not in words:
                continue
            assert "-e" not in words and "--editable" not in words, (
                "the project must not be editable"
            )
            for word in words[words.index("pip") + 2 :]:
                if "==" in word:
                    assert word.lower() in lock, f"{word} is not in requirements.lock"
                elif word.endswith(".lock"):
                    assert word.endswith("requirements.lock") and "sync" in words
                    assert compiler, "pyfarmhash needs a C++ compiler before the lock is installed"
                    synced = True
                elif not word.startswith("-") and "/opt/venv" not in word:
                    assert word == "/src", f"installs {word}, which is not the project"
    assert synced, "the lock is never installed"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_the_image_runs_as_a_non_root_user(dockerfile):
    users = [rest for op, rest in stages(dockerfile)[-1] if op == "USER"]
    assert users and users[-1] not in ("root", "0")


def test_build_context_leaves_out_the_venv_artifacts_and_git():
    assert {".venv", ".git", "artifacts", ".pytest_cache"} <= ignored()


def test_the_pipeline_image_holds_the_schemas_where_the_runner_points():
    from kubeflow.runner import IMAGE_SCHEMA_DIR

    final = stages(DOCKERFILES[0])[-1]
    assert ("COPY", f"schemas {IMAGE_SCHEMA_DIR}") in final
