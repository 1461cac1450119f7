"""Every question the kit asks git, in one place, asked so that the repository cannot steer it.

The kit reads three facts from a workspace's repository, each only when a rendered file or a
build needs it: the checked-out commit (job files name the image of one commit), the commit and
its date (the optimized Dockerfile's OCI labels), and the `origin` remote (job files and the
checks name the published image). Locating the repository root needs no git at all
(`kit.model.repo` walks up to `.git`), so `kit generate --only docker` runs none.

The repository being read is not trusted: it may be a clone of anyone's project, and its
`.git/config` can name programs (a pager, a signature verifier, an fsmonitor hook) that git
would run on the kit's behalf. So git runs with a clean environment (no system or global config,
no inherited `GIT_*` variables, no pager, no prompts, no optional locks) and with command-line
settings, which outrank the repository's own, that turn those programs off. Any failure (no git,
not a repository, no commit yet, a timeout) gives an empty answer, never an exception.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

TIMEOUT_S = 10
# Settings given with -c outrank every config file, the repository's included: each names a
# program git could otherwise run while answering, or a lookup the answer must not depend on.
SAFE_CONFIG = (
    "core.fsmonitor=false",
    f"core.hooksPath={os.devnull}",
    "core.pager=cat",
    "gpg.program=false",
    "gpg.ssh.program=false",
    "gpg.x509.program=false",
    "log.showSignature=false",
    "protocol.allow=never",
)
COMMIT = re.compile(r"[0-9a-f]{40}")


def environment() -> dict[str, str]:
    """The only variables git sees: PATH (to find itself), and those that switch off the system
    and global config, the pager, prompts and optional locks. Nothing of the caller's `GIT_*`
    (`GIT_DIR`, `GIT_CONFIG_PARAMETERS`, ...) and no HOME, so no `~/.gitconfig` either."""
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_ATTR_NOSYSTEM": "1",
        "GIT_PAGER": "cat",
        "PAGER": "cat",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_OPTIONAL_LOCKS": "0",
    }


def command(directory: Path, *args: str) -> list[str]:
    """The full command line for `git args` run in `directory`."""
    settings = [part for setting in SAFE_CONFIG for part in ("-c", setting)]
    return ["git", "--no-pager", "--no-optional-locks", *settings, "-C", str(directory), *args]


def run(directory: Path, *args: str) -> str:
    """git's output, stripped, or "" when it could not answer. The one place the kit starts git
    (tests count the calls by replacing this function)."""
    try:
        done = subprocess.run(
            command(directory, *args),
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
            env=environment(),
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def head_commit(directory: Path) -> str:
    """The checked-out commit (40 hex digits), or "" outside git or before the first commit."""
    head = run(directory, "rev-parse", "--verify", "--quiet", "HEAD")
    return head if COMMIT.fullmatch(head) else ""


def commit_labels(directory: Path) -> dict[str, str]:
    """REVISION and CREATED (the commit and its committer date) of the checked-out commit, so
    labels are the same on every rebuild of one commit (a wall-clock time would change the image
    each time); empty outside git."""
    out = run(directory, "log", "-1", "--no-show-signature", "--format=%H %cI", "HEAD").split()
    return {"REVISION": out[0], "CREATED": out[1]} if len(out) == 2 else {}


def remote_url(directory: Path, remote: str = "origin") -> str:
    """The URL of `remote` ("" when there is none)."""
    return run(directory, "remote", "get-url", remote)


def history(directory: Path, limit: int = 500) -> tuple[str, ...]:
    """The checked-out commit and its ancestors, newest first (`git log` order), at most `limit`:
    where job files look for the newest commit whose image was published."""
    out = run(directory, "log", "--no-show-signature", f"--max-count={int(limit)}", "--format=%H", "HEAD")
    return tuple(line for line in out.splitlines() if COMMIT.fullmatch(line))
