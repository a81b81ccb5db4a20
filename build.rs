//! Build script: records the git commit the binary is built from, for
//! `csatwatch_build_info{commit}` and `csatwatch --version`.
//!
//! Order: `CSATWATCH_COMMIT` from the environment (a build from a source
//! tarball, where there is no `.git`), else `git rev-parse HEAD` (a clone or
//! a worktree), else "unknown". Nothing here fails the build.

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
}
