//! Who is at the bench page. Acknowledgements carry a person's name, and the page shows
//! players' health data, so outside the demo staff sign in:
//!
//! - **staff file** (`bench.staff_file`): TOML `[[staff]]` entries with `user`, `name` and an
//!   Argon2id `password` hash in PHC form (`sideline bench hash-password` makes one); the
//!   browser signs in with HTTP Basic (put the bench behind TLS: Basic sends the password
//!   with every request). A verified password is remembered for [`REMEMBER`] as a SHA-256 of
//!   the credentials, so the page's requests each second do not each cost an Argon2 run.
//!   Guessing is slowed per login: after [`FREE_FAILURES`] wrong passwords in a row, each
//!   further try waits 1, 2, 4, … s (at most [`MAX_WAIT`]) after the last wrong one, and a try
//!   sooner is refused with 429 and `Retry-After` without checking the password (no Argon2
//!   run either). It is a slow-down, not a lock-out: someone guessing cannot shut a member of
//!   staff out for longer than [`MAX_WAIT`], and whoever is already signed in (remembered) is
//!   not affected. A right password ends it. Unknown logins cost nothing and are refused.
//! - **identity header** (`bench.identity_header`): an authenticating proxy in front of the
//!   bench (oauth2-proxy, the ingress's SSO) names the person; only safe when nothing else can
//!   reach the port.
//! - **open**: nobody signs in (allowed on loopback only). The page is read-only, except in
//!   the demo, where an acknowledgement carries the name typed on the page.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::http::HeaderMap;
use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// How long a verified password is remembered.
pub const REMEMBER: Duration = Duration::from_secs(600);
/// Remembered sign-ins at most (then the memory is cleared).
const REMEMBERED: usize = 1_000;
/// Wrong passwords in a row for one login before its tries are slowed down.
pub const FREE_FAILURES: u32 = 5;
/// The longest wait between tries of a slowed-down login.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// How long after its last wrong password a login with `failures` of them in a row must wait.
fn wait_after(failures: u32) -> Duration {
    match failures.checked_sub(FREE_FAILURES) {
        None => Duration::ZERO,
        Some(n) => Duration::from_secs(1u64 << n.min(16)).min(MAX_WAIT),
    }
}

/// A person signed in.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// Login (or the proxy's user).
    pub user: String,
    /// Name shown with acknowledgements.
    pub name: String,
}

/// One member of staff in the staff file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffEntry {
    /// Login.
    pub user: String,
    /// Name shown with their acknowledgements.
    pub name: String,
    /// Argon2id hash, PHC string (`$argon2id$v=19$…`).
    pub password: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StaffFile {
    #[serde(default)]
    staff: Vec<StaffEntry>,
}

/// Why the staff file cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("staff file {path}: {why}")]
pub struct StaffFileError {
    /// The file.
    pub path: String,
    /// What is wrong.
    pub why: String,
}

/// How people are identified.
#[derive(Debug)]
pub enum Auth {
    /// Nobody signs in; `named_acks`: an acknowledgement carries a typed name (the demo, on
    /// loopback), else acknowledging is refused.
    Open {
        /// Accept typed names.
        named_acks: bool,
    },
    /// HTTP Basic against the staff file.
    Staff {
        /// By login.
        users: HashMap<String, StaffEntry>,
        /// SHA-256 of verified credentials → (login, until).
        remembered: Mutex<HashMap<[u8; 32], (String, Instant)>>,
        /// Login → (wrong passwords in a row, when the last one came).
        failures: Mutex<HashMap<String, (u32, Instant)>>,
    },
    /// A header set by an authenticating proxy.
    Header {
        /// Its name.
        header: String,
    },
}

/// The outcome of [`Auth::identify`].
#[derive(Debug, PartialEq)]
pub enum Who {
    /// Nobody needs to sign in.
    Anyone,
    /// Signed in.
    Person(Identity),
    /// Not signed in (or wrong password): ask the browser to sign in.
    Challenge,
    /// Too many wrong passwords for this login: try again after this long.
    SlowDown(Duration),
}

