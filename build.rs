//! Build script: records the git commit the binary is built from, for
//! `csatwatch_build_info{commit}` and `csatwatch --version`.
//!
//! Order: `CSATWATCH_COMMIT` from the environment (a build from a source
//! tarball, where there is no `.git`), else `git rev-parse HEAD` (a clone or
//! a worktree), else "unknown". Nothing here fails the build.
//!
//! In a release build for x86_64 Linux with the default linker (rust-lld) it
//! also hands the linker `link/symbol-order.txt`, which places the functions
//! the daemon runs at start-up, per webhook and idle next to each other: the
//! kernel then maps about 4 MiB of code instead of nearly all 9
//! (docs/performance.md "Memory"; scripts/symbol-order.sh regenerates it).
//! `CSATWATCH_SYMBOL_ORDER=off` leaves it out; so does any linker set in
//! Cargo's configuration or RUSTFLAGS, which may not take the option.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-env-changed=CSATWATCH_COMMIT");
    let commit = std::env::var("CSATWATCH_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_string());
    // Rebuild when HEAD moves: HEAD itself (a checkout), the branch's ref
    // (a commit) and packed-refs. `--git-path` resolves them in a worktree
    // too, where `.git` is a file.
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &name])
            && std::path::Path::new(&path).exists()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rustc-env=CSATWATCH_COMMIT={commit}");
    symbol_order();
}

fn symbol_order() {
    println!("cargo:rerun-if-env-changed=CSATWATCH_SYMBOL_ORDER");
    println!("cargo:rerun-if-changed=link/symbol-order.txt");
    let env = |name: &str| std::env::var(name).unwrap_or_default();
    let rustflags = env("CARGO_ENCODED_RUSTFLAGS");
    let default_linker = env("RUSTC_LINKER").is_empty()
        && !rustflags.contains("link")
        && !rustflags.contains("fuse-ld");
    if env("PROFILE") != "release"
        || env("TARGET") != "x86_64-unknown-linux-gnu"
        || !default_linker
        || env("CSATWATCH_SYMBOL_ORDER") == "off"
    {
        return;
    }
    let file = std::path::Path::new(&env("CARGO_MANIFEST_DIR")).join("link/symbol-order.txt");
    if file.exists() {
        // Names missing from the build (a stale file) are skipped quietly;
        // `scripts/symbol-order.sh --check` is what notices them.
        println!(
            "cargo:rustc-link-arg-bin=csatwatch=-Wl,--symbol-ordering-file={},--no-warn-symbol-ordering",
            file.display()
        );
    }
}
