//! Broker processes.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback TCP port (bound and released), below Linux's ephemeral range (32768 and
/// up): the kernel gives ports from that range to outgoing connections too — the many that
/// brokers, clients and other tests open — so a port taken from it with `bind(0)` could be
/// in use by a connection by the time a service binds it. Spread by process and call.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static CALLS: AtomicU32 = AtomicU32::new(0);
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    let pid = std::process::id();
    for _ in 0..SPAN {
        let k = CALLS.fetch_add(1, Ordering::Relaxed);
        let port = LOW
            + (pid
                .wrapping_mul(7_919)
                .wrapping_add(k.wrapping_mul(104_729)))
                % SPAN;
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port as u16)) {
            return l.local_addr().unwrap().port();
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Wait until something listens on `port`.
pub fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn wait_port_free(port: u16, timeout: Duration) {
    let end = Instant::now() + timeout;
    while Instant::now() < end && TcpStream::connect(("127.0.0.1", port)).is_ok() {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A program: `$env` if set, else `~/.cache/sideline/bin/<name>`, else on `PATH`.
pub fn find_binary(env: &str, names: &[&str]) -> PathBuf {
    if let Ok(p) = std::env::var(env) {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let mut candidates: Vec<PathBuf> = names
        .iter()
        .map(|n| PathBuf::from(format!("{home}/.cache/sideline/bin/{n}")))
        .collect();
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/usr/local/sbin"])
    {
        for n in names {
            candidates.push(Path::new(dir).join(n));
        }
    }
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{} not found: run `make setup` (scripts/setup.sh) or set {env}",
                names[0]
            )
        })
}

fn signal(child: &Child, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status();
}

/// A Mosquitto broker.
#[derive(Debug)]
pub struct Mosquitto {
    /// Listening port.
    pub port: u16,
    dir: tempfile::TempDir,
    extra: String,
    child: Option<Child>,
}

impl Mosquitto {
    /// Start with the test defaults: anonymous access, persistence (sessions and queued QoS 1
    /// messages survive a graceful restart), generous in-flight and queue limits.
    pub fn start() -> Self {
        Self::start_with("allow_anonymous true\n")
    }

    /// Start with extra configuration lines (e.g. a password file and TLS).
    pub fn start_with(extra: &str) -> Self {
        let mut m = Mosquitto {
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            extra: extra.to_string(),
            child: None,
        };
        m.spawn();
        m
    }

    /// Its working directory (config, persistence, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn spawn(&mut self) {
        let d = self.dir.path();
        // Mosquitto started as root drops to the `mosquitto` user: let it write here.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        let conf = format!(
            "listener {port} 127.0.0.1\n{extra}persistence true\npersistence_location {dir}/\n\
             autosave_interval 1\nmax_inflight_messages 1000\nmax_queued_messages 1000000\n\
             log_dest file {dir}/mosquitto.log\nlog_type error\nlog_type warning\nlog_type notice\n",
            port = self.port,
            extra = self.extra,
            dir = d.display()
        );
        std::fs::write(d.join("mosquitto.conf"), conf).unwrap();
        let child = Command::new(find_binary("SIDELINE_MOSQUITTO", &["mosquitto"]))
            .arg("-c")
            .arg(d.join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("stderr.log")).unwrap())
            .spawn()
            .unwrap();
        self.child = Some(child);
        assert!(
            wait_for_port(self.port, Duration::from_secs(10)),
            "mosquitto did not start: {}",
            self.log()
        );
    }

    /// Graceful stop (SIGTERM: the broker saves its persistent state).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(&c, "TERM");
            let _ = c.wait();
            wait_port_free(self.port, Duration::from_secs(5));
        }
    }

    /// Stop and start again on the same port with the same state.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// The broker's log so far.
    pub fn log(&self) -> String {
        let d = self.dir.path();
        std::fs::read_to_string(d.join("mosquitto.log")).unwrap_or_default()
            + &std::fs::read_to_string(d.join("stderr.log")).unwrap_or_default()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A tansu (Kafka-protocol) broker with sqlite storage.
#[derive(Debug)]
pub struct Tansu {
    /// Listening port.
    pub port: u16,
    dir: tempfile::TempDir,
    storage: String,
    child: Option<Child>,
}

impl Tansu {
    /// Start on a free port with sqlite storage (survives restarts of the broker and of
    /// consumers; see DESIGN.md).
    pub fn start() -> Self {
        Self::start_with_storage("sqlite://tansu.db")
    }

    /// Start on a free port with another `--storage-engine` (e.g. `memory://tansu/`), relative
    /// paths inside the broker's own directory. That directory is a new temporary one, made
    /// inside `SIDELINE_TANSU_DIR` when set (e.g. `/dev/shm`, to take the disk's `fsync` out
    /// of a benchmark), else in the system's temporary directory.
    pub fn start_with_storage(url: &str) -> Self {
        let dir = match std::env::var_os("SIDELINE_TANSU_DIR") {
            Some(parent) => tempfile::tempdir_in(&parent)
                .unwrap_or_else(|e| panic!("SIDELINE_TANSU_DIR={parent:?}: {e}")),
            None => tempfile::tempdir()
                .unwrap_or_else(|e| panic!("a temporary directory for tansu: {e}")),
        };
        let mut t = Tansu {
            port: free_port(),
            dir,
            storage: url.to_string(),
            child: None,
        };
        t.spawn();
        t
    }

    /// `bootstrap.servers` for clients.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Process id of the running broker (0 when stopped), for CPU accounting.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    fn spawn(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let d = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("tansu.log"))
            .unwrap();
        let child = Command::new(find_binary("SIDELINE_TANSU", &["tansu"]))
            .current_dir(d)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                &self.storage,
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        assert!(
            wait_for_port(self.port, Duration::from_secs(20)),
            "tansu did not start: {}",
            self.log()
        );
    }

    /// Kill -9 (no chance to flush anything).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            wait_port_free(self.port, Duration::from_secs(5));
        }
    }

    /// Start again on the same port and storage.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// The broker's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tansu.log")).unwrap_or_default()
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A test CA and a server certificate for 127.0.0.1, made with the `openssl` command.
#[derive(Debug)]
pub struct TestCerts {
    /// CA certificate (PEM).
    pub ca: PathBuf,
    /// Server certificate (PEM).
    pub server_cert: PathBuf,
    /// Server key (PEM).
    pub server_key: PathBuf,
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Generate certificates in `dir`.
pub fn test_certs(dir: &Path) -> TestCerts {
    let p = |n: &str| dir.join(n);
    run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=sideline-test-ca",
        ])
        .arg("-keyout")
        .arg(p("ca.key"))
        .arg("-out")
        .arg(p("ca.pem")));
    run(Command::new("openssl")
        .args([
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .arg("-keyout")
        .arg(p("server.key"))
        .arg("-out")
        .arg(p("server.csr")));
    std::fs::write(p("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
        .arg("-in")
        .arg(p("server.csr"))
        .arg("-CA")
        .arg(p("ca.pem"))
        .arg("-CAkey")
        .arg(p("ca.key"))
        .arg("-extfile")
        .arg(p("ext.cnf"))
        .arg("-out")
        .arg(p("server.pem")));
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["ca.pem", "server.pem", "server.key"] {
            std::fs::set_permissions(p(f), std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    TestCerts {
        ca: p("ca.pem"),
        server_cert: p("server.pem"),
        server_key: p("server.key"),
    }
}

/// A Mosquitto password file with one user.
pub fn password_file(dir: &Path, user: &str, password: &str) -> PathBuf {
    let f = dir.join("passwd");
    run(Command::new("mosquitto_passwd")
        .args(["-c", "-b"])
        .arg(&f)
        .args([user, password]));
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    f
}

/// An S3-protocol server (moto) on a free loopback port, with one empty bucket.
pub struct S3 {
    child: Child,
    port: u16,
    bucket: String,
}

impl S3 {
    /// Start it and create the bucket `bucket`.
    pub fn start(bucket: &str) -> Self {
        let port = free_port();
        let child = Command::new(find_binary("SIDELINE_MOTO", &["moto_server"]))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        assert!(
            wait_for_port(port, Duration::from_secs(30)),
            "moto_server did not start"
        );
        let s = S3 {
            child,
            port,
            bucket: bucket.to_string(),
        };
        let reply = s.request("PUT", &format!("/{bucket}"));
        assert!(reply.starts_with("HTTP/1.1 200"), "create bucket: {reply}");
        s
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `s3://<bucket>/<prefix>`.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.bucket)
    }

    /// The client settings (object_store's names) for this server.
    pub fn options(&self) -> Vec<(String, String)> {
        [
            ("endpoint", self.endpoint()),
            ("allow_http", "true".into()),
            ("region", "us-east-1".into()),
            ("access_key_id", "test".into()),
            ("secret_access_key", "test".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The same settings as `AWS_*` environment variables.
    pub fn env(&self) -> Vec<(String, String)> {
        self.options()
            .into_iter()
            .map(|(k, v)| (format!("AWS_{}", k.to_uppercase()), v))
            .collect()
    }

    /// Keys under `prefix` in the bucket (a plain ListObjectsV2 request).
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let reply = self.request(
            "GET",
            &format!("/{}?list-type=2&prefix={prefix}", self.bucket),
        );
        reply
            .split("<Key>")
            .skip(1)
            .filter_map(|k| k.split_once("</Key>").map(|(k, _)| k.to_string()))
            .collect()
    }

    fn request(&self, method: &str, path: &str) -> String {
        use std::io::{Read, Write};
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
