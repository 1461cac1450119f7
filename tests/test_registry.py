"""The registry client (kit/base/registry.py) and `kit generate --job-digest` against a scripted
registry on loopback: what a registry sends is untrusted, so each way an answer can be wrong is
tried here, and the job files' three outcomes (pinned, unpublished, unreachable) are checked as
the user types the command. tests/test_digest.py does the same against a real registry.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import kit_cli as kit
from learner_repo import make_clone, plain_git

from kit.base import registry
from kit.base.errors import RegistryError
from kit.base.registry import Client, Repository

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}).encode()
MANIFEST_DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()

Reply = tuple[int, dict[str, str], bytes]


@dataclass
class FakeRegistry:
    """A registry that answers what each test scripts: `routes` maps a path (query included) to
    a reply or a function of the request's headers; anything else is a 404. It records every
    request's path and headers."""

    host: str = ""
    routes: dict[str, Reply | Callable[[dict[str, str]], Reply]] = field(default_factory=dict)
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    slow: float = 0.0  # seconds between bytes of a body

    def add_manifest(self, name: str, tag: str, body: bytes = MANIFEST, **headers: str) -> None:
        reply = {
            "Content-Type": OCI_MANIFEST,
            "Docker-Content-Digest": "sha256:" + hashlib.sha256(body).hexdigest(),
        }
        reply.update({k.replace("_", "-"): v for k, v in headers.items()})
        self.routes[f"/v2/{name}/manifests/{tag}"] = (200, reply, body)

    def add_tags(self, name: str, tags: list[str]) -> None:
        body = json.dumps({"name": name, "tags": tags}).encode()
        self.routes[f"/v2/{name}/tags/list?n=1000"] = (200, {"Content-Type": "application/json"}, body)


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    state = FakeRegistry()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            headers = {k.lower(): v for k, v in self.headers.items()}
            state.seen.append((self.path, headers))
            route = state.routes.get(self.path)
            status, reply, body = (
                (404, {}, b'{"errors":[]}') if route is None else route(headers) if callable(route) else route
            )
            self.send_response(status)
            for key, value in reply.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if state.slow:
                for byte in body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(state.slow)
            else:
                self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.host = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def client(fake: FakeRegistry, name: str = "some-lab/cuda-lesson", **kwargs: object) -> Client:
    return Client(Repository(fake.host, name), environ={}, **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------- the client


def test_the_digest_is_the_sha256_of_the_manifest_received(fake: FakeRegistry) -> None:
    fake.add_manifest("some-lab/cuda-lesson", "gpu-sha-1234567")
    assert client(fake).digest("gpu-sha-1234567") == MANIFEST_DIGEST
    path, headers = fake.seen[0]
    assert path == "/v2/some-lab/cuda-lesson/manifests/gpu-sha-1234567"
    assert headers["accept"].split(", ") == list(registry.MANIFEST_TYPES)


def test_a_tag_the_registry_does_not_have_is_none(fake: FakeRegistry) -> None:
    assert client(fake).digest("gpu-sha-1234567") is None


def test_an_anonymous_token_is_fetched_from_the_bearer_realm(fake: FakeRegistry) -> None:
    def manifest(headers: dict[str, str]) -> Reply:
        if headers.get("authorization") != "Bearer anon-token":
            realm = f'Bearer realm="http://{fake.host}/token",service="{fake.host}",scope="x"'
            return 401, {"WWW-Authenticate": realm}, b""
        return 200, {"Content-Type": OCI_MANIFEST}, MANIFEST

    fake.routes["/v2/some-lab/cuda-lesson/manifests/gpu"] = manifest
    scope = "repository%3Asome-lab%2Fcuda-lesson%3Apull"
    fake.routes[f"/token?scope={scope}&service={fake.host.replace(':', '%3A')}"] = (
        200,
        {"Content-Type": "application/json"},
        b'{"token": "anon-token"}',
    )
    assert client(fake).digest("gpu") == MANIFEST_DIGEST
    token_request = [headers for path, headers in fake.seen if path.startswith("/token")]
    assert len(token_request) == 1 and "authorization" not in token_request[0]


def test_a_token_from_the_environment_goes_only_to_a_credential_host(
    fake: FakeRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GHCR_TOKEN is sent (as basic auth to the realm) only where the registry is one of
    CREDENTIAL_HOSTS (ghcr.io) and the realm is on the registry's own host."""
    realm = f'Bearer realm="http://{fake.host}/token",service="s"'
    fake.routes["/v2/o/r/manifests/t"] = (401, {"WWW-Authenticate": realm}, b"")
    fake.routes["/token?scope=repository%3Ao%2Fr%3Apull&service=s"] = (200, {}, b'{"token": "t"}')
    environ = {"GHCR_TOKEN": "secret-token"}
    with pytest.raises(RegistryError, match="refused"):
        Client(Repository(fake.host, "o/r"), environ=environ).digest("t")
    assert all("authorization" not in h for p, h in fake.seen if p.startswith("/token"))
    fake.seen.clear()
    monkeypatch.setattr(registry, "CREDENTIAL_HOSTS", frozenset({fake.host}))
    with pytest.raises(RegistryError, match="refused"):
        Client(Repository(fake.host, "o/r"), environ=environ).digest("t")
    sent = [h["authorization"] for p, h in fake.seen if p.startswith("/token")]
    assert sent == ["Basic dG9rZW46c2VjcmV0LXRva2Vu"]  # base64 of token:secret-token


def test_a_realm_on_another_host_gets_no_credentials(
    fake: FakeRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "CREDENTIAL_HOSTS", frozenset({fake.host}))
    other = fake.host.replace("127.0.0.1", "localhost")
    fake.routes["/v2/o/r/manifests/t"] = (
        401,
        {"WWW-Authenticate": f'Bearer realm="http://{other}/token"'},
        b"",
    )
    fake.routes["/token?scope=repository%3Ao%2Fr%3Apull"] = (200, {}, b'{"token": "t"}')
    with pytest.raises(RegistryError):
        Client(Repository(fake.host, "o/r"), environ={"GHCR_TOKEN": "secret"}).digest("t")
    assert all("authorization" not in h for p, h in fake.seen if p.startswith("/token"))


def test_a_plain_http_realm_of_a_remote_registry_is_refused() -> None:
    repo = Repository("ghcr.io", "o/r")
    assert not repo.plain_http and repo.base == "https://ghcr.io"
    with pytest.raises(RegistryError, match="not https"):
        Client(repo, environ={})._fetch_token('Bearer realm="http://ghcr.io/token"')


@pytest.mark.parametrize(
    ("host", "plain"),
    [
        ("127.0.0.1:5000", True),
        ("127.9.9.9", True),
        ("localhost:5000", True),
        ("ghcr.io", False),
        ("10.0.0.1:5000", False),
        ("127.0.0.1.example.org", False),
    ],
)
def test_plain_http_only_on_loopback(host: str, plain: bool) -> None:
    assert Repository(host, "o/r").plain_http is plain


@pytest.mark.parametrize(
    ("reply", "said"),
    [
        (
            (200, {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": "sha256:" + "0" * 64}, MANIFEST),
            "not the digest it names",
        ),
        ((200, {"Content-Type": "text/html"}, MANIFEST), "not an image manifest"),
        ((200, {"Content-Type": OCI_MANIFEST}, b"x" * (registry.MAX_MANIFEST_BYTES + 1)), "more than"),
        ((302, {"Location": "http://example.org/evil"}, b""), "HTTP 302"),
        ((500, {}, b""), "HTTP 500"),
        ((403, {}, b""), "GHCR_TOKEN"),
        ((401, {"WWW-Authenticate": 'Basic realm="x"'}, b""), "not a bearer token"),
    ],
)
def test_a_wrong_answer_is_refused(fake: FakeRegistry, reply: Reply, said: str) -> None:
    fake.routes["/v2/some-lab/cuda-lesson/manifests/t"] = reply
    with pytest.raises(RegistryError, match=said):
        client(fake).digest("t")


def test_a_slow_answer_ends_at_the_deadline(fake: FakeRegistry) -> None:
    fake.add_manifest("some-lab/cuda-lesson", "t")
    fake.slow = 0.2
    with pytest.raises(RegistryError, match="did not answer within 1 s"):
        client(fake, deadline_s=1).digest("t")


def test_tags_follow_next_links_on_the_same_repository(fake: FakeRegistry) -> None:
    name = "some-lab/cuda-lesson"
    first = json.dumps({"tags": ["gpu-sha-1111111", "bad tag!"]}).encode()
    link = f'</v2/{name}/tags/list?n=1000&last=gpu-sha-1111111>; rel="next"'
    fake.routes[f"/v2/{name}/tags/list?n=1000"] = (200, {"Link": link}, first)
    fake.routes[f"/v2/{name}/tags/list?n=1000&last=gpu-sha-1111111"] = (200, {}, b'{"tags": ["gpu"]}')
    assert client(fake).tags() == ("gpu-sha-1111111", "gpu")


def test_a_next_link_off_the_repository_is_refused(fake: FakeRegistry) -> None:
    name = "some-lab/cuda-lesson"
    link = '<http://example.org/v2/some-lab/cuda-lesson/tags/list?last=x>; rel="next"'
    fake.routes[f"/v2/{name}/tags/list?n=1000"] = (200, {"Link": link}, b'{"tags": ["a"]}')
    with pytest.raises(RegistryError, match="another host"):
        client(fake).tags()


def test_an_unreachable_registry_is_an_error_not_a_hang() -> None:
    with pytest.raises(RegistryError, match="could not be reached"):
        Client(Repository("127.0.0.1:9", "o/r"), environ={}).digest("t")  # discard port: refused


def test_a_question_that_hangs_is_given_up() -> None:
    with pytest.raises(RegistryError, match="no answer within"):
        registry.within_deadline(lambda: time.sleep(5), seconds=0.2)


# ---------------------------------------------------------------- kit generate --job-digest

JOBS = ("--only", "htcondor", "--only", "slurm")


def generate(clone: Path, *flags: str) -> tuple[dict[str, str], list[str]]:
    """The job files `kit generate --json` writes in the clone's workspace, and its warnings."""
    done = kit("generate", str(clone / "cuda-exercise"), "--json", *JOBS, "--force", *flags)
    assert done.returncode == 0, done.stdout + done.stderr
    body = json.loads(done.stdout)["result"]
    root = Path(body["root"])
    files = {Path(c["path"]).name: (root / c["path"]).read_text() for c in body["changes"]}
    return files, [w for w in body["warnings"] if "pixi.lock" not in w]


def test_job_files_by_digest(tmp_path: Path, fake: FakeRegistry) -> None:
    clone = make_clone(tmp_path)
    short = plain_git(clone, "rev-parse", "HEAD")[:7]
    image = f"{fake.host}/some-lab/cuda-lesson"
    fake.add_manifest("some-lab/cuda-lesson", f"apptainer-gpu-sha-{short}")
    files, warnings = generate(clone, "--job-digest", "--job-image-name", image)
    assert warnings == []
    sub, sbatch = files["htcondor.sub"], files["slurm.sbatch"]
    assert f"\ncontainer_image = oras://{image}@{MANIFEST_DIGEST}\n" in sub
    assert f"\n# kit-image-tag: apptainer-gpu-sha-{short}\n" in sub
    assert f'\n    apptainer pull "$SIF" oras://{image}@{MANIFEST_DIGEST}\n' in sbatch
    assert f"\nSIF=apptainer-gpu-sha-{short}-{MANIFEST_DIGEST[7:19]}.sif\n" in sbatch
    assert "a digest names these" in sub and "a digest names these" in sbatch


def test_an_unpublished_commit_names_the_newest_published_one(tmp_path: Path, fake: FakeRegistry) -> None:
    clone = make_clone(tmp_path)
    published = plain_git(clone, "rev-parse", "HEAD")
    (clone / "README.md").write_text("a commit that changed no image file\n")
    plain_git(clone, "add", "README.md")
    plain_git(clone, "commit", "-q", "-m", "readme")
    head = plain_git(clone, "rev-parse", "HEAD")
    fake.add_tags("some-lab/cuda-lesson", [f"apptainer-gpu-sha-{published[:7]}", "gpu"])
    image = f"{fake.host}/some-lab/cuda-lesson"
    files, warnings = generate(clone, "--job-digest", "--job-image-name", image)
    assert len(warnings) == 1
    assert f"commit {head[:7]}'s image is not published" in warnings[0]
    assert f"--job-commit {published} " in warnings[0]
    assert f"\ncontainer_image = oras://{image}:apptainer-gpu-sha-{head[:7]}\n" in files["htcondor.sub"]
    for text in files.values():
        if text.startswith(("#!", "# Generated")):
            assert f"# The newest published commit in this branch's history: {published} " in text


def test_an_unreachable_registry_writes_the_tag_with_a_warning(tmp_path: Path) -> None:
    clone = make_clone(tmp_path)
    short = plain_git(clone, "rev-parse", "HEAD")[:7]
    files, warnings = generate(clone, "--job-digest", "--job-image-name", "127.0.0.1:9/some-lab/cuda-lesson")
    assert len(warnings) == 1 and warnings[0].startswith(
        f"could not resolve 127.0.0.1:9/some-lab/cuda-lesson:apptainer-gpu-sha-{short} to a digest"
    )
    assert (
        f"\ncontainer_image = oras://127.0.0.1:9/some-lab/cuda-lesson:apptainer-gpu-sha-{short}\n"
        in (files["htcondor.sub"])
    )
    assert "# Not named by digest: the registry did not answer" in files["htcondor.sub"]


def test_without_job_digest_nothing_is_asked(tmp_path: Path, fake: FakeRegistry) -> None:
    clone = make_clone(tmp_path)
    generate(clone, "--job-image-name", f"{fake.host}/some-lab/cuda-lesson")
    assert fake.seen == []


def test_a_moving_tag_is_pinned_to_what_it_names_now(tmp_path: Path, fake: FakeRegistry) -> None:
    """--job-reference tag with --job-digest: the moving tag's digest today, the tag in a comment."""
    clone = make_clone(tmp_path)
    image = f"{fake.host}/some-lab/cuda-lesson"
    fake.add_manifest("some-lab/cuda-lesson", "apptainer-gpu-noble-cuda-12")
    files, warnings = generate(clone, "--job-digest", "--job-reference", "tag", "--job-image-name", image)
    assert warnings == []
    assert f"\ncontainer_image = oras://{image}@{MANIFEST_DIGEST}\n" in files["htcondor.sub"]
    assert "\n# kit-image-tag: apptainer-gpu-noble-cuda-12\n" in files["htcondor.sub"]
    fake.routes.clear()
    files, warnings = generate(clone, "--job-digest", "--job-reference", "tag", "--job-image-name", image)
    assert warnings == [
        f"{image} has no tag apptainer-gpu-noble-cuda-12: no workflow run has published it. The job "
        "files name the tag; pass --job-reference commit, or publish the image first"
    ]
    assert f"\ncontainer_image = oras://{image}:apptainer-gpu-noble-cuda-12\n" in files["htcondor.sub"]


def test_kit_check_takes_an_image_by_digest(tmp_path: Path, fake: FakeRegistry) -> None:
    """The checks read `name@sha256:...` and the tag from its `# kit-image-tag:` line: a file the
    kit wrote by digest has no job-image finding, and a tag line of another environment has."""
    clone = make_clone(tmp_path)
    workspace = clone / "cuda-exercise"
    assert kit("generate", str(workspace)).returncode == 0
    short = plain_git(clone, "rev-parse", "HEAD")[:7]
    fake.add_manifest("some-lab/cuda-lesson", f"apptainer-gpu-sha-{short}")
    files, _ = generate(clone, "--job-digest", "--job-image-name", f"{fake.host}/some-lab/cuda-lesson")
    sub = workspace / "jobs" / "htcondor.sub"
    published = "ghcr.io/some-lab/cuda-lesson"  # what the workflows publish, from the remote
    sub.write_text(files["htcondor.sub"].replace(f"{fake.host}/some-lab/cuda-lesson", published))
    (workspace / "jobs" / "slurm.sbatch").unlink()

    def image_findings() -> list[str]:
        done = kit("check", str(workspace), "--json", timeout=300)
        found = json.loads(done.stdout)["result"]["findings"]
        return [f"{f['severity']}: {f['message']}" for f in found if f["rule"] == "job-image"]

    assert image_findings() == []
    sub.write_text(
        sub.read_text().replace("# kit-image-tag: apptainer-gpu-", "# kit-image-tag: apptainer-cpu-")
    )
    assert image_findings() == [
        f"error: the tag 'apptainer-cpu-sha-{short}' is the image of environment 'cpu', but the file "
        "is for 'gpu'"
    ]
