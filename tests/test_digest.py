"""`kit generate --job-digest` against a real registry: Debian's docker-registry (the CNCF
distribution registry) on loopback, filled as the workflows would fill ghcr.io: the Docker image
by `docker push`, the SIF by `apptainer push oras://`. The job files must name the digest that
`docker inspect` reports for the pushed image, and the SIF that `apptainer pull` fetches with the
job file's own reference must be the one pushed. An unpublished commit names the newest
published one; a registry that does not answer gives a warning.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import kit_cli as kit
from conftest import need, run_command
from learner_repo import make_clone, plain_git
from servers import free_port, stop_group, wait_until_answers

from tests.lab.settings import LabSettings

pytestmark = pytest.mark.digest

IMAGE_PATH = "some-lab/cuda-lesson"
JOBS = ("--only", "htcondor", "--only", "slurm")


@pytest.fixture(scope="session")
def registry_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A docker-registry on a free loopback port for this session, in a temporary folder, stopped
    at the end. Docker and Apptainer both speak plain HTTP to 127.0.0.0/8."""
    binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    need(Path(binary).exists(), "docker-registry is missing (tests/lab/hub.sh installs Debian's)")
    folder = tmp_path_factory.mktemp("registry")
    port = free_port()
    config = folder / "registry.yml"
    config.write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {folder / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log = folder / "registry.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, "serve", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        wait_until_answers(process, f"http://127.0.0.1:{port}/v2/", 30, "docker-registry", log.read_text)
        yield f"127.0.0.1:{port}"
    finally:
        stop_group(process)


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    return make_clone(tmp_path)


def must(argv: list[str], timeout: float = 300) -> str:
    done = run_command(argv, timeout=timeout)
    assert done.returncode == 0, f"{argv}: {done.stdout}{done.stderr}"
    return done.stdout


def generate(clone: Path, *flags: str) -> tuple[dict[str, str], list[str]]:
    """The job files `kit generate --json --job-digest` writes, and its warnings (without the
    example's missing-lock one)."""
    done = kit("generate", str(clone / "cuda-exercise"), "--json", *JOBS, "--force", "--job-digest", *flags)
    assert done.returncode == 0, done.stdout + done.stderr
    body = json.loads(done.stdout)["result"]
    root = Path(body["root"])
    files = {Path(c["path"]).name: (root / c["path"]).read_text() for c in body["changes"]}
    return files, [w for w in body["warnings"] if "pixi.lock" not in w]


def image_line(text: str) -> str:
    found = re.search(r"(?m)^container_image = (\S+)$", text)
    assert found, text
    return found.group(1)


@pytest.fixture
def pushed_image(registry_host: str, clone: Path, lab: LabSettings, docker_client: object) -> Iterator[str]:
    """The lab's runtime image pushed as the clone's HEAD's `gpu-sha-<short>`; its repo digest."""
    short = plain_git(clone, "rev-parse", "HEAD")[:7]
    name = f"{registry_host}/{IMAGE_PATH}"
    reference = f"{name}:gpu-sha-{short}"
    must(["docker", "tag", lab.runtime_image, reference])
    try:
        must(["docker", "push", "-q", reference])
        digests = json.loads(must(["docker", "inspect", "--format", "{{json .RepoDigests}}", reference]))
        ours = [d for d in digests if d.startswith(f"{name}@")]
        assert len(ours) == 1, digests
        yield ours[0]
    finally:
        run_command(["docker", "rmi", reference], timeout=120)


def test_the_job_files_name_the_digest_docker_reports(
    clone: Path, pushed_image: str, registry_host: str
) -> None:
    files, warnings = generate(
        clone, "--job-image-kind", "docker", "--job-image-name", f"{registry_host}/{IMAGE_PATH}"
    )
    assert warnings == []
    assert image_line(files["htcondor.sub"]) == f"docker://{pushed_image}"
    assert f'apptainer pull "$SIF" docker://{pushed_image}\n' in files["slurm.sbatch"]


def test_the_sif_pulled_by_the_job_files_reference_is_the_one_pushed(
    clone: Path, registry_host: str, apptainer_path: str, tmp_path: Path
) -> None:
    short = plain_git(clone, "rev-parse", "HEAD")[:7]
    sandbox = tmp_path / "sandbox"
    (sandbox / "etc").mkdir(parents=True)
    (sandbox / "etc" / "hello").write_text(f"the SIF of {short}\n")
    sif = tmp_path / "pushed.sif"
    must([apptainer_path, "build", str(sif), str(sandbox)])
    name = f"{registry_host}/{IMAGE_PATH}"
    must([apptainer_path, "push", "--no-https", str(sif), f"oras://{name}:apptainer-gpu-sha-{short}"])
    files, warnings = generate(clone, "--job-image-name", name)
    assert warnings == []
    reference = image_line(files["htcondor.sub"])
    assert re.fullmatch(rf"oras://{re.escape(name)}@sha256:[0-9a-f]{{64}}", reference), reference
    assert f"# kit-image-tag: apptainer-gpu-sha-{short}\n" in files["htcondor.sub"]
    assert f'apptainer pull "$SIF" {reference}\n' in files["slurm.sbatch"]
    pulled = tmp_path / "pulled.sif"
    must([apptainer_path, "pull", "--no-https", str(pulled), reference])
    assert pulled.read_bytes() == sif.read_bytes()


def test_an_unpublished_commit_names_the_newest_published_one(
    clone: Path, pushed_image: str, registry_host: str
) -> None:
    published = plain_git(clone, "rev-parse", "HEAD")
    (clone / "README.md").write_text("a commit no workflow run has published\n")
    plain_git(clone, "add", "README.md")
    plain_git(clone, "commit", "-q", "-m", "readme")
    head = plain_git(clone, "rev-parse", "HEAD")
    name = f"{registry_host}/{IMAGE_PATH}"
    files, warnings = generate(clone, "--job-image-kind", "docker", "--job-image-name", name)
    assert len(warnings) == 1, warnings
    assert f"commit {head[:7]}'s image is not published: {name} has no tag gpu-sha-{head[:7]}" in warnings[0]
    assert f"pass --job-commit {published} to run its image" in warnings[0]
    assert image_line(files["htcondor.sub"]) == f"docker://{name}:gpu-sha-{head[:7]}"
    # and that commit, named, gets the digest docker reports
    files, warnings = generate(
        clone, "--job-image-kind", "docker", "--job-image-name", name, "--job-commit", published
    )
    assert warnings == [] and image_line(files["htcondor.sub"]) == f"docker://{pushed_image}"


def test_a_registry_that_does_not_answer_gives_the_tag_and_a_warning(clone: Path) -> None:
    short = plain_git(clone, "rev-parse", "HEAD")[:7]
    silent = f"127.0.0.1:{free_port()}"  # nothing listens there
    files, warnings = generate(clone, "--job-image-name", f"{silent}/{IMAGE_PATH}")
    assert len(warnings) == 1 and warnings[0].startswith(
        f"could not resolve {silent}/{IMAGE_PATH}:apptainer-gpu-sha-{short} to a digest: {silent} could "
        "not be reached"
    )
    assert image_line(files["htcondor.sub"]) == f"oras://{silent}/{IMAGE_PATH}:apptainer-gpu-sha-{short}"
