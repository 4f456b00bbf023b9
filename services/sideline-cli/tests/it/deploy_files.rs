//! The deployment files that cannot run on this machine (no Docker daemon, no Kubernetes
//! cluster), checked as far as can be done here:
//!
//! - `deploy/compose/compose.yaml`: parses; every service has an image or a build; every
//!   `depends_on` names a service; every bind-mounted file exists (secrets: as the shipped
//!   `make-secrets.sh` makes them, run here); ingest dials a Mosquitto listener other
//!   containers can reach, with TLS when the listener has it; named volumes are declared; each
//!   Sideline service's configuration
//!   (its mounted file plus its `SIDELINE__…` environment) loads with that service's own loader
//!   (unknown keys and bad values are errors there).
//! - `deploy/k8s/*.yaml`: every object has apiVersion, kind, name and namespace; workloads'
//!   selectors match their pod labels, probes and scrape annotations name the container's port,
//!   mounts name declared volumes, ConfigMaps and Secrets referred to exist, the `--config`
//!   file is a key of the ConfigMap and loads with the service's loader; processor replicas do
//!   not exceed the samples topic's partitions; ingest is a StatefulSet whose pod name is each
//!   replica's MQTT client id; every Service selects a workload. Alertmanager runs the shipped
//!   `alertmanager.yml` (the ConfigMap's copy is equal to it) with its webhook file where the
//!   configuration's relative path, from the working directory, finds the Secret's key; the
//!   PodMonitor scrapes every workload under the job names the rules count on, and the
//!   PrometheusRule carries exactly the shipped rules.
//! - `deploy/systemd/*.service`: the three sections, and `ExecStart` runs a real subcommand of
//!   this `sideline` binary with `--config`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Toml};
use sideline_common::config::Validate;
use yaml_rust2::{Yaml, YamlLoader};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// Load a service's configuration from its defaults, a TOML text and `SIDELINE__…` overrides.
fn check_config(role: &str, file: &str, env: &BTreeMap<String, String>) -> Result<(), String> {
    // Environment overrides as TOML dotted keys (what figment's Env provider does).
    let mut overrides = String::new();
    for (k, v) in env {
        if let Some(path) = k.strip_prefix("SIDELINE__") {
            let key = path.to_lowercase().replace("__", ".");
            let value = if v.parse::<i64>().is_ok() || v == "true" || v == "false" {
                v.clone()
            } else {
                format!("{v:?}")
            };
            overrides += &format!("{key} = {value}\n");
        }
    }
    fn go<T: serde::de::DeserializeOwned + Validate>(
        defaults: &str,
        file: &str,
        overrides: &str,
    ) -> Result<(), String> {
        let cfg: T = Figment::from(Toml::string(defaults))
            .merge(Toml::string(file))
            .merge(Toml::string(overrides))
            .extract()
            .map_err(|e| e.to_string())?;
        let p = cfg.problems();
        if p.is_empty() {
            Ok(())
        } else {
            Err(p.join("; "))
        }
    }
    match role {
        "ingest" => go::<sideline_ingest::config::IngestConfig>(
            sideline_ingest::config::DEFAULTS,
            file,
            &overrides,
        ),
        "process" => go::<sideline_processor::ProcessorConfig>(
            sideline_processor::config::DEFAULTS,
            file,
            &overrides,
        ),
        "alert" => go::<sideline_alerter::config::AlerterConfig>(
            sideline_alerter::config::DEFAULTS,
            file,
            &overrides,
        ),
        "archive" => go::<sideline_archive::config::ArchiveConfig>(
            sideline_archive::config::DEFAULTS,
            file,
            &overrides,
        ),
        "bench" => {
            go::<sideline_bench::BenchConfig>(sideline_bench::config::DEFAULTS, file, &overrides)
        }
        other => Err(format!("unknown role {other}")),
    }
}

/// An example secret as the operator fills it in: the "replace-with-…" placeholders (which
/// the services refuse) become a random-looking value; others stay as they are.
fn as_operator_would(example: &str) -> String {
    if example.trim().to_lowercase().starts_with("replace-with") {
        "f3a91c0d7e2b45a8b6c4d9e1f0a7b3c2".into()
    } else {
        example.to_string()
    }
}

