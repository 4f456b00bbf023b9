//! The peer (issue 31): a Quix Streams application (Python, `peer/quix_app.py`) reading the
//! same samples topic on the same broker as the processor, in the same run. Its Python comes
//! from `scripts/quix-venv.sh` (`SIDELINE_QUIX_PYTHON`, set by `make bench`).

use std::path::Path;
use std::process::Command;

/// What the peer reported: records, samples, seconds and CPU-seconds from its first record,
/// CPU-seconds in all (start-up included), and the broker's CPU-seconds meanwhile.
pub struct PeerRun {
    pub records: usize,
    pub samples: usize,
    pub secs: f64,
    pub cpu: f64,
    pub cpu_all: f64,
    pub tansu: f64,
}

/// Run the Quix app over `records` records of `topic`; `None` (said why) when no Python is set.
pub fn run(brokers: &str, topic: &str, records: usize, tansu_pid: u32) -> Option<PeerRun> {
    let Some(python) = std::env::var_os("SIDELINE_QUIX_PYTHON") else {
        println!("peer: not run (SIDELINE_QUIX_PYTHON unset; `make bench` sets it)\n");
        return None;
    };
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let proto = here.join("../../proto");
    let work = tempfile::tempdir().unwrap();
    let st = Command::new(&python)
        .args(["-m", "grpc_tools.protoc", "-I"])
        .arg(&proto)
        .arg("--python_out")
        .arg(work.path())
        .arg(proto.join("sideline/v1/samples.proto"))
        .status()
        .unwrap();
    assert!(st.success(), "protoc for the peer failed");
    for d in ["sideline", "sideline/v1"] {
        std::fs::write(work.path().join(d).join("__init__.py"), "").unwrap();
    }
    let tansu0 = super::cpu_seconds(tansu_pid);
    let out = Command::new(&python)
        .arg(here.join("benches/peer/quix_app.py"))
        .args([brokers, topic, "bench.quix.out", "bench-quix"])
        .arg(records.to_string())
        .arg(work.path())
        .output()
        .unwrap();
    let tansu = super::cpu_seconds(tansu_pid) - tansu0;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the Quix app failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f: Vec<f64> = stdout
        .lines()
        .last()
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    assert_eq!(f.len(), 5, "the Quix app printed {stdout:?}");
    Some(PeerRun {
        records: f[0] as usize,
        samples: f[1] as usize,
        secs: f[2],
        cpu: f[3],
        cpu_all: f[4],
        tansu,
    })
}
