//! Shared harness of the tests that run the real `xiaoer` binary as
//! separate processes: start `serve` on free loopback ports, wait for its
//! readiness probe, signal it, read its log.

// Each test binary compiles its own copy of this module and uses a subset.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Longest wait for a replica to load its model (several load at once on
/// two cores in a debug build).
pub const LOAD_TIMEOUT: Duration = Duration::from_secs(300);

/// A free loopback port (bound, then released for the server to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The status code of a plain HTTP/1.0 GET, or None if nothing answers.
pub fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    conn.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .ok()?;
    let mut reply = String::new();
    conn.read_to_string(&mut reply).ok()?;
    reply.split_whitespace().nth(1)?.parse().ok()
}

/// One `xiaoer serve` process; killed if the test ends without stopping it.
pub struct Serve {
    child: Option<Child>,
    /// Its gRPC address.
    pub addr: SocketAddr,
    /// Its metrics and probe address.
    pub probes: SocketAddr,
    /// Its log (stderr, JSON lines).
    pub log: PathBuf,
}

impl Serve {
    /// Starts `xiaoer serve` with `args` on fresh ports, logging to `dir`.
    pub fn start(dir: &Path, name: &str, args: &[&str]) -> Serve {
        let (port, probe_port) = (free_port(), free_port());
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let probes: SocketAddr = format!("127.0.0.1:{probe_port}").parse().unwrap();
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_xiaoer"))
            .arg("serve")
            .args(["--addr", &addr.to_string()])
            .args(["--metrics-addr", &probes.to_string()])
            .args(["--log-format", "json"])
            .args(args)
            .env_remove("XIAOER_CONFIG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("xiaoer serve starts");
        Serve {
            child: Some(child),
            addr,
            probes,
            log,
        }
    }

    /// `http://ADDR` for gRPC clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits until `/readyz` answers 200; panics with the log if the
    /// process dies or takes too long.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + LOAD_TIMEOUT;
        while http_status(self.probes, "/readyz") != Some(200) {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("serve exited ({status}) before ready:\n{}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "not ready in time:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Sends SIGTERM, as Kubernetes does to a pod it stops.
    pub fn terminate(&self) {
        let pid = self.child.as_ref().unwrap().id();
        let ok = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM {pid}");
    }

    /// SIGKILL: the replica dies mid-request, as in a node failure.
    pub fn kill_hard(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Waits for the process to exit on its own; None if it did not in time.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        let child = self.child.as_mut()?;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
