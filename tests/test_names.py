"""kit.base.names, called directly: each name the kit pastes into a Dockerfile, a def file, YAML or
a shell is accepted exactly when it needs no escaping anywhere, and refused with the field and a
fix otherwise."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kit.base import names
from kit.base.errors import OptionsError

SHA = "sha256:" + "0123456789abcdef" * 4


def refused(check: Callable[[str], str], value: str) -> OptionsError:
    with pytest.raises(OptionsError) as caught:
        check(value)
    assert caught.value.fix, caught.value
    return caught.value


@pytest.mark.parametrize("value", ["gpu", "cpu", "default", "cuda-12", "0", "a" * 63])
def test_environment_names_pixi_allows(value: str) -> None:
    assert names.environment_name(value) == value


@pytest.mark.parametrize(
    "value", ["", "GPU", "-gpu", "gpu_2", "gpu 2", "gpu;id", "$(id)", "a" * 64, "gpu\n", "gpu\r", "ü"]
)
def test_environment_names_that_are_refused(value: str) -> None:
    error = refused(names.environment_name, value)
    assert error.field == "environment" and repr(value) in str(error) and "'gpu'" in (error.fix or "")
    assert refused(lambda v: names.environment_name(v, "environments"), value).field == "environments"


@pytest.mark.parametrize("value", ["latest", "0.55.0-noble", "_x", "A.b-C_d", "x" * 128])
def test_tags(value: str) -> None:
    assert names.tag(value) == value


@pytest.mark.parametrize("value", ["", ".x", "-x", "a b", "a:b", "a/b", "x" * 129, "v1\n", "v1;id"])
def test_tags_that_are_refused(value: str) -> None:
    assert refused(names.tag, value).field == "tag"


@pytest.mark.parametrize("value", ["12", "9", "12.9", "12.10", "99.99"])
def test_cuda_versions(value: str) -> None:
    assert names.cuda_version(value) == value


@pytest.mark.parametrize("value", ["", "123", "12.", ".9", "12.9.1", "12.999", "v12", "12 ", "12\n", "abc"])
def test_cuda_versions_that_are_refused(value: str) -> None:
    error = refused(names.cuda_version, value)
    assert error.field == "cuda" and "MAJOR or MAJOR.MINOR" in str(error)


@pytest.mark.parametrize(
    "value",
    [
        "ubuntu",
        "ubuntu:24.04",
        "library/ubuntu",
        "ghcr.io/owner/name",
        "ghcr.io/prefix-dev/pixi:0.55.0-noble",
        "localhost/a",
        "localhost:5000/a/b:tag",
        "registry.example.org:443/a-b/c__d/e.f",
        f"ghcr.io/a/b@{SHA}",
        f"ghcr.io/a/b:tag@{SHA}",
    ],
)
def test_image_references(value: str) -> None:
    assert names.image_reference(value) == value


@pytest.mark.parametrize(
    "value,says",
    [
        ("", "image name ''"),
        ("Ubuntu", "image name 'Ubuntu'"),
        ("ghcr.io/Owner/name", "image name 'ghcr.io/Owner/name'"),
        ("a//b", "image name 'a//b'"),
        ("a/b/", "image name 'a/b/'"),
        ("a_", "image name 'a_'"),
        ("a;b", "image name 'a;b'"),
        ("ghcr.io/a/b\n", "image name 'ghcr.io/a/b\\n'"),
        ("ubuntu:24.04 AS evil", "tag '24.04 AS evil'"),
        ("ubuntu:", "tag ''"),
        ("ubuntu:bad\n", "tag 'bad\\n'"),
        ("ghcr.io/a/b@sha256:abc", "image digest 'ghcr.io/a/b@sha256:abc'"),
        (f"ghcr.io/a/b@{SHA}\n", "image digest"),
        ("bad_host.io/a", "registry 'bad_host.io/a'"),
        ("host.io:123456/a", "registry 'host.io:123456/a'"),
    ],
)
def test_image_references_that_are_refused(value: str, says: str) -> None:
    error = refused(names.image_reference, value)
    assert error.field == "image" and error.detail.startswith(says), error
    assert refused(lambda v: names.image_reference(v, "base_image"), value).field == "base_image"


@pytest.mark.parametrize(
    "value,cleaned",
    [
        ("", ""),
        (".", ""),
        ("./", ""),
        (".//", ""),
        ("cuda-exercise", "cuda-exercise"),
        ("lab/ws/", "lab/ws"),
        ("a.b/_c-d", "a.b/_c-d"),
    ],
)
def test_relative_paths_are_cleaned(value: str, cleaned: str) -> None:
    assert names.relative_path(value, "subdir") == cleaned


@pytest.mark.parametrize("value", ["/etc", "//", "/"])
def test_absolute_paths_are_refused(value: str) -> None:
    error = refused(lambda v: names.relative_path(v, "app_dir"), value)
    assert error.field == "app_dir" and "is absolute" in str(error)


@pytest.mark.parametrize(
    "value", ["..", "../x", "x/..", "x/./y", "./x", "a b", "$(id)", "-x", ".hidden", "a//b", "x\n", "a\\b"]
)
def test_relative_paths_that_are_refused(value: str) -> None:
    error = refused(lambda v: names.relative_path(v, "subdir"), value)
    assert error.field == "subdir" and "plain relative folder names" in str(error)


@pytest.mark.parametrize("value", ["x.sif", "/opt/images/x.sif", "../base.tar", "a_b-c.d/e"])
def test_file_paths(value: str) -> None:
    assert names.file_path(value, "bootstrap_source") == value


@pytest.mark.parametrize("value", ["", "a b", "x.sif;id", "$(id)", "x'", "x.sif\n", "x\ty"])
def test_file_paths_that_are_refused(value: str) -> None:
    error = refused(lambda v: names.file_path(v, "bootstrap_source"), value)
    assert error.field == "bootstrap_source" and "a def file cannot hold" in str(error)
