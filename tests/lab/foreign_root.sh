#!/usr/bin/env bash
# Finish a root file system left by `debootstrap --foreign` (first stage: download and unpack on
# this machine, no emulation) without debootstrap's second stage. base_images.sh calls it for a
# foreign architecture (KIT_LAB_ARCH=arm64). Why: the second stage configures every package with
# its maintainer scripts under qemu, which took 465 s and 834 s for the two arm64 roots on 2 cores
# (update-ca-certificates alone minutes); this takes seconds. Issue 17.
#
#   tests/lab/foreign_root.sh DIR
#
# What it does, each in place of the maintainer script that would have done it (measured against
# a second-stage root: the file lists differ only in what is listed in tests/lab/README.md,
# "linux-aarch64"):
#   - /proc a folder again (the first stage links it to the host's)
#   - unpacks the packages the first stage only downloaded (debootstrap/base: the --include ones
#     and their dependencies), keeping the merged-/usr links
#   - /etc/passwd, group, shadow, gshadow from base-passwd's masters (base-passwd, passwd)
#   - base-files' /etc/profile and motd, libc-bin's nsswitch.conf, root's dot files, the empty FHS folders
#   - /etc/shells (debianutils, bash, dash), the alternatives awk, nawk, pager, rmt, which
#   - the CA certificates: /etc/ca-certificates.conf, a link and a hash link per certificate,
#     the bundle /etc/ssl/certs/ca-certificates.crt (what update-ca-certificates writes; the
#     hashes come from this machine's openssl, the same for any architecture)
#   - /etc/localtime and /etc/timezone (Etc/UTC), /etc/ld.so.cache (the target's own ldconfig:
#     one program under qemu, 0.2 s)
#   - dpkg's status and file lists, so dpkg-query and dpkg -L answer as in a configured root
# and removes debootstrap's working folder and the downloaded .deb files. Needs root, qemu for
# the target registered with binfmt_misc (aarch64.sh does it), openssl, dpkg-deb, GNU tar.
set -euo pipefail

dir="${1:?usage: foreign_root.sh DIR}"
[ -f "$dir/debootstrap/debpaths" ] || { echo "[foreign_root] $dir: no debootstrap/debpaths (not a debootstrap --foreign root)" >&2; exit 2; }

deb_of() { awk -v p="$1" '$1 == p { print $2; exit }' "$dir/debootstrap/debpaths"; }

# ---------------------------------------------------------------- the packages not yet unpacked
# --keep-directory-symlink: /bin, /sbin, /lib are links into /usr (merged /usr, made by the first
# stage); plain tar would replace them with folders.
for p in $(cat "$dir/debootstrap/base"); do
  f="$(deb_of "$p")"
  [ -n "$f" ] || { echo "[foreign_root] $p: not in debootstrap/debpaths" >&2; exit 1; }
  dpkg-deb --fsys-tarfile "$dir$f" | tar -C "$dir" --keep-directory-symlink -xf -
done

# the first stage links /proc to the host's /proc (for its own chroot); runc mounts proc only on
# a plain folder, as the second stage leaves it
if [ -L "$dir/proc" ]; then rm "$dir/proc"; mkdir -m 0755 "$dir/proc"; fi

# ---------------------------------------------------------------- users and groups
# the masters say "*" for the password; passwd's shadowconfig moves it to shadow and leaves "x"
awk -F: -v OFS=: '{ $2 = "x"; print }' "$dir/usr/share/base-passwd/passwd.master" >"$dir/etc/passwd"
awk -F: -v OFS=: '{ $2 = "x"; print }' "$dir/usr/share/base-passwd/group.master" >"$dir/etc/group"
days=$(( $(date +%s) / 86400 ))
awk -F: -v d="$days" '{ print $1 ":*:" d ":0:99999:7:::" }' "$dir/etc/passwd" >"$dir/etc/shadow"
awk -F: '{ print $1 ":*::" }' "$dir/etc/group" >"$dir/etc/gshadow"
chmod 0644 "$dir/etc/passwd" "$dir/etc/group"
chmod 0640 "$dir/etc/shadow" "$dir/etc/gshadow"
shadow_gid="$(awk -F: '$1 == "shadow" { print $3 }' "$dir/etc/group")"
chown "0:${shadow_gid:-42}" "$dir/etc/shadow" "$dir/etc/gshadow"
: >"$dir/etc/subuid"; : >"$dir/etc/subgid"

# ---------------------------------------------------------------- base-files' postinst
bf="$dir/usr/share/base-files"
install_once() { [ -e "$2" ] || install -m "${3:-0644}" "$1" "$2"; }
install_once "$bf/profile" "$dir/etc/profile"
install_once "$bf/motd" "$dir/etc/motd"
install_once "$bf/dot.profile" "$dir/root/.profile"
install_once "$bf/dot.bashrc" "$dir/root/.bashrc"
# libc-bin's postinst, in bookworm
[ ! -f "$dir/usr/share/libc-bin/nsswitch.conf" ] || install_once "$dir/usr/share/libc-bin/nsswitch.conf" "$dir/etc/nsswitch.conf"
[ ! -f "$bf/info.dir" ] || install_once "$bf/info.dir" "$dir/usr/share/info/dir"
[ -e "$dir/etc/dpkg/origins/default" ] || ln -s debian "$dir/etc/dpkg/origins/default"
for d in etc/opt media mnt opt srv var/opt var/mail run/lock usr/local/share/ca-certificates \
         usr/local/bin usr/local/sbin usr/local/lib usr/local/include usr/local/share/man usr/local/src usr/local/etc usr/local/games \
         usr/local/lib/python3.11/dist-packages; do
  mkdir -p "$dir/$d"