/// Run the shipped `deploy/compose/make-secrets.sh` into `dir`, then do what it asks the
/// operator to do (put the real webhook URL in place of its placeholder).
fn make_secrets(dir: &Path) {
    let out = std::process::Command::new(deploy().join("compose/make-secrets.sh"))
        .env("SECRETS_DIR", dir)
        .env("SIDELINE_BIN", env!("CARGO_BIN_EXE_sideline"))
        .output()
        .unwrap();
    assert!(out.status.success(), "make-secrets.sh: {out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("made"),
        "{out:?}"
    );
    for (hook, url) in [
        (
            "slack-webhook",
            "https://hooks.slack.com/services/T0CLUB/B0BENCH/a1b2c3d4e5f6",
        ),
        (
            "medical-webhook",
            "https://hooks.slack.com/services/T0CLUB/B0MEDIC/f6e5d4c3b2a1",
        ),
    ] {
        std::fs::write(dir.join(hook), format!("{url}\n")).unwrap();
    }
}

/// The Mosquitto listeners of a configuration: (port, bound address, TLS).
fn listeners(conf: &str) -> Vec<(String, Option<String>, bool)> {
    let mut out: Vec<(String, Option<String>, bool)> = Vec::new();
    for l in conf.lines().map(str::trim) {
        let mut w = l.split_whitespace();
        match w.next() {
            Some("listener") => {
                let port = w.next().unwrap_or_default().to_string();
                out.push((port, w.next().map(str::to_string), false));
            }
            Some("certfile") => {
                if let Some(last) = out.last_mut() {
                    last.2 = true;
                }
            }
            _ => {}
        }
    }
    out
}

