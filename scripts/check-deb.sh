#!/usr/bin/env bash
# Checks the .deb scripts/build-deb.sh made: its contents and control files
# (dpkg-deb), lintian (every override in deploy/debian/lintian-overrides has
# its reason), then installs it on this machine with dpkg -i, runs the
# installed binary as the package's user, and purges it.
#
#   scripts/check-deb.sh [path/to/csatwatch_….deb]
#
# Needs root (dpkg -i), dpkg-deb and lintian. Refuses to run where a
# csatwatch package is already installed: it would replace it.
set -euo pipefail
cd "$(dirname "$0")/.."

deb="${1:-$(ls -1t target/debian/csatwatch_*.deb 2>/dev/null | head -n1)}"
[ -n "$deb" ] && [ -f "$deb" ] || { echo "check-deb.sh: no .deb; run scripts/build-deb.sh first" >&2; exit 1; }
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)"
fail() { echo "check-deb.sh: FAIL: $*" >&2; exit 1; }
echo "check-deb.sh: checking $deb"

# 1. Contents and control files.
contents="$(dpkg-deb --contents "$deb" | awk '{print $6}')"
for path in \
  ./usr/bin/csatwatch \
  ./usr/lib/systemd/system/csatwatch.service \
  ./etc/csatwatch/csatwatch.toml \
  ./usr/share/man/man1/csatwatch.1.gz \
  ./usr/share/man/man1/csatwatch-serve.1.gz \
  ./usr/share/bash-completion/completions/csatwatch \
  ./usr/share/zsh/vendor-completions/_csatwatch \
  ./usr/share/fish/vendor_completions.d/csatwatch.fish \
  ./usr/share/doc/csatwatch/copyright \
  ./usr/share/doc/csatwatch/changelog.Debian.gz \
  ./usr/share/doc/csatwatch/examples/csatwatch.example.toml \
  ./usr/share/lintian/overrides/csatwatch; do
  grep -qxF "$path" <<<"$contents" || fail "$path is not in the package"
done
[ "$(dpkg-deb --field "$deb" Package)" = csatwatch ] || fail "Package field"
[ "$(dpkg-deb --field "$deb" Version)" = "$version-1" ] || fail "Version is not $version-1"
dpkg-deb --field "$deb" Depends | grep -q adduser || fail "Depends lacks adduser"
ctrl="$(mktemp -d)"
trap 'rm -rf "$ctrl"' EXIT
dpkg-deb --control "$deb" "$ctrl"
grep -qxF /etc/csatwatch/csatwatch.toml "$ctrl/conffiles" || fail "the settings file is not a conffile"
grep -q 'adduser --system' "$ctrl/postinst" || fail "postinst creates no system user"
grep -q 'deb-systemd-helper' "$ctrl/postinst" || fail "postinst does not enable the unit"
echo "check-deb.sh: contents ok"

# 2. Lintian: no error, warning or info that is not overridden with a reason.
lintian --fail-on error,warning,info --display-info "$deb"
echo "check-deb.sh: lintian ok"

# 3. Install, run, purge.
if dpkg-query -W -f '${Status}' csatwatch 2>/dev/null | grep -q installed; then
  fail "a csatwatch package is already installed here; not replacing it"
fi
dpkg -i "$deb"
trap 'dpkg --purge csatwatch >/dev/null 2>&1 || true; rm -rf "$ctrl"' EXIT
installed="$(/usr/bin/csatwatch --version)"
echo "check-deb.sh: installed: $installed"
grep -q "^csatwatch $version " <<<"$installed" || fail "--version says '$installed'"
getent passwd csatwatch >/dev/null || fail "no csatwatch user"
[ "$(stat -c '%U:%G %a' /etc/csatwatch/csatwatch.toml)" = "root:csatwatch 640" ] \
  || fail "/etc/csatwatch/csatwatch.toml is $(stat -c '%U:%G %a' /etc/csatwatch/csatwatch.toml)"
# The shipped settings are valid, and the package's user can read them and
# create its database in the state folder.
runuser -u csatwatch -- /usr/bin/csatwatch --config /etc/csatwatch/csatwatch.toml check-config
runuser -u csatwatch -- /usr/bin/csatwatch --config /etc/csatwatch/csatwatch.toml migrate
[ -f /var/lib/csatwatch/csatwatch.db ] || fail "migrate made no database"
if command -v systemd-analyze >/dev/null 2>&1; then
  systemd-analyze verify --man=no /usr/lib/systemd/system/csatwatch.service
fi
man -w csatwatch >/dev/null 2>&1 || ! command -v man >/dev/null || fail "man csatwatch finds no page"

dpkg --purge csatwatch
[ ! -e /usr/bin/csatwatch ] || fail "purge left /usr/bin/csatwatch"
[ ! -e /etc/csatwatch/csatwatch.toml ] || fail "purge left the settings file"
[ ! -e /var/lib/csatwatch ] || fail "purge left /var/lib/csatwatch"
echo "check-deb.sh: install, run and purge ok"