impl Auth {
    /// Load the staff file: every entry needs a user, a name and an Argon2 hash.
    pub fn staff_file(path: &Path) -> Result<Auth, StaffFileError> {
        let err = |why: String| StaffFileError {
            path: path.display().to_string(),
            why,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let file: StaffFile = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        let mut users = HashMap::new();
        for (i, s) in file.staff.into_iter().enumerate() {
            if s.user.trim().is_empty() || s.name.trim().is_empty() {
                return Err(err(format!("entry {}: user and name are needed", i + 1)));
            }
            match PasswordHash::new(&s.password) {
                Ok(h) if h.algorithm.as_str().starts_with("argon2") => {}
                _ => {
                    return Err(err(format!(
                        "entry {} ({}): password must be an Argon2 hash (sideline bench hash-password), never the password itself",
                        i + 1,
                        s.user
                    )));
                }
            }
            if users.insert(s.user.clone(), s).is_some() {
                return Err(err(format!("user listed twice (entry {})", i + 1)));
            }
        }
        if users.is_empty() {
            return Err(err("no [[staff]] entries".into()));
        }
        Ok(Auth::Staff {
            users,
            remembered: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
        })
    }

    /// Does this mode identify people (so acknowledgements carry a verified name)?
    pub fn signs_in(&self) -> bool {
        !matches!(self, Auth::Open { .. })
    }

    /// Who sent these headers.
    pub fn identify(&self, headers: &HeaderMap) -> Who {
        self.identify_at(headers, Instant::now())
    }

    /// [`Auth::identify`] at `now`.
    pub fn identify_at(&self, headers: &HeaderMap, now: Instant) -> Who {
        match self {
            Auth::Open { .. } => Who::Anyone,
            Auth::Header { header } => match headers
                .get(header.as_str())
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
            {
                Some(user) => Who::Person(Identity {
                    user: user.to_string(),
                    name: user.to_string(),
                }),
                None => Who::Challenge,
            },
            Auth::Staff {
                users,
                remembered,
                failures,
            } => {
                let Some((user, password)) = basic(headers) else {
                    return Who::Challenge;
                };
                let Some(entry) = users.get(&user) else {
                    return Who::Challenge;
                };
                let key: [u8; 32] = Sha256::digest(format!("{user}\0{password}")).into();
                {
                    let r = remembered.lock().unwrap_or_else(|p| p.into_inner());
                    if r.get(&key)
                        .is_some_and(|(u, until)| *u == user && *until > now)
                    {
                        return Who::Person(identity(entry));
                    }
                }
                let lock = |m: &'_ Mutex<HashMap<String, (u32, Instant)>>| {
                    m.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get(&user)
                        .copied()
                };
                if let Some((n, last)) = lock(failures) {
                    let ready = last + wait_after(n);
                    if ready > now {
                        return Who::SlowDown(ready - now);
                    }
                }
                if !verify(&entry.password, &password) {
                    let mut f = failures.lock().unwrap_or_else(|p| p.into_inner());
                    let e = f.entry(user).or_insert((0, now));
                    *e = (e.0.saturating_add(1), now);
                    return Who::Challenge;
                }
                failures
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&user);
                let mut r = remembered.lock().unwrap_or_else(|p| p.into_inner());
                if r.len() >= REMEMBERED {
                    r.clear();
                }
                r.insert(key, (user, now + REMEMBER));
                Who::Person(identity(entry))
            }
        }
    }
}

fn identity(e: &StaffEntry) -> Identity {
    Identity {
        user: e.user.clone(),
        name: e.name.clone(),
    }
}

/// The user and password of an `Authorization: Basic …` header.
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get("authorization")?.to_str().ok()?;
    let (scheme, b64) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

