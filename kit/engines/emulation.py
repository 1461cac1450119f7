"""Building and running for another architecture on this machine: what to pass, and what to say.

An amd64 machine builds and runs linux/arm64 images when the kernel hands arm64 programs to QEMU
(binfmt_misc with `qemu-aarch64` registered with the F flag; Debian's `qemu-user-static`, or
`docker run --privileged tonistiigi/binfmt --install arm64`). Every instruction is then
translated: measured on the lab's machine, pure Python ran 8-9x slower, Python's start-up 25x, a
numpy import and a small matrix product 20x. A build that takes minutes natively takes an hour
or more, so the kit says so before it starts, in words a person waiting can act on (use a native
machine, or let the workflow build on an Arm runner).
"""

from __future__ import annotations

import platform

from kit.model.platforms import LinuxPlatform, host_platform

SLOWDOWN = "about 10-25x slower than on a native machine"


def host_machine() -> str:
    """This machine's architecture as the kernel names it (`x86_64`, `aarch64`)."""
    return platform.machine()


def emulated(target: LinuxPlatform, machine: str | None = None) -> bool:
    """Whether `target` runs through emulation on `machine` (default: this one)."""
    host = host_platform(machine or host_machine())
    return host is None or host.subdir != target.subdir


def build_notice(target: LinuxPlatform, machine: str | None = None) -> str:
    """The line a build for a foreign `target` prints first."""
    return (
        f"building for {target.oci} on a {machine or host_machine()} machine through emulation "
        f"(QEMU): {SLOWDOWN}; a native {target.machine} machine, or the workflow's "
        f"{target.arch} runner, builds it in its normal time"
    )


def run_notice(image_machine: str, machine: str | None = None) -> str:
    """The note a probe run of an image for another architecture carries."""
    return f"ran {image_machine} code on a {machine or host_machine()} machine through emulation (QEMU): {SLOWDOWN}"
