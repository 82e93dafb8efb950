#!/usr/bin/env bash
# Installs what Hearth's build and tests need and is not there yet: the wasm target, the pinned
# trunk and wasm-bindgen-cli (from crates.io), and with --browser Chromium (Debian) and
# playwright-core (npm). Nothing else is downloaded, ever: no model hub, no prebuilt binaries.
set -euo pipefail
cd "$(dirname "$0")/.."

TRUNK_VERSION=0.21.14
# wasm-bindgen-cli must equal the wasm-bindgen crate in Cargo.lock (Trunk.toml pins the same).
WASM_BINDGEN_VERSION=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')

command -v cargo >/dev/null || { echo "error: install Rust with rustup first (https://rustup.rs)"; exit 1; }
# rust-toolchain.toml names the toolchain and the wasm target; this installs both if missing.
rustup show active-toolchain >/dev/null
rustup target list --installed | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

# Both tools at the cheapest build that does their job: they run cargo, wasm-bindgen and copy
# files, so optimising them buys nothing a user waits for, and on a fresh 2-core machine their
# install competes with the project's own build (DEVELOPERS.md, "Where CI's time goes").
cheap_install() {
    CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_OPT_LEVEL="$1" \
        CARGO_PROFILE_RELEASE_DEBUG=false cargo install "${@:2}"
}
if [[ "$(trunk --version 2>/dev/null)" != "trunk $TRUNK_VERSION" ]]; then
    echo "==> installing trunk $TRUNK_VERSION (a few minutes, once)"
    # Unoptimised (it starts cargo and copies files) and without its default features: TLS
    # (rustls, ring) for downloading tools and an update check, which offline Trunk never uses.
    cheap_install 0 trunk --version "$TRUNK_VERSION" --locked --no-default-features
fi
if [[ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]]; then
    echo "==> installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (a few minutes, once)"
    # Without --locked: the CLI's own lockfile pins a walrus that no longer builds. Only the
    # `wasm-bindgen` binary Trunk runs, without TLS (its test runner's downloads); opt-level 1
    # because it rewrites every worker build (tens of MB).
    cheap_install 1 wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --no-default-features --bin wasm-bindgen
fi
# Trunk runs offline (Trunk.toml): every crate must be here before it builds.
cargo fetch --quiet

if [[ "${1:-}" == "--browser" ]]; then
    if ! [[ -x /usr/bin/chromium ]]; then
        echo "==> installing Debian's chromium"
        sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
        $sudo apt-get install -y chromium >/dev/null 2>&1 || { $sudo apt-get update >/dev/null && $sudo apt-get install -y chromium >/dev/null; }
    fi
    if ! [[ -d tests/browser/node_modules/playwright-core ]]; then
        echo "==> installing playwright-core (npm; it never downloads a browser here)"
        (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
    fi
fi