done
[ -e "$dir/usr/local/man" ] || ln -s share/man "$dir/usr/local/man"
[ -e "$dir/var/spool/mail" ] || ln -s ../mail "$dir/var/spool/mail"
: >"$dir/etc/environment"
[ ! -f "$dir/usr/share/readline/inputrc" ] || install_once "$dir/usr/share/readline/inputrc" "$dir/etc/inputrc"

# ---------------------------------------------------------------- shells and alternatives
printf '# /etc/shells: valid login shells\n' >"$dir/etc/shells"
for s in sh bash rbash dash; do
  if [ -e "$dir/usr/bin/$s" ]; then printf '/bin/%s\n/usr/bin/%s\n' "$s" "$s" >>"$dir/etc/shells"; fi
done
alternative() { # alternative LINK NAME TARGET: LINK -> /etc/alternatives/NAME -> TARGET
  [ -e "$dir$3" ] || return 0
  ln -sfn "$3" "$dir/etc/alternatives/$2"
  ln -sfn "/etc/alternatives/$2" "$dir$1"
}
mkdir -p "$dir/etc/alternatives"
alternative /usr/bin/awk awk /usr/bin/mawk
alternative /usr/bin/nawk nawk /usr/bin/mawk
alternative /usr/bin/pager pager /bin/more
alternative /usr/bin/which which /usr/bin/which.debianutils
alternative /usr/sbin/rmt rmt /usr/sbin/rmt-tar

# ---------------------------------------------------------------- CA certificates
if [ -d "$dir/usr/share/ca-certificates" ]; then
  certs="$dir/etc/ssl/certs"
  mkdir -p "$certs"
  printf '# Generated by tests/lab/foreign_root.sh in place of ca-certificates'"'"' postinst\n' >"$dir/etc/ca-certificates.conf"
  : >"$certs/ca-certificates.crt.tmp"
  while IFS= read -r rel; do
    printf '%s\n' "$rel" >>"$dir/etc/ca-certificates.conf"
    name="$(basename "$rel" .crt).pem"
    ln -sfn "/usr/share/ca-certificates/$rel" "$certs/$name"
    cat "$dir/usr/share/ca-certificates/$rel" >>"$certs/ca-certificates.crt.tmp"
    [ -z "$(tail -c1 "$dir/usr/share/ca-certificates/$rel")" ] || echo >>"$certs/ca-certificates.crt.tmp"
    h="$(openssl x509 -hash -noout -in "$dir/usr/share/ca-certificates/$rel")"
    n=0
    while [ -e "$certs/$h.$n" ] || [ -L "$certs/$h.$n" ]; do n=$((n + 1)); done
    ln -s "$name" "$certs/$h.$n"
  done < <(cd "$dir/usr/share/ca-certificates" && find . -name '*.crt' | sed 's|^\./||' | LC_ALL=C sort)
  mv "$certs/ca-certificates.crt.tmp" "$certs/ca-certificates.crt"
fi

# ---------------------------------------------------------------- time zone, dynamic linker
if [ -e "$dir/usr/share/zoneinfo/Etc/UTC" ]; then
  ln -sfn /usr/share/zoneinfo/Etc/UTC "$dir/etc/localtime"
  printf 'Etc/UTC\n' >"$dir/etc/timezone"
fi
chroot "$dir" /sbin/ldconfig

# ---------------------------------------------------------------- dpkg's database
info="$dir/var/lib/dpkg/info"
mkdir -p "$info"
: >"$dir/var/lib/dpkg/status.tmp"
while read -r p f; do
  dpkg-deb -f "$dir$f" | awk '{ print } /^Package:/ { print "Status: install ok installed" }' >>"$dir/var/lib/dpkg/status.tmp"
  echo >>"$dir/var/lib/dpkg/status.tmp"
  arch="$(dpkg-deb -f "$dir$f" Architecture)" multi="$(dpkg-deb -f "$dir$f" Multi-Arch)"
  list="$info/$p.list"
  [ "$multi" != same ] || list="$info/$p:$arch.list"
  dpkg-deb --fsys-tarfile "$dir$f" | tar -t | sed -e 's|^\./|/|' -e 's|/$||' -e 's|^$|/.|' >"$list"
done <"$dir/debootstrap/debpaths"
mv "$dir/var/lib/dpkg/status.tmp" "$dir/var/lib/dpkg/status"
touch "$dir/var/lib/dpkg/available" "$dir/var/lib/dpkg/diversions"

rm -rf "$dir/debootstrap" "$dir"/var/cache/apt/archives/*.deb
