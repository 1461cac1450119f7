"""nbgitpuller links: one URL that makes a JupyterHub clone (or update) the lesson for each learner
and open a notebook in JupyterLab.

An instructor hands out `HUB/hub/user-redirect/git-pull?repo=...&branch=...&urlpath=lab/tree/...`.
When a learner opens it, the hub logs them in, starts their server, and nbgitpuller pulls the
repository into a folder named after its last URL component (nbgitpuller's own default, so the
`urlpath` points into the folder it really creates), merging without overwriting their edits.

Every part is checked before the link is made: a link with a typo fails in front of thirty
learners, so a bad hub URL, repository URL, branch or path stops here with the field and the fix.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlencode, urlsplit

from kit.base.errors import OptionsError

DEFAULT_NOTEBOOK = "notebooks/studio.ipynb"
HUB_SCHEMES = ("https", "http")
# What nbgitpuller can clone without credentials on the hub: web URLs, and local paths for a hub
# that holds a mirror (and for tests).
REPO_SCHEMES = ("https", "http", "file")
# A host (a name, or an IPv6 address in brackets) and an optional port, nothing after either.
NETLOC = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[^\[\]:/@]+)(?::[0-9]{1,5})?")
PATH_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+ -]*")  # fullmatch
# git check-ref-format, narrowed: no control characters, space, ~ ^ : ? * [ \ and no "..", "@{",
# "//", leading "-", trailing "/", "." or ".lock".
BRANCH_BAD = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|^[-/.]|/\.|[/.]$|\.lock$|\.lock/")


def _url(value: str, field: str, schemes: tuple[str, ...], example: str) -> str:
    try:  # urlsplit, .hostname and .port raise ValueError on `http://[::1`, `http://[zz]/`, `:99999`
        parts = urlsplit(value)
        parts.hostname, parts.port  # noqa: B018  (asked for their checks)
    except ValueError as exc:
        raise OptionsError(
            f"{value!r} is not a URL that can be read: {exc}",
            field=field,
            fix=f"give a full URL such as {example} (an IPv6 host in brackets: http://[::1]:8000)",
        ) from None
    if parts.scheme != "file" and not NETLOC.fullmatch(parts.netloc.rpartition("@")[2]):
        raise OptionsError(
            f"{value!r} has a malformed host: {parts.netloc!r}",
            field=field,
            fix=f"give a full URL such as {example} (an IPv6 host in brackets: http://[::1]:8000)",
        )
    if parts.port == 0:
        raise OptionsError(
            f"{value!r} names port 0, which no browser can reach",
            field=field,
            fix=f"give a port from 1 to 65535, or none, such as {example}",
        )
    if parts.scheme not in schemes:
        raise OptionsError(
            f"{value!r} is not a {' or '.join(schemes)} URL",
            field=field,
            fix=f"give a full URL such as {example}",
        )
    if parts.scheme != "file" and not parts.hostname:
        raise OptionsError(
            f"{value!r} has no host name", field=field, fix=f"give a full URL such as {example}"
        )
    if parts.scheme == "file" and (parts.netloc or not parts.path.startswith("/")):
        raise OptionsError(
            f"{value!r} is not an absolute file:/// URL",
            field=field,
            fix="write file:///absolute/path/to/repository",
        )
    if parts.query or parts.fragment or any(c.isspace() for c in value):
        raise OptionsError(
            f"{value!r} carries a query, a fragment or white space",
            field=field,
            fix=f"give the plain URL, such as {example}",
        )
    if parts.username or parts.password:
        raise OptionsError(
            f"{value!r} embeds credentials, which the link would show to every learner",
            field=field,
            fix="give the URL without user:password@",
        )
    return value


def branch_name(value: str) -> str:
    if not value or BRANCH_BAD.search(value):
        raise OptionsError(
            f"branch {value!r} is not a valid git branch name",
            field="--branch",
            fix="use a branch name such as 'main' or 'gh-pages'",
        )
    return value


def notebook_path(value: str) -> str:
    """A relative path inside the repository (no '..', no absolute path)."""
    cleaned = value.strip("/")
    parts = cleaned.split("/")
    if not cleaned or value.startswith("/") or not all(PATH_PART.fullmatch(p) for p in parts):
        raise OptionsError(
            f"path {value!r} is not a plain relative path inside the repository",
            field="--path",
            fix=f"use a path such as {DEFAULT_NOTEBOOK!r}",
        )
    return cleaned


def target_folder(repo: str) -> str:
    """The folder nbgitpuller clones into: the repository URL's last component, as it does."""
    return repo.rstrip("/").split("/")[-1]


def hub_link(hub: str, repo: str, branch: str | None = None, path: str = DEFAULT_NOTEBOOK) -> str:
    """The nbgitpuller link for `repo` (at `branch`, else its default branch) on `hub`, opening
    `path` in JupyterLab."""
    hub = _url(hub, "--hub", HUB_SCHEMES, "https://hub.example.org")
    repo = _url(repo, "--repo", REPO_SCHEMES, "https://github.com/OWNER/REPOSITORY")
    folder = target_folder(repo)
    if not PATH_PART.fullmatch(folder):
        raise OptionsError(
            f"repository URL {repo!r} does not end in a folder name",
            field="--repo",
            fix="end the URL with the repository's name",
        )
    query: dict[str, str] = {"repo": repo}
    if branch is not None:
        query["branch"] = branch_name(branch)
    query["urlpath"] = f"lab/tree/{folder}/{notebook_path(path)}"
    base = hub.rstrip("/")
    return f"{base}/hub/user-redirect/git-pull?{urlencode(query, quote_via=quote, safe='')}"
