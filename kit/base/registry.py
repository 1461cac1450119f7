"""Two questions to a container registry, over the OCI distribution API: which digest does a tag
name now, and which tags does a repository have.

Job files name a published image. A tag can be pushed again (a rerun, a release, a manual run
on a commit that was built already), so only a digest (`@sha256:...`) names one set of bits;
the kit asks the registry for it (`kit generate --job-digest`). It sits in the base layer,
beside git, because it is neither an engine nor a scheduler: like git, it asks an outside party
one fact and never changes anything.

What is asked, as the distribution spec and ghcr.io answer it:
- `GET /v2/<name>/manifests/<tag>` with every manifest type the kit's images come as in Accept
  (OCI index and manifest, Docker manifest list and manifest; an ORAS-pushed SIF is an OCI
  manifest). The digest is the SHA-256 of the bytes received (what the distribution spec
  defines a manifest's digest to be), compared with the `Docker-Content-Digest` header where
  the registry sends one: the digest written is one the kit computed, not one it was told.
  404: the tag is not there.
- `GET /v2/<name>/tags/list?n=1000`, following `Link: <...>; rel="next"` on the same host.
- A 401 with `WWW-Authenticate: Bearer realm=...,service=...` is answered with a token from the
  realm for `repository:<name>:pull`: anonymous (ghcr.io's public packages), or, for ghcr.io
  only, with a token from the environment (`GHCR_TOKEN`, else `GITHUB_TOKEN`) as the password of
  HTTP basic auth, as `docker login ghcr.io` does. That token goes to no other host: not to
  another registry, and not to a realm on another host than the registry's.

Every answer is untrusted input: bodies are read up to a bound, a digest must be `sha256:` and 64
hex digits, tags must have a tag's shape, and a manifest's media type must be one asked for.
Every request is bounded (`REQUEST_TIMEOUT_S` each, `DEADLINE_S` for one question, name look-up
included), redirects are not followed, and plain HTTP is used only for a registry on the
loopback range (127.0.0.0/8, `localhost`), which Docker also treats as insecure by
default: `ghcr.io` is never asked over plain HTTP.

Why not a library (read 2026-12-05): oras-py (oras-project/oras-py e51bc87, 0.2.41) sends its
requests without a timeout, retries a refused connection five times with sleeps of 3 to 83 s
(about two minutes in all), and reads whole bodies; python-dxf (davedoesdev/dxf 9edee02) has
timeouts but reads whole bodies too and brings `www-authenticate` and `tqdm`. What is needed here is
three requests, with the standard library's HTTP client, header-list parser and proxy support.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import os
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from kit.base import names
from kit.base.errors import RegistryError

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # the distribution registry's own limit on a manifest
MAX_JSON_BYTES = 1024 * 1024  # a page of tags, a token answer
MAX_PAGES = 20  # of 1,000 tags each
PAGE_SIZE = 1000
REQUEST_TIMEOUT_S = 5.0
DEADLINE_S = 10.0
TOKEN_VARIABLES = ("GHCR_TOKEN", "GITHUB_TOKEN")
USER_VARIABLE = "GITHUB_ACTOR"  # ghcr.io reads the token; the user name is only a label there
CREDENTIAL_HOSTS = frozenset({"ghcr.io"})
TOKEN_SHAPE = re.compile(r"[\x21-\x7e]{1,16384}")
USER_AGENT = "pixi-deploy-kit"
LINK_NEXT = re.compile(r'<([^<>]*)>\s*;\s*rel="?next"?')

T = TypeVar("T")


@dataclass(frozen=True)
class Repository:
    """`<host>/<name>` of an image as the job files name it (`ghcr.io/owner/repo`)."""

    host: str
    name: str

    @classmethod
    def parse(cls, image: str) -> Repository:
        """Split a checked image name without tag or digest; the registry is its first part."""
        names.image_reference(image, "job_image_name")
        host, _, name = image.partition("/")
        if not name or "@" in image or ":" in name:
            raise RegistryError(f"{image!r} is not <registry>/<name> without a tag or digest")
        return cls(host, name)

    @property
    def plain_http(self) -> bool:
        """Whether the registry is spoken to over plain HTTP: only on the loopback range."""
        return is_loopback(urllib.parse.urlsplit(f"//{self.host}").hostname or "")

    @property
    def base(self) -> str:
        return f"{'http' if self.plain_http else 'https'}://{self.host}"

    def __str__(self) -> str:
        return f"{self.host}/{self.name}"


def is_loopback(host: str) -> bool:
    """127.0.0.0/8 (or ::1) and `localhost`: the hosts asked over plain HTTP."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]  # names in lower case
    body: bytes


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer of its own (3xx), never followed: it could lead to plain HTTP or
    another host with the token."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Client:
    """One repository's questions, within one deadline. Not for reuse across questions."""

    def __init__(
        self, repository: Repository, environ: Mapping[str, str] | None = None, deadline_s: float = DEADLINE_S
    ) -> None:
        self.repository = repository
        self.environ = os.environ if environ is None else environ
        self.deadline = time.monotonic() + deadline_s
        self.deadline_s = deadline_s
        self.token: str | None = None
        self.opener = urllib.request.build_opener(_NoRedirect())

    # -- the two questions ------------------------------------------------------------------------

    def digest(self, reference: str) -> str | None:
        """The digest `reference` (a tag) names now, or None when the registry has no such tag."""
        names.tag(reference, "tag")
        answer = self._get(
            f"/v2/{self.repository.name}/manifests/{reference}", ", ".join(MANIFEST_TYPES), MAX_MANIFEST_BYTES
        )
        if answer.status == 404:
            return None
        self._expect_ok(answer, f"the manifest of {self.repository}:{reference}")
        media_type = answer.headers.get("content-type", "").split(";")[0].strip()
        if media_type not in MANIFEST_TYPES:
            raise RegistryError(
                f"{self.repository.host} sent {self.repository}:{reference} as {media_type[:80]!r}, "
                "which is not an image manifest or index"
            )
        digest = "sha256:" + hashlib.sha256(answer.body).hexdigest()
        said = answer.headers.get("docker-content-digest", "").strip()
        if said and said != digest:
            raise RegistryError(
                f"{self.repository.host} sent a manifest whose SHA-256 is not the digest it names "
                f"in Docker-Content-Digest ({said[:80]!r})"
            )
        return digest

    def tags(self) -> tuple[str, ...]:
        """Every tag of the repository (empty when the registry has no such repository)."""
        found: list[str] = []
        path = f"/v2/{self.repository.name}/tags/list?n={PAGE_SIZE}"
        for _ in range(MAX_PAGES):
            answer = self._get(path, "application/json", MAX_JSON_BYTES)
            if answer.status == 404:
                return ()
            self._expect_ok(answer, f"the tags of {self.repository}")
            page = _json(answer.body, "its list of tags")
            tags = page.get("tags") if isinstance(page, dict) else None
            if tags is not None and not isinstance(tags, list):
                raise RegistryError(f"{self.repository.host} sent a list of tags that is not a list")
            found += [t for t in tags or [] if isinstance(t, str) and names.TAG.match(t)]
            following = LINK_NEXT.search(answer.headers.get("link", ""))
            if not following or not tags:
                break
            path = _same_host_path(following.group(1), self.repository)
        return tuple(dict.fromkeys(found))

    # -- requests -----------------------------------------------------------------------------------

    def _get(self, path: str, accept: str, limit: int) -> Answer:
        url = self.repository.base + path
        answer = self._request(url, {"Accept": accept, **self._authorization()}, limit)
        if answer.status == 401 and self.token is None:
            self.token = self._fetch_token(answer.headers.get("www-authenticate", ""))
            answer = self._request(url, {"Accept": accept, **self._authorization()}, limit)
        return answer

    def _authorization(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _request(self, url: str, headers: Mapping[str, str], limit: int) -> Answer:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise RegistryError(f"{self.repository.host} did not answer within {self.deadline_s:g} s")
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **headers})
        try:
            response = self.opener.open(request, timeout=min(REQUEST_TIMEOUT_S, left))
        except urllib.error.HTTPError as error:  # 4xx/5xx (and 3xx, not followed): headers only
            error.close()
            return Answer(error.code, _lower(error.headers), b"")
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            raise RegistryError(f"{self.repository.host} could not be reached: {reason}") from error
        with response:
            body = self._read(response, limit)
            return Answer(response.status, _lower(response.headers), body)

    def _read(self, response: Any, limit: int) -> bytes:
        """At most `limit` bytes, one receive at a time, until the deadline."""
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                if time.monotonic() > self.deadline:
                    raise RegistryError(f"{self.repository.host} did not answer within {self.deadline_s:g} s")
                chunk = response.read1(65536)
                if not chunk:
                    return b"".join(chunks)
                size += len(chunk)
                if size > limit:
                    raise RegistryError(f"{self.repository.host} sent more than {limit} bytes")
                chunks.append(chunk)
        except (OSError, ValueError) as error:
            raise RegistryError(f"{self.repository.host} stopped answering: {error}") from error

    def _expect_ok(self, answer: Answer, what: str) -> None:
        if answer.status == 200:
            return
        if answer.status in (401, 403):
            raise RegistryError(
                f"{self.repository.host} refused to show {what} (HTTP {answer.status}): a private "
                f"package needs a token with read:packages in {' or '.join(TOKEN_VARIABLES)}"
            )
        raise RegistryError(f"{self.repository.host} answered HTTP {answer.status} for {what}")

    # -- the token ------------------------------------------------------------------------------------

    def _fetch_token(self, challenge: str) -> str:
        """A pull token from the realm the registry's Bearer challenge names."""
        scheme, _, rest = challenge.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise RegistryError(
                f"{self.repository.host} asks for {scheme[:20] or 'no'} authentication, not a bearer token"
            )
        try:
            fields = urllib.request.parse_keqv_list(urllib.request.parse_http_list(rest))
        except ValueError as error:
            raise RegistryError(f"{self.repository.host} sent a challenge the kit cannot read") from error
        realm = urllib.parse.urlsplit(fields.get("realm", ""))
        plain_ok = self.repository.plain_http and is_loopback(realm.hostname or "")
        if realm.scheme != "https" and not (realm.scheme == "http" and plain_ok):
            raise RegistryError(f"{self.repository.host} names a token realm that is not https")
        query = {"scope": f"repository:{self.repository.name}:pull"}
        if fields.get("service"):
            query["service"] = fields["service"]
        url = urllib.parse.urlunsplit(
            (realm.scheme, realm.netloc, realm.path, urllib.parse.urlencode(query), "")
        )
        headers = {"Accept": "application/json"}
        secret = self._credential()
        if secret and realm.netloc == self.repository.host:
            user = self.environ.get(USER_VARIABLE) or "token"
            pair = base64.b64encode(f"{user}:{secret}".encode()).decode()
            headers["Authorization"] = f"Basic {pair}"
        answer = self._request(url, headers, MAX_JSON_BYTES)
        self._expect_ok(answer, "a pull token")
        data = _json(answer.body, "its token")
        token = (data.get("token") or data.get("access_token")) if isinstance(data, dict) else None
        if not isinstance(token, str) or not TOKEN_SHAPE.fullmatch(token):
            raise RegistryError(f"{self.repository.host}'s token realm sent no token")
        return token

    def _credential(self) -> str:
        """The token from the environment, for ghcr.io only."""
        if self.repository.host not in CREDENTIAL_HOSTS:
            return ""
        for variable in TOKEN_VARIABLES:
            value = self.environ.get(variable, "").strip()
            if value and TOKEN_SHAPE.fullmatch(value):
                return value
        return ""


