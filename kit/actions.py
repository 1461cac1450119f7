"""The one table of third-party GitHub Actions the rendered workflows use, pinned to commits.

A tag such as `@v4` can be moved by whoever controls the action's repository; a full commit SHA
cannot. zizmor's `unpinned-uses` audit flags anything else. The version comment after the SHA is
what Dependabot and Renovate read to propose updates, and what a reader checks against the
action's release page. Change a pin here and every rendered workflow follows.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PinnedAction:
    repo: str
    sha: str
    version: str

    @property
    def uses(self) -> str:
        """The value of a step's `uses:` line, comment included."""
        return f"{self.repo}@{self.sha} # {self.version}"


ACTIONS: dict[str, PinnedAction] = {
    a.repo.split("/", 1)[1]: a
    for a in (
        PinnedAction("actions/checkout", "11bd71901bbe5b1630ceea73d27597364c9af683", "v4.2.2"),
        PinnedAction("docker/metadata-action", "902fa8ec7d6ecbf8d84d538b9b233a880e428804", "v5.7.0"),
        PinnedAction("docker/setup-buildx-action", "e468171a9de216ec08956ac3ada2f0791b6bd435", "v3.11.1"),
        PinnedAction("docker/login-action", "74a5d142397b4f367a81961eba4e8cd7edddf772", "v3.4.0"),
        PinnedAction("docker/build-push-action", "263435318d21b8e681c14492fe198d362a7d2c83", "v6.18.0"),
    )
}
