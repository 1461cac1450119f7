#!/usr/bin/env bash
# Build the lab's two local base images (no registry is reachable on the lab machines):
#
#   kit-lab/runtime:bookworm  a bare Debian bookworm minbase (bash, the shared libraries that a
#                             Debian-built python3.11 in a conda prefix needs; no pixi)
#   kit-lab/pixi:bookworm     the same plus Debian's python3, the lab conda channel at
#                             /opt/kit-lab/channel and /usr/local/bin/pixi: the py-rattler based
#                             STAND-IN for the real pixi binary (tests/lab/pixi_standin.py),
#                             emulating the pixi the kit pins (kit/decide/options.py PIXI_VERSION)
#   kit-lab/pixi:bookworm-0.55.0  the same stand-in emulating pixi 0.55.0 (reads lock format 6
#                             only), for the tests that try each lock format against each pin
#
# KIT_LAB_PIXI_REPO (default kit-lab/pixi) names the repository of both pixi tags, so a changed
# stand-in can be tried under tags of one's own; KIT_LAB_OLD_PIXI (default 0.55.0) the old pixi;
# KIT_LAB_RUNTIME_REPO (default kit-lab/runtime) and KIT_LAB_ROOTFS_REPO (default
# kit-lab/pixi-rootfs) the other two, so a provisioning change can be measured cold under names
# of one's own (with KIT_LAB_CACHE) without touching the images other runs use.
#
# KIT_LAB_ARCH (a Debian architecture; default: this machine's) builds the images for another
# architecture, under emulation (tests/lab/aarch64.sh calls it with arm64 once qemu is
# registered): tags gain the suffix -ARCH (kit-lab/runtime:bookworm-arm64,
# kit-lab/pixi:bookworm-arm64; no old-pixi image), the root file systems come from `debootstrap
# --arch`, and they become images through `FROM scratch` + `ADD` under `docker build --platform`
# (`docker import` would label them with the host's architecture).
#
# Root file systems come from debootstrap and are cached as tarballs under $KIT_LAB_CACHE/rootfs;
# images are rebuilt only when missing, or (pixi image) when the inputs' hash in its label changed.
# Needs: root, debootstrap, a running Docker daemon, the channel already built (channel.py).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${KIT_LAB_CACHE:-/var/cache/kit-lab}"
docker_bin="${KIT_LAB_DOCKER:-/usr/bin/docker}"
py="${KIT_LAB_PYTHON:-$repo/.venv/bin/python}"
suite=bookworm
host_arch="$(dpkg --print-architecture)"
arch="${KIT_LAB_ARCH:-$host_arch}"
case "$arch" in
  amd64) machine=x86_64 subdir=linux-64 wheel_platform=manylinux2014_x86_64 ;;
  arm64) machine=aarch64 subdir=linux-aarch64 wheel_platform=manylinux_2_28_aarch64 ;;  # py-rattler's only aarch64 wheel
  *) echo "[base_images] KIT_LAB_ARCH=$arch: expected amd64 or arm64" >&2; exit 2 ;;
esac
sfx=""; [ "$arch" = "$host_arch" ] || sfx="-$arch"   # foreign images: tags and caches apart
runtime_tag="${KIT_LAB_RUNTIME_REPO:-kit-lab/runtime}:bookworm$sfx"
rootfs_repo="${KIT_LAB_ROOTFS_REPO:-kit-lab/pixi-rootfs}"
pixi_repo="${KIT_LAB_PIXI_REPO:-kit-lab/pixi}"
pixi_tag="$pixi_repo:$suite$sfx"
old_pixi="${KIT_LAB_OLD_PIXI:-0.55.0}"
pinned_pixi="$(cd "$repo" && "$py" -c 'from kit.decide.options import PIXI_VERSION; print(PIXI_VERSION)')"
# Shared libraries used by Debian's python3.11 and its lib-dynload modules (see README.md).
pylibs="libexpat1,zlib1g,libssl3,libffi8,libsqlite3-0,libbz2-1.0,liblzma5,libncursesw6,libreadline8,libuuid1,libdb5.3,libnsl2,libtirpc3,libcrypt1,ca-certificates"

