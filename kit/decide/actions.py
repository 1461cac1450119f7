"""The one table of third-party code the rendered workflows run, pinned so that it cannot change.

A tag such as `@v7` can be moved by whoever controls the action's repository; a full commit SHA
cannot. zizmor's `unpinned-uses` audit flags anything else. The version comment after the SHA is
what Dependabot and Renovate read to propose updates, and what a reader checks against the
action's release page. Change a pin here and every rendered workflow follows.

How each row was checked (`verified` is the date, `how` the method): the action's own repository
was fetched and `git rev-parse refs/tags/<tag>^{commit}` gave the SHA below; the tag is the
newest release tag in that copy of the action's newest major, and its `action.yml` at that
commit declares `runs.using: node24` (the runtime hosted runners ship by default; node20 actions
print a deprecation warning and will stop). tests/test_pins.py fails when a rendered workflow's
`uses:` line (SHA and its version comment) and this table disagree.

On 2026-12-05 every row was checked again, twice (the second time at 18:23 UTC, with fresh
fetches of all five repositories and of apptainer/apptainer): the fetched copies' newest release
tags were still the ones below (setup-buildx-action v4.3.0, login-action v4.1.0,
build-push-action v7.3.0, metadata-action v6.2.0, checkout v7.0.1; apptainer v1.5.3), each SHA
equal to `git rev-parse refs/tags/<tag>^{commit}` there, and each action.yml at that commit on
node24. The releases issue 19 names as newer (setup-buildx-action 4.4.1, login-action 4.6.0,
build-push-action 7.4.0, the last fixing a workflow-command injection in metadata logs) are not
in those copies: no tag, no branch, no commit for them (the newest commits there date from July
and August 2026). So they are not pinned: a SHA goes in only once it is seen under its tag. Each
row's `newer` records the release it is waiting for; the generated `.github/dependabot.yml`
proposes it to every learner's repository once it is out, SHA and comment together.
The same day, for the multi-platform workflows: docker/setup-qemu-action v4.2.0, actions/
upload-artifact v7.0.0 and actions/download-artifact v8.0.1, each the newest vX.Y.Z tag of its
fetched copy, the SHA its tag's commit, and its action.yml declaring `using: node24`.

Apptainer is not an action but a package the Apptainer workflow downloads; it is pinned the same
way, by version and by the SHA-256 of the release asset, which the workflow checks before it
installs anything.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PinnedAction:
    repo: str
    sha: str
    version: str
    verified: str  # ISO date the SHA was checked against the tag in `repo`
    how: str = "fetched the repository; `git rev-parse refs/tags/<version>^{commit}` == sha; newest tag there"
    # A newer release reported elsewhere but not seen in the fetched repository on `verified`
    # (so not pinned yet), "" when the pin is the newest release known.
    newer: str = ""

    @property
    def uses(self) -> str:
        """The value of a step's `uses:` line, comment included."""
        return f"{self.repo}@{self.sha} # {self.version}"


ACTIONS: dict[str, PinnedAction] = {
    a.repo.split("/", 1)[1]: a
    for a in (
        PinnedAction("actions/checkout", "3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1", "2026-12-05"),
        PinnedAction(
            "docker/metadata-action", "dc802804100637a589fabce1cb79ff13a1411302", "v6.2.0", "2026-12-05"
        ),
        PinnedAction(
            "docker/setup-buildx-action",
            "37fe631027851001ddb9b187196cc803df7f5f0e",
            "v4.3.0",
            "2026-12-05",
            newer="v4.4.1",
        ),
        PinnedAction(
            "docker/login-action",
            "4907a6ddec9925e35a0a9e82d7399ccc52663121",
            "v4.1.0",
            "2026-12-05",
            newer="v4.6.0",
        ),
        PinnedAction(
            "docker/build-push-action",
            "53b7df96c91f9c12dcc8a07bcb9ccacbed38856a",
            "v7.3.0",
            "2026-12-05",
            newer="v7.4.0",
        ),
        # Only in the workflows of a workspace built for several platforms (kit.decide.plan
        # `multi_platform`): QEMU where linux-aarch64 builds on an amd64 runner, and the digests
        # each platform's job pushed, handed to the job that merges them into one manifest list.
        PinnedAction(
            "docker/setup-qemu-action", "96fe6ef7f33517b61c61be40b68a1882f3264fb8", "v4.2.0", "2026-12-05"
        ),
        PinnedAction(
            "actions/upload-artifact", "bbbca2ddaa5d8feaa63e36b76fdaad77386f024f", "v7.0.0", "2026-12-05"
        ),
        PinnedAction(
            "actions/download-artifact", "3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c", "v8.0.1", "2026-12-05"
        ),
    )
}


@dataclass(frozen=True)
class PinnedDownload:
    """A release file a workflow downloads, with the digest it must have."""

    name: str
    version: str
    url: str
    sha256: str
    verified: str  # ISO date the digest was checked
    source: str  # where the digest comes from
    # ISO date the release was last seen as the newest release tag of a fresh fetch of its
    # repository, its tag's commit recorded below ("" when never checked that way).
    newest_checked: str = ""


# The release's Debian package is amd64 only: at tag v1.5.3 the project's release workflow
# (.github/workflows/release.yml) builds its .deb and .rpm files with GO_ARCH linux-amd64 alone.
# For arm64 the project publishes its Ubuntu PPA (ppa:apptainer/ppa; .github/workflows/
# ubuntu-ppa-release.yml uploads a source package for noble whose debian/rules picks
# `GO_ARCH := linux-$(dpkg --print-architecture)` and which carries Go for both amd64 and arm64,
# so Launchpad builds it for arm64 too) and a multi-arch container image. The Apptainer workflow
# installs the PPA's package on Arm runners: apt checks it against the PPA's signing key, and the
# workflow warns when its version is not APPTAINER.version (the PPA keeps only its newest).
APPTAINER_PPA = "ppa:apptainer/ppa"
# The release's Debian package (built on Debian 11, so it carries AppArmor's placeholder profile,
# not the one Ubuntu 24.04 needs for unprivileged user namespaces: the workflow adds that).
# Tag v1.5.3 is commit 6a76317a87c4eae10f52c7805965756a919291d7 in apptainer/apptainer. The
# release publishes no checksum file; the digest is the release asset's `digest` that GitHub's
# release API reports, as recorded by several independent installers, not recomputed here (this
# machine reaches no release download). The workflow's `sha256sum --check` fails the run if the
# downloaded file differs. On 2026-12-05 a fresh fetch of apptainer/apptainer still had v1.5.3
# as its newest release tag (v1.5.2, v1.5.1 below it), at the same commit; the digest was not
# recomputed then (still no release download here).
APPTAINER = PinnedDownload(
    name="apptainer",
    version="1.5.3",
    url="https://github.com/apptainer/apptainer/releases/download/v1.5.3/apptainer_1.5.3_amd64.deb",
    sha256="82b0bdddf459087d202383360b8318d526ad6826c748a2f669913cc6aef9ee40",
    verified="2026-11-29",
    source="GitHub release asset digest of apptainer_1.5.3_amd64.deb (release v1.5.3)",
    newest_checked="2026-12-05",
)