def _lower(headers: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in (headers.items() if headers is not None else ())}


def _json(body: bytes, what: str) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise RegistryError(f"the registry sent {what} as something other than JSON") from error


def _same_host_path(link: str, repository: Repository) -> str:
    """The path of a `Link: <...>; rel="next"` target, which must stay on the repository."""
    parts = urllib.parse.urlsplit(link)
    if parts.netloc and parts.netloc != repository.host:
        raise RegistryError(f"{repository.host} sent a next page on another host")
    if not parts.path.startswith(f"/v2/{repository.name}/tags/list"):
        raise RegistryError(f"{repository.host} sent a next page that is not its list of tags")
    return parts.path + (f"?{parts.query}" if parts.query else "")


def within_deadline(question: Callable[[], T], seconds: float = DEADLINE_S + 2) -> T:
    """`question()` in a thread of its own, given up after `seconds`: a host name look-up is not
    bounded by a socket's timeout, and a job file must not wait on a resolver that hangs."""
    outcome: dict[str, Any] = {}

    def ask() -> None:
        try:
            outcome["value"] = question()
        except BaseException as error:  # handed to the caller's thread below
            outcome["error"] = error

    worker = threading.Thread(target=ask, name="kit-registry", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise RegistryError(f"no answer within {seconds:g} s (the registry's host name did not resolve)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]


def is_digest(value: str) -> bool:
    return bool(DIGEST.fullmatch(value))
