# Sourced (not run) by tests/lab/apptainer.sh and tests/lab/schedulers.sh: a root file system
# kept in the lab cache together with a tarball of itself.
#
# Why: both scripts build a Debian sid root that takes minutes (debootstrap, apt-get) and that a
# cache clean-up, a crash or a new machine can lose. The tarball brings a lost or broken tree
# back in seconds; a stamp (the recipe's version) says whether a tree or a tarball is current,
# so a changed recipe rebuilds both. One implementation, so the two roots cannot drift apart in
# how they restore, replace or re-pack.
#
# Needs from the script that sources it: log, die and STEP_TIMEOUT.

# rootfs_tarball CACHE NAME: TARBALL, COMPRESS and DECOMPRESS for CACHE/NAME.tar.zst (zstd, when
# installed) or CACHE/NAME.tar.gz.
rootfs_tarball() {
    if command -v zstd >/dev/null 2>&1; then
        TARBALL=$1/$2.tar.zst
        COMPRESS=(zstd -T0 -3 -q)
        DECOMPRESS=(zstd -d -q -c)
    else
        TARBALL=$1/$2.tar.gz
        COMPRESS=(gzip -1)
        DECOMPRESS=(gzip -d -c)
    fi
}

# rootfs_tree_ok ROOT MARKER STAMP: the tree at ROOT is complete and current (ROOT/MARKER holds STAMP).
rootfs_tree_ok() { [ -f "$1/$2" ] && [ "$(cat "$1/$2")" = "$3" ]; }

# rootfs_tarball_ok STAMP: TARBALL exists and was written from a tree with STAMP.
rootfs_tarball_ok() { [ -f "$TARBALL" ] && [ -f "$TARBALL.stamp" ] && [ "$(cat "$TARBALL.stamp")" = "$1" ]; }

# rootfs_provision WHAT ROOT MARKER STAMP BUILD: make ROOT current (keep it, else restore it from
# TARBALL, else run the function BUILD, which must leave a complete tree at ROOT with STAMP in
# ROOT/MARKER), then (re)write TARBALL when it is missing or stale. WHAT names the tree in the log.
# A restore unpacks next to ROOT and moves into place only when complete; the tarball's stamp is
# written last, so an interrupted run never leaves a tarball that claims to be current.
rootfs_provision() {
    local what=$1 root=$2 marker=$3 stamp=$4 build=$5
    if rootfs_tree_ok "$root" "$marker" "$stamp"; then
        log "$what present: $root"
    elif rootfs_tarball_ok "$stamp"; then
        log "restoring the $what from $TARBALL"
        rm -rf "$root.new" && mkdir -p "$root.new"
        timeout "$STEP_TIMEOUT" "${DECOMPRESS[@]}" "$TARBALL" | tar -C "$root.new" --numeric-owner -xpf -
        rm -rf "$root" && mv "$root.new" "$root"
        rootfs_tree_ok "$root" "$marker" "$stamp" || die "restored $what has the wrong stamp"
    else
        "$build"
    fi
    if ! rootfs_tarball_ok "$stamp"; then
        log "writing $TARBALL"
        rm -f "$TARBALL.stamp"
        timeout "$STEP_TIMEOUT" tar -C "$root" --numeric-owner -cpf - . | "${COMPRESS[@]}" >"$TARBALL.tmp"
        mv "$TARBALL.tmp" "$TARBALL"
        printf '%s\n' "$stamp" >"$TARBALL.stamp"
    fi
}