fn verify(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// An Argon2id hash of `password` in PHC form, for the staff file.
pub fn hash_password(password: &str) -> Result<String, String> {
    if password.chars().count() < 10 {
        return Err("a password needs at least 10 characters".into());
    }
    let mut bytes = [0u8; 16];
    rand::Rng::fill(&mut rand::rng(), &mut bytes[..]);
    let salt = SaltString::encode_b64(&bytes).map_err(|e| e.to_string())?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic_header(user: &str, password: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        h.insert("authorization", format!("Basic {b64}").parse().unwrap());
        h
    }

    #[test]
    fn staff_sign_in_with_the_hashed_password_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("staff.toml");
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        std::fs::write(
            &path,
            format!("[[staff]]\nuser = \"lee\"\nname = \"Dr Lee\"\npassword = \"{hash}\"\n"),
        )
        .unwrap();
        let auth = Auth::staff_file(&path).unwrap();
        assert!(auth.signs_in());
        let who = auth.identify(&basic_header("lee", "correct horse battery"));
        assert_eq!(
            who,
            Who::Person(Identity {
                user: "lee".into(),
                name: "Dr Lee".into()
            })
        );
        // Remembered: the same again is answered from memory, a wrong one still refused.
        assert!(matches!(
            auth.identify(&basic_header("lee", "correct horse battery")),
            Who::Person(_)
        ));
        for (u, p) in [
            ("lee", "wrong password"),
            ("nobody", "correct horse battery"),
        ] {
            assert_eq!(auth.identify(&basic_header(u, p)), Who::Challenge, "{u}");
        }
        assert_eq!(auth.identify(&HeaderMap::new()), Who::Challenge);
    }

    #[test]
    fn guessing_a_login_is_slowed_down_not_locked_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("staff.toml");
        let hash = hash_password("correct horse battery").unwrap();
        std::fs::write(
            &path,
            format!("[[staff]]\nuser = \"lee\"\nname = \"Dr Lee\"\npassword = \"{hash}\"\n"),
        )
        .unwrap();
        let auth = Auth::staff_file(&path).unwrap();
        let t0 = Instant::now();
        let right = basic_header("lee", "correct horse battery");
        // Signed in before the guessing starts: remembered, not affected by it.
        assert!(matches!(auth.identify_at(&right, t0), Who::Person(_)));
        let wrong = basic_header("lee", "a guess");
        for i in 0..FREE_FAILURES {
            assert_eq!(auth.identify_at(&wrong, t0), Who::Challenge, "guess {i}");
        }
        // The sixth try at once, right or wrong, waits a second.
        assert_eq!(
            auth.identify_at(&wrong, t0),
            Who::SlowDown(Duration::from_secs(1))
        );
        // Not even checked while waiting: a typo costs no Argon2 run and is not counted.
        let typo = basic_header("lee", "correct horse battery ");
        assert!(matches!(auth.identify_at(&typo, t0), Who::SlowDown(_)));
        assert!(matches!(auth.identify_at(&right, t0), Who::Person(_)));
        // After the wait one more guess is checked; then the wait doubles.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(auth.identify_at(&wrong, t1), Who::Challenge);
        assert_eq!(
            auth.identify_at(&wrong, t1 + Duration::from_millis(1500)),
            Who::SlowDown(Duration::from_millis(500))
        );
        // Never longer than MAX_WAIT; another login is not affected.
        assert_eq!(wait_after(FREE_FAILURES + 40), MAX_WAIT);
        assert_eq!(wait_after(FREE_FAILURES - 1), Duration::ZERO);
        assert_eq!(
            auth.identify_at(&basic_header("nobody", "x"), t1),
            Who::Challenge
        );
        // The right password, checked once the wait is over, signs in and ends the slow-down.
        if let Auth::Staff { remembered, .. } = &auth {
            remembered.lock().unwrap().clear();
        }
        let t2 = t1 + Duration::from_secs(2);
        assert!(matches!(auth.identify_at(&right, t2), Who::Person(_)));
        for i in 0..FREE_FAILURES {
            assert_eq!(auth.identify_at(&wrong, t2), Who::Challenge, "again {i}");
        }
    }

    #[test]
    fn a_staff_file_with_a_plain_password_or_nobody_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("staff.toml");
        std::fs::write(
            &path,
            "[[staff]]\nuser = \"lee\"\nname = \"Dr Lee\"\npassword = \"hunter2hunter2\"\n",
        )
        .unwrap();
        let e = Auth::staff_file(&path).unwrap_err().to_string();
        assert!(e.contains("Argon2 hash"), "{e}");
        std::fs::write(&path, "").unwrap();
        assert!(Auth::staff_file(&path).is_err());
        assert!(hash_password("short").is_err());
    }

    #[test]
    fn the_proxy_header_names_the_person_and_its_absence_is_refused() {
        let auth = Auth::Header {
            header: "x-auth-request-user".into(),
        };
        let mut h = HeaderMap::new();
        assert_eq!(auth.identify(&h), Who::Challenge);
        h.insert("x-auth-request-user", "coach.b".parse().unwrap());
        assert!(matches!(auth.identify(&h), Who::Person(i) if i.name == "coach.b"));
        assert_eq!(
            Auth::Open { named_acks: false }.identify(&HeaderMap::new()),
            Who::Anyone
        );
    }
}
