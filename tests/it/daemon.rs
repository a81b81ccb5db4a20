//! The real binary as a child process, for what only a process shows:
//! signals, the open-file limit, the accept loop under a flood.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{GENERIC_SECRET, generic_headers};

/// A `csatwatch serve` child with its own folder, config and SQLite file.
pub struct Daemon {
    pub child: Child,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts the daemon with `extra_server` lines in `[server]`, and the
    /// open-file limit (soft and hard) set to `open_files` when given.
    pub fn start(extra_server: &str, open_files: Option<u64>) -> Daemon {
        Daemon::start_with_env(extra_server, open_files, &[])
    }

    /// [`Daemon::start`] with these environment variables set.
    pub fn start_with_env(
        extra_server: &str,
        open_files: Option<u64>,
        env: &[(&str, &str)],
    ) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let addr = free_port();
        let config = dir.path().join("csatwatch.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[server]
listen = "{addr}"
{extra_server}
[database]
url = "sqlite://{db}"
[log]
format = "json"
[[sources]]
name = "inhouse"
kind = "generic"
secret = "{GENERIC_SECRET}"
signature_prefix = "sha256="
[sources.fields]
conversation_id = "/ticket/id"
score = "/rating/score"
"#,
                db = dir.path().join("data/csatwatch.db").display()
            ),
        )
        .unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_csatwatch"));
        command
            .args(["--config", config.to_str().unwrap(), "serve"])
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::from(
                std::fs::File::create(dir.path().join("stdout.log")).unwrap(),
            ))
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("stderr.log")).unwrap(),
            ));
        if let Some(limit) = open_files {
            use std::os::unix::process::CommandExt as _;
            // SAFETY: setrlimit is async-signal-safe; nothing else runs
            // between fork and exec.
            unsafe {
                command.pre_exec(move || {
                    let rl = libc::rlimit {
                        rlim_cur: limit as libc::rlim_t,
                        rlim_max: limit as libc::rlim_t,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = command.spawn().unwrap();
        let mut daemon = Daemon { child, addr, dir };
        daemon.wait_ready();
        daemon
    }

    fn wait_ready(&mut self) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("csatwatch exited early ({status}): {}", self.logs());
            }
            if let Ok((200, _)) = http_get(self.addr, "/healthz") {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("csatwatch did not become ready: {}", self.logs());
    }

    /// Everything the daemon logged so far.
    pub fn logs(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!("{}{}", read("stdout.log"), read("stderr.log"))
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill only sends a signal to our own child.
        let sent = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(sent, 0, "kill failed");
    }

    /// Waits up to `within` for the process to exit.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < within {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// A blocking GET with a short timeout: (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: csatwatch\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// A signed generic delivery for conversation `id`, posted on a new
/// connection: (status, body).
pub fn post_signed(addr: SocketAddr, id: &str, score: i64) -> std::io::Result<(u16, String)> {
    let body =
        serde_json::to_vec(&json!({"ticket": {"id": id}, "rating": {"score": score}})).unwrap();
    let mut request = format!(
        "POST /webhooks/inhouse HTTP/1.1\r\nHost: csatwatch\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in generic_headers(&body) {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(&body);
    exchange(addr, &bytes)
}

fn exchange(addr: SocketAddr, request: &[u8]) -> std::io::Result<(u16, String)> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(request)?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no HTTP answer: {answer:?}")))?;
    let body = answer
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    Ok((status, body))
}

#[test]
fn a_rust_log_it_cannot_read_is_said_and_log_level_is_used() {
    let daemon = Daemon::start_with_env("", None, &[("RUST_LOG", "csatwatch=loud")]);
    let logs = daemon.logs();
    assert!(
        logs.contains("RUST_LOG is not a log filter csatwatch reads"),
        "{logs}"
    );
    // log.level (`info` by default) is what filters.
    assert!(logs.contains("csatwatch is ready"), "{logs}");
}
