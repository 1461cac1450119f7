"""Job files by digest: the registry is asked which digest the job image's tag names now.

A tag, the per-commit `<env>-sha-<commit>` one included, can be pushed again: a tag push, a
release or a manual run on a commit that was built already publishes it anew, with a new digest
(the build time is in the image's labels; SIFs are not bit-identical). Only a digest cannot move,
so with `--job-digest` the job files name `...@sha256:...` and keep the tag in a comment.

Three outcomes, none of them an error (the files are still written):
- pinned: the registry has the tag; the files name its digest.
- unpublished: the registry has no such tag (a commit no workflow run published: a pull request's,
  a local one, one that changed no image file, or one whose run has not finished). The files
  name the tag, and the warning names the newest commit in HEAD's history whose image the
  registry has, matched by the workflows' per-commit tags in `git log` order.
- unreachable: the registry did not answer in time, refused, or answered something malformed.
  The files name the tag, with a warning.

The default is off: the lesson's notebooks and CI run offline, and a file rendered without the
network must not depend on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from kit.base import git
from kit.base.errors import RegistryError
from kit.base.registry import Client, Repository, within_deadline
from kit.decide.plan import SHORT_SHA_LENGTH, Plan, immutable_tag
from kit.engines.registry import engine_for_scheme
from kit.output.jobfiles import Pin, published_image

HISTORY_LIMIT = 500  # commits of HEAD's history searched for the newest published one


def pin_job_image(plan: Plan, directory: Path, environ: Mapping[str, str] | None = None) -> Pin | None:
    """What the registry says of the job image's tag; None for a local SIF (nothing to ask)."""
    o = plan.options
    if o.job_image_kind == "sif":
        return None
    image_name, tag = published_image(plan)
    reference = f"{image_name}:{tag}"
    try:
        repository = Repository.parse(image_name)
        return within_deadline(lambda: _ask(plan, directory, repository, tag, environ))
    except RegistryError as error:
        return Pin(
            "unreachable",
            warning=f"could not resolve {reference} to a digest: {error}. The job files name the "
            "tag, which can be pushed again; run `kit generate` with --job-digest again when "
            "the registry answers",
        )


def _ask(
    plan: Plan,
    directory: Path,
    repository: Repository,
    tag: str,
    environ: Mapping[str, str] | None,
) -> Pin:
    client = Client(repository, environ)
    digest = client.digest(tag)
    if digest is not None:
        return Pin("pinned", digest=digest)
    o = plan.options
    if o.job_reference != "commit":
        return Pin(
            "unpublished",
            warning=f"{repository} has no tag {tag}: no workflow run has published it. The job "
            "files name the tag; pass --job-reference commit, or publish the image first",
        )
    engine = engine_for_scheme(o.job_image_kind)
    published = set(client.tags())
    newest = next(
        (
            commit
            for commit in git.history(directory, HISTORY_LIMIT)
            if immutable_tag(plan.primary.name, commit, engine) in published
        ),
        "",
    )
    short = o.job_commit[:SHORT_SHA_LENGTH]
    if newest:
        instead = (
            f"the newest published commit in HEAD's history is {newest[:12]}: pass "
            f"--job-commit {newest} to run its image, or wait for the workflow run of {short}"
        )
    else:
        instead = (
            f"no commit among the last {HISTORY_LIMIT} of HEAD's history has a published image "
            f"there: push, let the workflows run, and generate again"
        )
    return Pin(
        "unpublished",
        newest_commit=newest,
        warning=f"commit {short}'s image is not published: {repository} has no tag {tag} "
        f"(a pull request's or local commit, one that changed no image file, or a run not "
        f"finished yet); {instead}",
    )