log() { printf '[base_images] %s\n' "$*" >&2; }

# The Debian mirror serving $suite, read from this machine's own apt sources (deb822 or one-line).
mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v suite="$suite" '
      BEGIN { RS=""; FS="\n" }
      {
        uris=""; ok=0
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/)   { sub(/^URIs:[ \t]*/, "", $i); split($i, u, /[ \t]+/); uris=u[1] }
          if ($i ~ /^Suites:/) { n = split($i, s, /[ \t]+/); for (j = 2; j <= n; j++) if (s[j] == suite) ok=1 }
          if ($i ~ /^Types:/ && $i !~ /[ \t]deb([ \t]|$)/) ok=-100
        }
        if (ok > 0 && uris != "") { print uris; exit }
      }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk -v suite="$suite" '$1 == "deb" { u=$2; s=$3; if ($2 ~ /^\[/) { u=$3; s=$4 } if (s == suite) { print u; exit } }' "$f"
  done
}

# rootfs_tar NAME EXTRA_INCLUDES -> path of a cached tarball of a debootstrapped rootfs
rootfs_tar() {
  local name="$1$sfx" include="$2" out="$cache/rootfs/$1$sfx.tar"
  if [ -s "$out" ]; then
    log "rootfs $name: cached ($out)"
    echo "$out"; return
  fi
  local m; m="$(mirror | head -n1)"
  [ -n "$m" ] || { log "no Debian mirror for $suite found in /etc/apt/sources*"; exit 1; }
  mkdir -p "$cache/rootfs" "$cache/debs$sfx"
  local dir; dir="$(mktemp -d "$cache/rootfs/.$name.XXXXXX")"
  log "rootfs $name: debootstrap --variant=minbase $suite (mirror from apt sources; include $include)"
  local t0=$SECONDS
  # A foreign root gets the first stage only (download and unpack here, no emulation) and
  # foreign_root.sh in place of the second stage, whose maintainer scripts under qemu took 465 s
  # and 834 s for the two arm64 roots on 2 cores (issue 17).
  local foreign=(); [ -z "$sfx" ] || foreign=(--foreign)
  timeout 900 debootstrap "${foreign[@]}" --arch="$arch" --variant=minbase --cache-dir="$cache/debs$sfx" --include="$include" \
    "$suite" "$dir" "$m" >"$cache/rootfs/$name.debootstrap.log" 2>&1 || {
      log "debootstrap failed, see $cache/rootfs/$name.debootstrap.log"; tail -n 20 "$cache/rootfs/$name.debootstrap.log" >&2
      rm -rf "$dir"; exit 1; }
  if [ -n "$sfx" ]; then
    timeout 300 bash "$here/foreign_root.sh" "$dir" >>"$cache/rootfs/$name.debootstrap.log" 2>&1 || {
      log "foreign_root.sh failed, see $cache/rootfs/$name.debootstrap.log"; tail -n 20 "$cache/rootfs/$name.debootstrap.log" >&2
      rm -rf "$dir"; exit 1; }
  fi
  # trim what a container never needs
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/usr/share/doc/* \
         "$dir"/usr/share/man/* "$dir"/usr/share/locale/*
  printf 'nameserver 127.0.0.1\n' > "$dir/etc/resolv.conf"
  tar --numeric-owner --sort=name -C "$dir" -cf "$out.tmp" .
  mv "$out.tmp" "$out"
  rm -rf "$dir"
  log "rootfs $name: done in $((SECONDS - t0)) s"
  echo "$out"
}

have_image() { "$docker_bin" image inspect "$1" >/dev/null 2>&1; }
label_of() { "$docker_bin" image inspect -f "{{index .Config.Labels \"$2\"}}" "$1" 2>/dev/null || true; }

import_image() { # import_image TAR TAG
  [ -z "$sfx" ] || { build_foreign_image "$1" "$2"; return; }
  log "docker import $1 -> $2"
  "$docker_bin" import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' \
    -c 'CMD ["/bin/bash"]' \
    - "$2" < "$1" >/dev/null
}

# build_foreign_image TAR TAG: the root file system as a $arch image. `docker import --platform`
# would not do: the 20.10 daemon labels an import with the host's architecture.
build_foreign_image() {
  local ctx="$cache/images/rootfs-context$sfx"
  rm -rf "$ctx"; mkdir -p "$ctx"
  ln "$1" "$ctx/root.tar" 2>/dev/null || cp "$1" "$ctx/root.tar"
  cat > "$ctx/Dockerfile" <<'EOF'
FROM scratch
ADD root.tar /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ENV LANG=C.UTF-8
CMD ["/bin/bash"]
EOF
  log "docker build --platform linux/$arch FROM scratch + ADD $1 -> $2"
  DOCKER_BUILDKIT=1 timeout 600 "$docker_bin" build -q --platform "linux/$arch" --network none -t "$2" "$ctx" >/dev/null
  rm -rf "$ctx"
}

# ---------------------------------------------------------------- runtime image
if have_image "$runtime_tag"; then
  log "$runtime_tag: present"
else
  tar_rt="$(rootfs_tar runtime-$suite "bash,$pylibs")"
  import_image "$tar_rt" "$runtime_tag"
fi

# ---------------------------------------------------------------- pixi image
channel="$cache/channel"
[ -s "$channel/noarch/repodata.json" ] && [ -s "$channel/$subdir/repodata.json" ] || {
  log "channel ($subdir) missing under $channel: run tests/lab/channel.py first"; exit 1; }

# py-rattler wheel for the stand-in's private venv (same version as the project's .venv)
rattler_version="$("$py" -c 'import importlib.metadata as m; print(m.version("py-rattler"))')"
wheels="$cache/wheels/standin"
mkdir -p "$wheels"
if ! ls "$wheels"/py_rattler-"$rattler_version"-*_"$machine".whl >/dev/null 2>&1; then
  log "pip download py-rattler==$rattler_version (binary wheel, $machine)"
  timeout 300 "$py" -m pip download -q --only-binary=:all: --no-deps \
    --platform "$wheel_platform" --python-version 3.11 --implementation cp \
    -d "$wheels" "py-rattler==$rattler_version" >"$wheels/pip.log" 2>&1 || {
      cat "$wheels/pip.log" >&2; log "pip download failed"; exit 1; }
fi
wheel="$(ls "$wheels"/py_rattler-"$rattler_version"-*_"$machine".whl | head -n1)"
# tomli (as in the project's .venv): the stand-in reads TOML 1.1 manifests with it, as the kit does
tomli_version="$("$py" -c 'import importlib.metadata as m; print(m.version("tomli"))')"
# another architecture takes tomli's pure-Python wheel (the host's is compiled for the host)
tomli_pick='*' tomli_where=()
[ -z "$sfx" ] || { tomli_pick='py3-none-any' tomli_where=(--platform any --implementation py); }
# shellcheck disable=SC2086  # $tomli_pick is a glob
if ! ls "$wheels"/tomli-"$tomli_version"-$tomli_pick.whl >/dev/null 2>&1; then
  log "pip download tomli==$tomli_version (wheel)"
  timeout 300 "$py" -m pip download -q --only-binary=:all: --no-deps --python-version 3.11 "${tomli_where[@]}" \
    -d "$wheels" "tomli==$tomli_version" >"$wheels/pip-tomli.log" 2>&1 || {
      cat "$wheels/pip-tomli.log" >&2; log "pip download failed"; exit 1; }
fi
# shellcheck disable=SC2086
tomli_wheel="$(ls "$wheels"/tomli-"$tomli_version"-$tomli_pick.whl | head -n1)"

# pixi_image VERSION TAG: the stand-in emulating pixi VERSION, hermetic (--network none), rebuilt
# only when the hash of its inputs (in the label org.kit-lab.inputs) changed
pixi_image() {
  local version="$1" tag="$2"
  local ctx="$cache/images/pixi-context-$version$sfx"
  rm -rf "$ctx"; mkdir -p "$ctx"
  cp "$here/pixi_standin.py" "$ctx/pixi"
  cp "$repo/kit/model/pixi_versions.py" "$ctx/pixi_versions.py"   # the one table: which pixi reads which lock
  cp "$here/standin_lock.py" "$ctx/standin_lock.py"   # the stand-in's lock and platform reading
  printf '%s\n' "$version" > "$ctx/emulates"
  cp "$wheel" "$tomli_wheel" "$ctx/"
  # this architecture's subdirs only (also where $cache/channel is a link)
  mkdir "$ctx/channel" && cp -a "$channel/noarch" "$channel/$subdir" "$ctx/channel/"
  cat > "$ctx/Dockerfile" <<EOF
FROM $rootfs_repo:$suite$sfx
# The lab's local conda channel, seen inside the image as file:///opt/kit-lab/channel
COPY channel /opt/kit-lab/channel
# py-rattler (pixi's own engine) in a private venv, and the pixi STAND-IN on top of it
COPY $(basename "$wheel") $(basename "$tomli_wheel") /tmp/
RUN python3 -m venv --without-pip /opt/pixi-standin/venv \\
 && python3 -m zipfile -e /tmp/$(basename "$wheel") /opt/pixi-standin/venv/lib/python3.11/site-packages/ \\
 && python3 -m zipfile -e /tmp/$(basename "$tomli_wheel") /opt/pixi-standin/venv/lib/python3.11/site-packages/ \\
 && rm /tmp/$(basename "$wheel") /tmp/$(basename "$tomli_wheel") \\
 && /opt/pixi-standin/venv/bin/python -c 'import rattler, tomli'
# the pixi version the stand-in emulates, and the kit's table of lock formats per pixi version
COPY emulates pixi_versions.py standin_lock.py /opt/pixi-standin/
COPY pixi /usr/local/bin/pixi
RUN sed -i '1s|.*|#!/opt/pixi-standin/venv/bin/python|' /usr/local/bin/pixi && chmod 0755 /usr/local/bin/pixi \\
 && test "\$(pixi --version)" = "pixi $version"
ENV PIXI_STANDIN=1
LABEL org.kit-lab.pixi-emulates=$version
EOF
  local inputs_hash
  inputs_hash="$(cd "$ctx" && { cat Dockerfile pixi pixi_versions.py standin_lock.py emulates channel/noarch/repodata.json "channel/$subdir/repodata.json"; basename "$wheel"; basename "$tomli_wheel"; } | sha256sum | cut -c1-16)"
  echo "LABEL org.kit-lab.inputs=$inputs_hash" >> "$ctx/Dockerfile"

  if have_image "$tag" && [ "$(label_of "$tag" org.kit-lab.inputs)" = "$inputs_hash" ]; then
    log "$tag: present (emulates pixi $version, inputs $inputs_hash)"
  else
    if ! have_image "$rootfs_repo:$suite$sfx"; then
      local tar_px
      tar_px="$(rootfs_tar pixi-$suite "bash,$pylibs,python3,python3-venv")"
      import_image "$tar_px" "$rootfs_repo:$suite$sfx"
    fi
    local old_id build_log="$cache/images/pixi-build-$version$sfx.log"
    old_id="$("$docker_bin" image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)"
    log "docker build $tag (emulates pixi $version, inputs $inputs_hash)"
    DOCKER_BUILDKIT=1 timeout 600 "$docker_bin" build --progress=plain --platform "linux/$arch" --network none -t "$tag" "$ctx" >"$build_log" 2>&1 || {
      tail -n 30 "$build_log" >&2; log "docker build failed"; exit 1; }
    if [ -n "$old_id" ] && [ "$old_id" != "$("$docker_bin" image inspect -f '{{.Id}}' "$tag")" ]; then
      "$docker_bin" rmi "$old_id" >/dev/null 2>&1 || true  # the previous build, now untagged
    fi
  fi
  rm -rf "$ctx"
}

pixi_image "$pinned_pixi" "$pixi_tag"
if [ -n "$sfx" ]; then log "images ready ($arch): $runtime_tag $pixi_tag"; exit 0; fi
pixi_image "$old_pixi" "$pixi_tag-$old_pixi"
log "images ready: $runtime_tag $pixi_tag $pixi_tag-$old_pixi"