fn s(y: &Yaml) -> String {
    match y {
        Yaml::String(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Boolean(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

/// A mapping with YAML merge keys (`<<: *anchor`) applied.
fn merged(y: &Yaml) -> BTreeMap<String, Yaml> {
    let mut out = BTreeMap::new();
    if let Some(h) = y.as_hash() {
        if let Some(base) = h.get(&Yaml::String("<<".into())) {
            out.extend(merged(base));
        }
        for (k, v) in h {
            let k = s(k);
            if k != "<<" {
                out.insert(k, v.clone());
            }
        }
    }
    out
}

#[test]
fn compose_stack_is_consistent_and_its_configurations_load() {
    let dir = deploy().join("compose");
    let text = std::fs::read_to_string(dir.join("compose.yaml")).unwrap();
    let doc = &YamlLoader::load_from_str(&text).unwrap()[0];
    let services = merged(&doc["services"]);
    let volumes: BTreeSet<String> = merged(&doc["volumes"]).into_keys().collect();
    for want in [
        "kafka",
        "mosquitto",
        "prometheus",
        "grafana",
        "ingest",
        "process",
        "alert",
        "archive",
        "bench",
        "alertmanager",
    ] {
        assert!(services.contains_key(want), "no service {want}");
    }
    let filled = tempfile::tempdir().unwrap();
    let secrets = filled.path().join("secrets");
    make_secrets(&secrets);
    let mut checked = 0;
    let mut mounted: BTreeMap<(String, String), PathBuf> = BTreeMap::new();
    for (name, svc) in &services {
        let svc = merged(svc);
        assert!(
            svc.contains_key("image") || svc.contains_key("build"),
            "{name}: no image or build"
        );
        for dep in merged(svc.get("depends_on").unwrap_or(&Yaml::Null)).keys() {
            assert!(
                services.contains_key(dep),
                "{name} depends on unknown {dep}"
            );
        }
        let mut files = BTreeMap::new();
        for v in svc
            .get("volumes")
            .and_then(|v| v.as_vec())
            .cloned()
            .unwrap_or_default()
        {
            let v = s(&v);
            let (src, dst) = v.split_once(':').unwrap();
            let dst = dst.trim_end_matches(":ro").to_string();
            if src.starts_with('.') {
                let host = if let Some(secret) = src.strip_prefix("./secrets/") {
                    secrets.join(secret)
                } else {
                    dir.join(src)
                };
                mounted.insert((name.clone(), dst.clone()), host.clone());
                assert!(
                    host.exists(),
                    "{name}: {src} does not exist ({})",
                    host.display()
                );
                files.insert(dst, host);
            } else {
                assert!(volumes.contains(src), "{name}: volume {src} not declared");
            }
        }
        let command: Vec<String> = svc
            .get("command")
            .and_then(|c| c.as_vec())
            .map(|c| c.iter().map(s).collect())
            .unwrap_or_default();
        if svc
            .get("image")
            .is_some_and(|i| s(i).starts_with("sideline"))
        {
            let role = command[0].as_str();
            // Environment values naming a mounted file: where the stack mounts it from.
            let env: BTreeMap<String, String> =
                merged(svc.get("environment").unwrap_or(&Yaml::Null))
                    .iter()
                    .map(|(k, v)| {
                        let v = s(v);
                        let v = files.get(&v).map_or(v, |h| h.display().to_string());
                        (k.clone(), v)
                    })
                    .collect();
            let mut file = match command.iter().position(|c| c == "--config") {
                Some(i) => {
                    let host = &files[&command[i + 1]];
                    std::fs::read_to_string(host).unwrap()
                }
                None => String::new(),
            };
            // Mounted secret files: read where the stack would mount them from.
            for (dst, host) in &files {
                file = file.replace(
                    &format!("\"{dst}\""),
                    &format!("{:?}", host.display().to_string()),
                );
            }
            check_config(role, &file, &env).unwrap_or_else(|e| panic!("{name}: {e}"));
            checked += 1;
        }
    }
    assert_eq!(checked, 5, "the five Sideline services");

    // Ingest dials a Mosquitto listener that is not its container's own loopback (the shared
    // sideline.conf binds 1883 to 127.0.0.1), and speaks TLS to a TLS listener.
    let ingest = merged(&services["ingest"]);
    let env = merged(ingest.get("environment").unwrap_or(&Yaml::Null));
    assert_eq!(s(&env["SIDELINE__MQTT__HOST"]), "mosquitto");
    let port = s(&env["SIDELINE__MQTT__PORT"]);
    let conf = std::fs::read_to_string(
        &mounted[&(
            "mosquitto".to_string(),
            "/mosquitto/config/mosquitto.conf".to_string(),
        )],
    )
    .unwrap();
    let all = listeners(&conf);
    let (_, bind, tls) = all
        .iter()
        .find(|(p, _, _)| *p == port)
        .unwrap_or_else(|| panic!("ingest dials {port}; mosquitto listens on {all:?}"));
    assert!(
        bind.as_deref()
            .is_none_or(|b| b != "127.0.0.1" && b != "localhost"),
        "ingest dials mosquitto:{port}, bound to the broker container's loopback"
    );
    let ingest_toml = std::fs::read_to_string(
        &mounted[&(
            "ingest".to_string(),
            "/etc/sideline/ingest.toml".to_string(),
        )],
    )
    .unwrap();
    assert_eq!(
        ingest_toml.contains("[mqtt.tls]"),
        *tls,
        "ingest's TLS setting disagrees with the listener on {port}"
    );
    // The broker's certificate names the host ingest dials.
    let text = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(secrets.join("certs/server.pem"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("DNS:mosquitto"),
        "{text:?}"
    );

    // Grafana's history data source reaches the archive's PostgreSQL listener by the name its
    // certificate carries, with the password file and CA the stack mounts into Grafana.
    let archive = merged(&services["archive"]);
    let env = merged(archive.get("environment").unwrap_or(&Yaml::Null));
    let listen = s(&env["SIDELINE__ARCHIVE__SQL__LISTEN"]);
    let port = listen.rsplit(':').next().unwrap();
    let provisioning =
        std::fs::read_to_string(deploy().join("../grafana/provisioning/datasources/sideline.yml"))
            .unwrap();
    assert!(
        provisioning.contains(&format!("url: archive:{port}")),
        "the archive listens on {listen}"
    );
    for file in ["/run/secrets/archive-pg-password", "/run/secrets/ca.pem"] {
        assert!(provisioning.contains(file), "{file}");
        assert!(
            mounted.contains_key(&("grafana".to_string(), file.to_string())),
            "grafana does not mount {file}"
        );
    }
    let text = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(secrets.join("certs/archive.pem"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("DNS:archive"),
        "{text:?}"
    );
}

/// `make-secrets.sh` keeps what exists: a second run changes nothing and prints no secret.
#[test]
fn make_secrets_is_idempotent_and_prints_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("s");
    make_secrets(&secrets);
    let snapshot = |d: &Path| -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        for sub in [d.to_path_buf(), d.join("certs")] {
            for e in std::fs::read_dir(&sub).unwrap() {
                let p = e.unwrap().path();
                if p.is_file() {
                    out.insert(p.clone(), std::fs::read(&p).unwrap());
                }
            }
        }
        out
    };
    let before = snapshot(&secrets);
    assert!(before.len() >= 10, "{:?}", before.keys());
    let out = std::process::Command::new(deploy().join("compose/make-secrets.sh"))
        .env("SECRETS_DIR", &secrets)
        .env("SIDELINE_BIN", env!("CARGO_BIN_EXE_sideline"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(snapshot(&secrets), before, "a second run changed a secret");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for secret in [
        "mqtt-ingest-password",
        "ack-secret",
        "archive-sql-token",
        "bench-password",
    ] {
        let v = std::fs::read_to_string(secrets.join(secret)).unwrap();
        assert!(!printed.contains(v.trim()), "{secret} printed");
    }
    // The bench's staff file holds a hash the bench accepts, of the password made with it.
    let auth = sideline_bench::auth::Auth::staff_file(&secrets.join("bench-staff.toml")).unwrap();
    let password = std::fs::read_to_string(secrets.join("bench-password")).unwrap();
    let mut h = axum::http::HeaderMap::new();
    use base64::Engine as _;
    let creds =
        base64::engine::general_purpose::STANDARD.encode(format!("bench:{}", password.trim()));
    h.insert("authorization", format!("Basic {creds}").parse().unwrap());
    assert!(matches!(
        auth.identify(&h),
        sideline_bench::auth::Who::Person(_)
    ));
    // Other users of the host cannot read them.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&secrets).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "secrets dir mode {mode:o}");
}

#[test]
fn kubernetes_manifests_are_consistent_and_their_configurations_load() {
    let mut docs = Vec::new();
    for e in std::fs::read_dir(deploy().join("k8s")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "yaml") {
            let text = std::fs::read_to_string(&p).unwrap();
            for d in
                YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            {
                docs.push((p.file_name().unwrap().to_string_lossy().to_string(), d));
            }
        }
    }
    let kinds = |k: &str| -> Vec<&Yaml> {
        docs.iter()
            .filter(|(_, d)| d["kind"].as_str() == Some(k))
            .map(|(_, d)| d)
            .collect()
    };
    for (f, d) in &docs {
        for key in ["apiVersion", "kind"] {
            assert!(d[key].as_str().is_some(), "{f}: no {key}");
        }
        assert!(d["metadata"]["name"].as_str().is_some(), "{f}: no name");
        if d["kind"].as_str() != Some("Namespace") {
            assert_eq!(d["metadata"]["namespace"].as_str(), Some("sideline"), "{f}");
        }
    }
    let config_maps: BTreeMap<String, &Yaml> = kinds("ConfigMap")
        .into_iter()
        .map(|d| (s(&d["metadata"]["name"]), d))
        .collect();
    let secrets: BTreeSet<String> = kinds("Secret")
        .into_iter()
        .map(|d| s(&d["metadata"]["name"]))
        .collect();
    // The example Secret's keys as files, where the pods mount them (/run/secrets).
    let secret_dir = tempfile::tempdir().unwrap();
    // A TLS Secret holds a certificate the operator (or cert-manager) makes: here one from
    // the shipped make-secrets.sh, written where its pod mounts it.
    let made = tempfile::tempdir().unwrap();
    let mut tls_mounts = BTreeMap::new();
    for w in kinds("Deployment").into_iter().chain(kinds("StatefulSet")) {
        let pod = &w["spec"]["template"]["spec"];
        for v in pod["volumes"].as_vec().into_iter().flatten() {
            let Some(sec) = v["secret"]["secretName"].as_str() else {
                continue;
            };
            for c in pod["containers"].as_vec().into_iter().flatten() {
                for m in c["volumeMounts"].as_vec().into_iter().flatten() {
                    if m["name"] == v["name"] {
                        tls_mounts.insert(sec.to_string(), s(&m["mountPath"]));
                    }
                }
            }
        }
    }
    for d in kinds("Secret") {
        if d["type"].as_str() == Some("kubernetes.io/tls") {
            let name = s(&d["metadata"]["name"]);
            let at = tls_mounts[&name]
                .strip_prefix("/run/secrets/")
                .unwrap_or_else(|| panic!("{name}: not mounted under /run/secrets"))
                .to_string();
            if !made.path().join("certs").is_dir() {
                make_secrets(made.path());
            }
            let dir = secret_dir.path().join(at);
            std::fs::create_dir_all(&dir).unwrap();
            for (key, file) in [("tls.crt", "archive.pem"), ("tls.key", "archive.key")] {
                assert!(d["stringData"][key].as_str().is_some(), "{name}: no {key}");
                std::fs::copy(made.path().join("certs").join(file), dir.join(key)).unwrap();
            }
            continue;
        }
        for (k, v) in merged(&d["stringData"]) {
            std::fs::write(secret_dir.path().join(k), as_operator_would(&s(&v))).unwrap();
        }
    }
    let mut workload_labels = Vec::new();
    let mut roles = BTreeSet::new();
    for w in kinds("Deployment").into_iter().chain(kinds("StatefulSet")) {
        let name = s(&w["metadata"]["name"]);
        let labels = merged(&w["spec"]["template"]["metadata"]["labels"]);
        for (k, v) in merged(&w["spec"]["selector"]["matchLabels"]) {
            assert_eq!(
                labels.get(&k),
                Some(&v),
                "{name}: selector {k} not a pod label"
            );
        }
        workload_labels.push(labels);
        let pod = &w["spec"]["template"]["spec"];
        let mut vols: BTreeSet<String> = pod["volumes"]
            .as_vec()
            .unwrap()
            .iter()
            .map(|v| {
                if let Some(cm) = v["configMap"]["name"].as_str() {
                    assert!(
                        config_maps.contains_key(cm),
                        "{name}: ConfigMap {cm} missing"
                    );
                }
                if let Some(sec) = v["secret"]["secretName"].as_str() {
                    assert!(secrets.contains(sec), "{name}: Secret {sec} missing");
                }
                s(&v["name"])
            })
            .collect();
        if let Some(t) = w["spec"]["volumeClaimTemplates"].as_vec() {
            vols.extend(t.iter().map(|v| s(&v["metadata"]["name"])));
            assert!(
                w["spec"]["serviceName"].as_str().is_some(),
                "{name}: serviceName"
            );
        }
        for c in pod["containers"].as_vec().unwrap() {
            assert!(c["image"].as_str().is_some(), "{name}: image");
            let ports: BTreeMap<String, i64> = c["ports"]
                .as_vec()
                .unwrap()
                .iter()
                .map(|p| (s(&p["name"]), p["containerPort"].as_i64().unwrap()))
                .collect();
            for probe in ["readinessProbe", "livenessProbe"] {
                let port = s(&c[probe]["httpGet"]["port"]);
                assert!(ports.contains_key(&port), "{name}: {probe} port {port}");
            }
            let scrape = s(&w["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"]);
            assert!(
                ports.values().any(|p| p.to_string() == scrape),
                "{name}: scrape port {scrape} not a container port"
            );
            for m in c["volumeMounts"].as_vec().unwrap() {
                assert!(
                    vols.contains(&s(&m["name"])),
                    "{name}: mount {:?}",
                    m["name"]
                );
            }
            if s(&c["image"]).starts_with("prom/alertmanager:") {
                alertmanager_as_shipped(pod, c, &config_maps, &docs);
                continue;
            }
            let args: Vec<String> = c["args"].as_vec().unwrap().iter().map(s).collect();
            let role = args[0].clone();
            let file = args[args.iter().position(|a| a == "--config").unwrap() + 1].clone();
            let key = file.strip_prefix("/etc/sideline/").unwrap();
            let text = config_maps["sideline-config"]["data"][key]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: {key} not in the ConfigMap"));
            assert!(
                c["volumeMounts"]
                    .as_vec()
                    .unwrap()
                    .iter()
                    .any(|m| m["mountPath"].as_str() == Some("/run/secrets")),
                "{name}: secrets not at /run/secrets"
            );
            let text = text.replace(
                "/run/secrets/",
                &format!("{}/", secret_dir.path().display()),
            );
            check_config(&role, &text, &BTreeMap::new()).unwrap_or_else(|e| panic!("{name}: {e}"));
            if role == "ingest" {
                // Each replica its own stable MQTT session: a StatefulSet whose pod name is
                // the client id (two replicas with one id take the session from each other).
                assert_eq!(w["kind"].as_str(), Some("StatefulSet"), "{name}");
                let id_from_pod_name = c["env"].as_vec().is_some_and(|env| {
                    env.iter().any(|e| {
                        e["name"].as_str() == Some("SIDELINE__MQTT__CLIENT_ID")
                            && e["valueFrom"]["fieldRef"]["fieldPath"].as_str()
                                == Some("metadata.name")
                    })
                });
                assert!(id_from_pod_name, "{name}: MQTT client id not the pod name");
            }
            if role == "process" {
                let replicas = w["spec"]["replicas"].as_i64().unwrap();
                let partitions =
                    sideline_common::config::load::<sideline_processor::ProcessorConfig>(
                        sideline_processor::config::DEFAULTS,
                        None,
                    )
                    .unwrap()
                    .kafka
                    .partitions;
                assert!(
                    replicas <= i64::from(partitions),
                    "more processors than partitions"
                );
            }
            roles.insert(role);
        }
    }
    monitoring_as_shipped(
        &kinds("PodMonitor"),
        &kinds("PrometheusRule"),
        &workload_labels,
    );
    assert_eq!(
        roles,
        ["alert", "archive", "bench", "ingest", "process"]
            .map(String::from)
            .into(),
        "one workload per service"
    );
    for svc in kinds("Service") {
        let sel = merged(&svc["spec"]["selector"]);
        assert!(
            workload_labels
                .iter()
                .any(|l| sel.iter().all(|(k, v)| l.get(k) == Some(v))),
            "Service {:?} selects nothing",
            svc["metadata"]["name"]
        );
    }

    // The "restricted" Pod Security Standard: the namespace enforces it and every pod meets it.
    let ns = kinds("Namespace");
    assert_eq!(
        ns[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"].as_str(),
        Some("restricted")
    );
    for w in kinds("Deployment").into_iter().chain(kinds("StatefulSet")) {
        let name = w["metadata"]["name"].as_str().unwrap();
        let pod = &w["spec"]["template"]["spec"];
        let psc = &pod["securityContext"];
        assert_eq!(psc["runAsNonRoot"].as_bool(), Some(true), "{name}");
        assert_eq!(
            psc["seccompProfile"]["type"].as_str(),
            Some("RuntimeDefault"),
            "{name}"
        );
        for c in pod["containers"].as_vec().unwrap() {
            let sc = &c["securityContext"];
            assert_eq!(
                sc["allowPrivilegeEscalation"].as_bool(),
                Some(false),
                "{name}"
            );
            assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true), "{name}");
            assert_eq!(
                sc["capabilities"]["drop"]
                    .as_vec()
                    .map(|v| v.iter().map(s).collect::<Vec<_>>()),
                Some(vec!["ALL".to_string()]),
                "{name}"
            );
            // A read-only root needs somewhere to write temporary files.
            assert!(
                c["volumeMounts"]
                    .as_vec()
                    .unwrap()
                    .iter()
                    .any(|m| m["mountPath"].as_str() == Some("/tmp")),
                "{name}: no writable /tmp"
            );
        }
        // More than one replica: a disruption budget keeps some running through a drain.
        let replicas = w["spec"]["replicas"].as_i64().unwrap_or(1);
        if replicas > 1 {
            let labels = merged(&w["spec"]["template"]["metadata"]["labels"]);
            let pdb = kinds("PodDisruptionBudget").into_iter().find(|b| {
                merged(&b["spec"]["selector"]["matchLabels"])
                    .iter()
                    .all(|(k, v)| labels.get(k) == Some(v))
            });
            let pdb = pdb
                .unwrap_or_else(|| panic!("{name}: {replicas} replicas, no PodDisruptionBudget"));
            let min = pdb["spec"]["minAvailable"].as_i64().unwrap();
            assert!(
                (1..replicas).contains(&min),
                "{name}: minAvailable {min} of {replicas}"
            );
        }
    }
    // Network: ingress denied by default; Prometheus may reach every admin port.
    let policies = kinds("NetworkPolicy");
    assert!(
        policies.iter().any(|p| {
            merged(&p["spec"]["podSelector"]).is_empty()
                && p["spec"]["ingress"].is_badvalue()
                && p["spec"]["policyTypes"]
                    .as_vec()
                    .is_some_and(|t| t.iter().any(|x| s(x) == "Ingress"))
        }),
        "no default-deny ingress NetworkPolicy"
    );
    // Every port a policy opens is one its pods name: the admin port, or the archive's
    // PostgreSQL-protocol port on the archive alone.
    for p in &policies {
        let only_archive = merged(&p["spec"]["podSelector"]["matchLabels"])
            .get("app.kubernetes.io/name")
            .is_some_and(|v| s(v) == "sideline-archive");
        for rule in p["spec"]["ingress"].as_vec().into_iter().flatten() {
            for port in rule["ports"].as_vec().into_iter().flatten() {
                let port = s(&port["port"]);
                assert!(
                    port == "admin" || (port == "pg" && only_archive),
                    "{:?}: port {port} no selected container names",
                    p["metadata"]["name"]
                );
            }
        }
    }
    // The archive's SQL listener: a container port, a Service port, and reachable by Grafana.
    let archive_svc = kinds("Service")
        .into_iter()
        .find(|v| v["metadata"]["name"].as_str() == Some("sideline-archive"))
        .unwrap();
    assert!(
        archive_svc["spec"]["ports"]
            .as_vec()
            .unwrap()
            .iter()
            .any(|p| p["targetPort"].as_str() == Some("pg") && p["port"].as_i64() == Some(5433)),
        "the archive Service has no pg port"
    );
}

#[test]
fn systemd_units_run_real_subcommands() {
    // The operator's /etc/sideline/secrets, as deploy/README.md says to fill it.
    let etc = tempfile::tempdir().unwrap();
    let secrets = etc.path().join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    for (f, v) in [
        ("mqtt-password", "f3a91c0d7e2b45a8b6c4d9e1f0a7b3c2"),
        ("ack-secret", "0d7e2b45a8b6c4d9e1f0a7b3c2f3a91c"),
        (
            "slack-webhook",
            "https://hooks.slack.com/services/T0CLUB/B0BENCH/a1b2c3d4e5f6",
        ),
        (
            "medical-webhook",
            "https://hooks.slack.com/services/T0CLUB/B0MEDIC/f6e5d4c3b2a1",
        ),
    ] {
        std::fs::write(secrets.join(f), format!("{v}\n")).unwrap();
    }
    std::fs::write(
        secrets.join("bench-staff.toml"),
        format!(
            "[[staff]]\nuser = \"lee\"\nname = \"Dr Lee\"\npassword = \"{}\"\n",
            sideline_bench::auth::hash_password("a long enough password").unwrap()
        ),
    )
    .unwrap();
    let mut partitions = BTreeSet::new();
    let mut n = 0;
    for e in std::fs::read_dir(deploy().join("systemd")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "service") {
            continue; // config/: the shipped configurations, checked through their units
        }
        let text = std::fs::read_to_string(&p).unwrap();
        for section in ["[Unit]", "[Service]", "[Install]"] {
            assert!(text.contains(section), "{}: {section}", p.display());
        }
        let exec = text
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .unwrap();
        let words: Vec<&str> = exec.split_whitespace().collect();
        assert_eq!(words[0], "/usr/local/bin/sideline", "{}", p.display());
        assert_eq!(words[2], "--config");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sideline"))
            .args([words[1], "--help"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sideline {} is not a subcommand",
            words[1]
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("--config"),
            "sideline {} has no --config",
            words[1]
        );
        // The configuration it names is shipped (deploy/systemd/config/, installed as
        // /etc/sideline/) and loads with the unit's environment, its secrets in place.
        let shipped = deploy().join("systemd/config").join(
            words[3]
                .strip_prefix("/etc/sideline/")
                .unwrap_or_else(|| panic!("{}: config not under /etc/sideline", p.display())),
        );
        let file = std::fs::read_to_string(&shipped)
            .unwrap_or_else(|e| panic!("{}: {e}", shipped.display()))
            .replace("/etc/sideline/secrets/", &format!("{}/", secrets.display()));
        let env: BTreeMap<String, String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("Environment="))
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        check_config(words[1], &file, &env)
            .unwrap_or_else(|e| panic!("{}: {e}", shipped.display()));
        let table: toml::Table = toml::from_str(&file).unwrap();
        partitions.insert(table["kafka"]["partitions"].as_integer());
        // Relative paths of the configuration (the alerter's outbox, the archive's directory)
        // resolve against the working directory: it must exist and be writable under
        // ProtectSystem=strict, or they land under a read-only `/`.
        let key = |k: &str| -> Vec<&str> {
            text.lines()
                .filter_map(|l| l.strip_prefix(k)?.strip_prefix('='))
                .collect()
        };
        let work = key("WorkingDirectory");
        assert_eq!(work.len(), 1, "{}: no WorkingDirectory", p.display());
        let state: Vec<String> = key("StateDirectory")
            .iter()
            .flat_map(|v| v.split_whitespace())
            .map(|d| format!("/var/lib/{d}"))
            .collect();
        assert!(
            state.iter().any(|d| d == work[0]),
            "{}: WorkingDirectory {} is not a StateDirectory (which systemd makes and gives to the user): {state:?}",
            p.display(),
            work[0]
        );
        if key("ProtectSystem").contains(&"strict") {
            let rw: Vec<&str> = key("ReadWritePaths")
                .iter()
                .flat_map(|v| v.split_whitespace())
                .collect();
            assert!(
                rw.iter().any(|d| work[0].starts_with(d)) || state.iter().any(|d| d == work[0]),
                "{}: {} is read-only under ProtectSystem=strict",
                p.display(),
                work[0]
            );
        }
        n += 1;
    }
    assert_eq!(n, 5);
    // Topics are created once, by whichever service starts first: all must agree.
    assert_eq!(
        partitions.len(),
        1,
        "kafka.partitions differ: {partitions:?}"
    );
}

/// The pods' mounts: mount path → (volume, its ConfigMap or Secret name, the keys it projects
/// (empty: all)).
fn mounts(pod: &Yaml, c: &Yaml) -> BTreeMap<String, (String, String, Vec<String>)> {
    let vols: BTreeMap<String, &Yaml> = pod["volumes"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|v| (s(&v["name"]), v))
        .collect();
    c["volumeMounts"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|m| {
            let v = vols[&s(&m["name"])];
            let source = v["configMap"]["name"]
                .as_str()
                .or(v["secret"]["secretName"].as_str())
                .unwrap_or_default()
                .to_string();
            let items = v["configMap"]["items"]
                .as_vec()
                .or(v["secret"]["items"].as_vec())
                .into_iter()
                .flatten()
                .map(|i| {
                    assert_eq!(s(&i["key"]), s(&i["path"]), "items keep their names");
                    s(&i["key"])
                })
                .collect();
            (s(&m["mountPath"]), (s(&m["name"]), source, items))
        })
        .collect()
}

/// Alertmanager in Kubernetes: the shipped configuration, and its webhook file found.
fn alertmanager_as_shipped(
    pod: &Yaml,
    c: &Yaml,
    config_maps: &BTreeMap<String, &Yaml>,
    docs: &[(String, Yaml)],
) {
    let mounts = mounts(pod, c);
    let args: Vec<String> = c["args"].as_vec().unwrap().iter().map(s).collect();
    let file = args
        .iter()
        .find_map(|a| a.strip_prefix("--config.file="))
        .expect("--config.file");
    let (dir, key) = file.rsplit_once('/').unwrap();
    let (_, cm, _) = &mounts[dir];
    let text = config_maps[cm.as_str()]["data"][key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} not in ConfigMap {cm}"));
    let shipped = std::fs::read_to_string(deploy().join("alertmanager/alertmanager.yml")).unwrap();
    assert_eq!(
        YamlLoader::load_from_str(text).unwrap(),
        YamlLoader::load_from_str(&shipped).unwrap(),
        "the ConfigMap's alertmanager.yml is not deploy/alertmanager/alertmanager.yml: run \
         scripts/k8s-monitoring.sh"
    );
    // Every receiver's webhook file, relative to the working directory, is a Secret's key.
    let config = &YamlLoader::load_from_str(text).unwrap()[0];
    let wd = s(&c["workingDir"]);
    let mut files = 0;
    for r in config["receivers"].as_vec().unwrap() {
        for sc in r["slack_configs"].as_vec().into_iter().flatten() {
            let rel = s(&sc["api_url_file"]);
            let (sub, key) = rel.rsplit_once('/').unwrap();
            let (_, secret, items) = &mounts[&format!("{wd}/{sub}")];
            assert!(items.is_empty() || items.contains(&key.to_string()));
            let has_key = docs.iter().any(|(_, d)| {
                d["kind"].as_str() == Some("Secret")
                    && d["metadata"]["name"].as_str() == Some(secret)
                    && !d["stringData"][key].is_badvalue()
            });
            assert!(has_key, "Secret {secret} has no {key}");
            files += 1;
        }
    }
    assert!(files >= 1, "no receiver with a webhook file");
    let storage = args
        .iter()
        .find_map(|a| a.strip_prefix("--storage.path="))
        .unwrap();
    assert!(mounts.contains_key(storage), "storage on a volume");
}

/// The PodMonitor and PrometheusRule of `deploy/k8s/monitoring.yaml`.
fn monitoring_as_shipped(
    monitors: &[&Yaml],
    rules: &[&Yaml],
    workloads: &[BTreeMap<String, Yaml>],
) {
    let [m] = monitors else {
        panic!("one PodMonitor");
    };
    let job_label = s(&m["spec"]["jobLabel"]);
    let selected: BTreeSet<String> = m["spec"]["selector"]["matchExpressions"][0]["values"]
        .as_vec()
        .unwrap()
        .iter()
        .map(s)
        .collect();
    assert_eq!(
        s(&m["spec"]["selector"]["matchExpressions"][0]["key"]),
        job_label
    );
    let jobs: BTreeSet<String> = workloads
        .iter()
        .map(|l| s(l.get(&job_label).expect("every pod has the job label")))
        .collect();
    assert_eq!(selected, jobs, "the PodMonitor scrapes every workload");
    // The rules count services by job name: each must match them.
    assert!(jobs.iter().all(|j| j.starts_with("sideline-")), "{jobs:?}");
    assert_eq!(
        s(&m["spec"]["podMetricsEndpoints"][0]["port"]),
        "admin",
        "the port every workload names"
    );
    let [r] = rules else {
        panic!("one PrometheusRule");
    };
    let shipped = std::fs::read_to_string(deploy().join("prometheus/sideline.rules.yml")).unwrap();
    assert_eq!(
        r["spec"],
        YamlLoader::load_from_str(&shipped).unwrap()[0],
        "the PrometheusRule is not deploy/prometheus/sideline.rules.yml: run \
         scripts/k8s-monitoring.sh"
    );
}
