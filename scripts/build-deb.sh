#!/usr/bin/env bash
# Builds the Debian package: target/debian/csatwatch_<version>-1_<arch>.deb
#
#   scripts/build-deb.sh          a release build (what you ship)
#   scripts/build-deb.sh --dev    from the dev-profile binary (`cargo test`
#                                 has built it already): what the test suite
#                                 checks, without minutes of release build.
#                                 The binary is stripped, not optimised.
#
# Installs cargo-deb (from crates.io) when missing. The manual pages and
# shell completions are rendered by the binary itself into target/deb-assets.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
if [ "${1:-}" = "--dev" ]; then
  profile=dev
fi
out_dir=target/release
[ "$profile" = dev ] && out_dir=target/debug

if ! command -v cargo-deb >/dev/null 2>&1; then
  echo "build-deb.sh: installing cargo-deb" >&2
  cargo install cargo-deb --locked --version "^3"
fi

cargo build --locked --profile "$profile" --bin csatwatch
bin="$out_dir/csatwatch"

assets=target/deb-assets
rm -rf "$assets"
mkdir -p "$assets/man" "$assets/completions"
"$bin" man --dir "$assets/man"
gzip -9n "$assets"/man/*.1
"$bin" completions bash >"$assets/completions/csatwatch"
"$bin" completions zsh >"$assets/completions/_csatwatch"
"$bin" completions fish >"$assets/completions/csatwatch.fish"

# --no-build: built above with --locked; cargo-deb maps target/release/ in
# the assets to the profile's folder.
cargo deb --no-build --profile "$profile" --locked --strip --no-dbgsym --output target/debian/
ls -1t target/debian/*.deb | head -n1
