//! Who may read the lake through `shoplake serve`, and what each one sees.
//!
//! A users file names each user's role and password verifier:
//!
//! ```toml
//! [users.alice]
//! role = "analyst"
//! password = "SCRAM-SHA-256$4096:...$...:..."   # written by `shoplake users add`
//!
//! [roles.merchandiser]          # a role of the store's own: a built-in one and more
//! base = "analyst"
//! schemas = ["clean"]
//! tables = ["quality.results"]
//! ```
//!
//! Passwords are kept as SCRAM-SHA-256 verifiers in PostgreSQL's own format (the salt, the
//! iteration count, the stored key and the server key): the file lets the server check a
//! password, or a SCRAM exchange, but not log in as anyone. The built-in roles are
//! `analyst` (the `model` layer, which the reports read) and `engineer` (every layer).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::{digest, hmac, pbkdf2, rand::SecureRandom};
use serde::Deserialize;

use shoplake_sql::policy::LAYERS;

/// The SCRAM iteration count `shoplake users add` uses (PostgreSQL's default).
pub const SCRAM_ITERATIONS: u32 = 4096;

/// Why a users file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    /// The file could not be read.
    #[error("cannot read the users file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a valid users file.
    #[error("the users file {path} is not valid: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the user or role.
        message: String,
    },
    /// The file could not be written.
    #[error("cannot write the users file {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A user name or role that cannot be used.
    #[error("{0}")]
    Name(String),
}

/// What a role sees: whole layers, and single tables of other layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// The role's name.
    pub name: String,
    /// Layers (schemas) every table of which the role sees.
    pub schemas: BTreeSet<String>,
    /// Single tables, as `layer.table`.
    pub tables: BTreeSet<String>,
}

impl Role {
    /// `engineer`: every layer.
    pub fn engineer() -> Role {
        Role {
            name: "engineer".into(),
            schemas: LAYERS.iter().map(|l| l.to_string()).collect(),
            tables: BTreeSet::new(),
        }
    }

    /// `analyst`: the `model` layer (the fact table, the marts the reports read).
    pub fn analyst() -> Role {
        Role {
            name: "analyst".into(),
            schemas: BTreeSet::from(["model".to_string()]),
            tables: BTreeSet::new(),
        }
    }

    /// Whether the role sees `layer.table`.
    pub fn sees(&self, layer: &str, table: &str) -> bool {
        self.schemas.contains(layer) || self.tables.contains(&format!("{layer}.{table}"))
    }

    /// Whether the role sees every model table the reports read.
    pub fn sees_reports(&self) -> bool {
        self.schemas.contains("model")
    }
}

/// A user of the users file.
#[derive(Debug, Clone)]
pub struct User {
    /// The name the user logs in with.
    pub name: String,
    /// The user's role.
    pub role: Role,
    /// The password's verifier.
    pub verifier: ScramVerifier,
}

/// The users and roles of a users file.
#[derive(Debug, Clone, Default)]
pub struct Users {
    users: BTreeMap<String, User>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    #[serde(default)]
    users: BTreeMap<String, UserEntry>,
    #[serde(default)]
    roles: BTreeMap<String, RoleEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    role: String,
    password: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleEntry {
    base: Option<String>,
    #[serde(default)]
    schemas: Vec<String>,
    #[serde(default)]
    tables: Vec<String>,
}

impl Users {
    /// Reads and checks a users file.
    pub fn load(path: &Path) -> Result<Users, UsersError> {
        let text = std::fs::read_to_string(path).map_err(|source| UsersError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Users::parse(&text).map_err(|message| UsersError::Invalid {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses the text of a users file.
    pub fn parse(text: &str) -> Result<Users, String> {
        let file: UsersFile = toml::from_str(text).map_err(|e| e.message().to_string())?;
        let mut roles: BTreeMap<String, Role> = BTreeMap::new();
        for builtin in [Role::analyst(), Role::engineer()] {
            roles.insert(builtin.name.clone(), builtin);
        }
        for (name, entry) in &file.roles {
            if roles.contains_key(name) {
                return Err(format!("role {name:?} is built in and cannot be redefined"));
            }
            let mut role = match entry.base.as_deref() {
                None => Role {
                    name: name.clone(),
                    schemas: BTreeSet::new(),
                    tables: BTreeSet::new(),
                },
                Some(base @ ("analyst" | "engineer")) => Role {
                    name: name.clone(),
                    ..roles[base].clone()
                },
                Some(other) => {
                    return Err(format!(
                        "role {name:?}: base {other:?} is not a built-in role (analyst, engineer)"
                    ));
                }
            };
            for schema in &entry.schemas {
                if !LAYERS.contains(&schema.as_str()) {
                    return Err(format!(
                        "role {name:?}: {schema:?} is not a layer (one of {})",
                        LAYERS.join(", ")
                    ));
                }
                role.schemas.insert(schema.clone());
            }
            for table in &entry.tables {
                let known = shoplake_lake::tables::all()
                    .iter()
                    .any(|def| def.qualified_name() == *table);
                if !known {
                    return Err(format!(
                        "role {name:?}: {table:?} is not a lake table (write layer.table)"
                    ));
                }
                role.tables.insert(table.clone());
            }
            roles.insert(name.clone(), role);
        }
        let mut users = BTreeMap::new();
        for (name, entry) in file.users {
            check_user_name(&name).map_err(|e| e.to_string())?;
            let role = roles.get(&entry.role).cloned().ok_or_else(|| {
                format!(
                    "user {name:?}: role {:?} is not defined (built in: analyst, engineer)",
                    entry.role
                )
            })?;
            let verifier = ScramVerifier::parse(&entry.password).map_err(|e| {
                format!("user {name:?}: the password is not a SCRAM-SHA-256 verifier: {e}")
            })?;
            users.insert(
                name.clone(),
                User {
                    name,
                    role,
                    verifier,
                },
            );
        }
        Ok(Users { users })
    }

    /// The user called `name`.
    pub fn get(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    /// The users, by name.
    pub fn iter(&self) -> impl Iterator<Item = &User> {
        self.users.values()
    }

    /// The number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether the file names no user.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The user whose name and password these are, if they match.
    pub fn authenticate(&self, name: &str, password: &str) -> Option<&User> {
        let Some(user) = self.users.get(name) else {
            // As long as for a user who exists: the time says nothing of which names do.
            ScramVerifier::unmatchable().matches(password);
            return None;
        };
        user.verifier.matches(password).then_some(user)
    }
}

/// Refuses user names a users file or a connection string cannot carry plainly.
pub fn check_user_name(name: &str) -> Result<(), UsersError> {
    let fine = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if fine {
        Ok(())
    } else {
        Err(UsersError::Name(format!(
            "{name:?} is not a user name: use 1 to 63 letters, digits, '_', '-' or '.'"
        )))
    }
}

/// Adds (or replaces) `name` with `role` and the verifier of `password` in the users file at
/// `path`, creating it when missing; keeps the rest of the file as it is.
pub fn add_user(path: &Path, name: &str, role: &str, password: &str) -> Result<(), UsersError> {
    check_user_name(name)?;
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(UsersError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let mut document: toml::Table = toml::from_str(&text).map_err(|e| UsersError::Invalid {
        path: path.to_path_buf(),
        message: e.message().to_string(),
    })?;
    let users = document
        .entry("users")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let Some(users) = users.as_table_mut() else {
        return Err(UsersError::Invalid {
            path: path.to_path_buf(),
            message: "`users` is not a table".into(),
        });
    };
    let mut entry = toml::Table::new();
    entry.insert("role".into(), toml::Value::String(role.into()));
    entry.insert(
        "password".into(),
        toml::Value::String(ScramVerifier::new(password).to_string()),
    );
    users.insert(name.into(), toml::Value::Table(entry));
    let written = toml::to_string(&document).map_err(|e| UsersError::Invalid {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    // The new file must read back, role and all, before it replaces the old one.
    Users::parse(&written).map_err(|message| UsersError::Invalid {
        path: path.to_path_buf(),
        message,
    })?;
    let partial = path.with_extension("toml.partial");
    std::fs::write(&partial, written)
        .and_then(|()| restrict_to_owner(&partial))
        .and_then(|()| std::fs::rename(&partial, path))
        .map_err(|source| UsersError::Write {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(unix)]
fn restrict_to_owner(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn restrict_to_owner(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

/// A SCRAM-SHA-256 password verifier, as PostgreSQL stores it:
/// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64).
#[derive(Clone, PartialEq, Eq)]
pub struct ScramVerifier {
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// The salt.
    pub salt: Vec<u8>,
    /// `H(HMAC(SaltedPassword, "Client Key"))`.
    pub stored_key: [u8; 32],
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: [u8; 32],
}

impl std::fmt::Debug for ScramVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScramVerifier(..)")
    }
}

impl ScramVerifier {
    /// The verifier of `password` with a fresh random salt.
    pub fn new(password: &str) -> ScramVerifier {
        let mut salt = vec![0u8; 16];
        ring::rand::SystemRandom::new()
            .fill(&mut salt)
            .expect("the system's random source");
        ScramVerifier::with_salt(password, salt, SCRAM_ITERATIONS)
    }

    /// The verifier of `password` for a given salt and iteration count.
    pub fn with_salt(password: &str, salt: Vec<u8>, iterations: u32) -> ScramVerifier {
        let salted = salted_password(password, &salt, iterations);
        let client_key = hmac_sha256(&salted, b"Client Key");
        ScramVerifier {
            iterations,
            stored_key: sha256(&client_key),
            server_key: hmac_sha256(&salted, b"Server Key"),
            salt,
        }
    }

    /// A verifier no password matches, for names the file does not have (so that an
    /// exchange for an unknown user runs the same course as one with a wrong password).
    pub fn unmatchable() -> ScramVerifier {
        let mut bytes = [0u8; 48];
        ring::rand::SystemRandom::new()
            .fill(&mut bytes)
            .expect("the system's random source");
        let mut stored_key = [0u8; 32];
        stored_key.copy_from_slice(&bytes[16..48]);
        ScramVerifier {
            iterations: SCRAM_ITERATIONS,
            salt: bytes[..16].to_vec(),
            stored_key,
            server_key: stored_key,
        }
    }

    /// Parses PostgreSQL's text form.
    pub fn parse(text: &str) -> Result<ScramVerifier, String> {
        let rest = text
            .strip_prefix("SCRAM-SHA-256$")
            .ok_or("it must start with SCRAM-SHA-256$ (run `shoplake users add`)")?;
        let (params, keys) = rest
            .split_once('$')
            .ok_or("expected <iterations>:<salt>$<StoredKey>:<ServerKey>")?;
        let (iterations, salt) = params
            .split_once(':')
            .ok_or("expected <iterations>:<salt>")?;
        let (stored, server) = keys
            .split_once(':')
            .ok_or("expected <StoredKey>:<ServerKey>")?;
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| format!("{iterations:?} is not an iteration count"))?;
        if iterations < SCRAM_ITERATIONS {
            return Err(format!(
                "{iterations} iterations is fewer than SCRAM's minimum of {SCRAM_ITERATIONS}"
            ));
        }
        let decode = |what: &str, text: &str| {
            BASE64
                .decode(text)
                .map_err(|_| format!("the {what} is not base64"))
        };
        let salt = decode("salt", salt)?;
        let key = |what: &str, text: &str| -> Result<[u8; 32], String> {
            decode(what, text)?
                .try_into()
                .map_err(|_| format!("the {what} is not 32 bytes"))
        };
        Ok(ScramVerifier {
            iterations,
            salt,
            stored_key: key("stored key", stored)?,
            server_key: key("server key", server)?,
        })
    }

    /// Whether `password` is the one this verifier was made from.
    pub fn matches(&self, password: &str) -> bool {
        let salted = salted_password(password, &self.salt, self.iterations);
        let stored = sha256(&hmac_sha256(&salted, b"Client Key"));
        constant_time_eq(&stored, &self.stored_key)
    }

    /// Checks a SCRAM client proof over `auth_message`; on success, the server signature
    /// that proves to the client that the server knows the verifier.
    pub fn check_proof(&self, auth_message: &[u8], proof: &[u8]) -> Option<[u8; 32]> {
        if proof.len() != 32 {
            return None;
        }
        let signature = hmac_sha256(&self.stored_key, auth_message);
        let mut client_key = [0u8; 32];
        for (i, byte) in client_key.iter_mut().enumerate() {
            *byte = proof[i] ^ signature[i];
        }
        constant_time_eq(&sha256(&client_key), &self.stored_key)
            .then(|| hmac_sha256(&self.server_key, auth_message))
    }
}

impl std::fmt::Display for ScramVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SCRAM-SHA-256${}:{}${}:{}",
            self.iterations,
            BASE64.encode(&self.salt),
            BASE64.encode(self.stored_key),
            BASE64.encode(self.server_key)
        )
    }
}

/// `Hi(Normalize(password), salt, i)` of RFC 5802; like PostgreSQL, a password SASLprep
/// refuses is used as it is.
fn salted_password(password: &str, salt: &[u8], iterations: u32) -> [u8; 32] {
    let normalized = stringprep::saslprep(password)
        .map(|p| p.into_owned())
        .unwrap_or_else(|_| password.to_string());
    let mut out = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        std::num::NonZeroU32::new(iterations.max(1)).expect("non-zero"),
        salt,
        normalized.as_bytes(),
        &mut out,
    );
    out
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut out = [0u8; 32];
    out.copy_from_slice(hmac::sign(&key, message).as_ref());
    out
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, bytes).as_ref());
    out
}

/// Compares without stopping at the first difference (no timing hint of a secret).
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's SCRAM-SHA-256 example: user "user", password "pencil".
    #[test]
    fn the_rfc_7677_exchange_verifies_and_signs_as_the_rfc_says() {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let verifier = ScramVerifier::with_salt("pencil", salt, 4096);
        let client_first_bare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let without_proof = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let auth = format!("{client_first_bare},{server_first},{without_proof}");
        let proof = BASE64
            .decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .unwrap();
        let signature = verifier.check_proof(auth.as_bytes(), &proof).unwrap();
        assert_eq!(
            BASE64.encode(signature),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        let mut wrong = proof.clone();
        wrong[0] ^= 1;
        assert!(verifier.check_proof(auth.as_bytes(), &wrong).is_none());
    }

    #[test]
    fn a_verifier_reads_back_and_matches_its_password_only() {
        let verifier = ScramVerifier::new("s3cret wörd");
        let text = verifier.to_string();
        assert!(text.starts_with("SCRAM-SHA-256$4096:"));
        let back = ScramVerifier::parse(&text).unwrap();
        assert_eq!(back, verifier);
        assert!(back.matches("s3cret wörd"));
        assert!(!back.matches("s3cret word"));
        assert!(!ScramVerifier::unmatchable().matches(""));
    }

    #[test]
    fn bad_verifiers_are_refused_with_the_reason() {
        for (text, reason) in [
            ("hunter2", "must start with SCRAM-SHA-256$"),
            ("SCRAM-SHA-256$4096:abc", "expected <iterations>"),
            (
                "SCRAM-SHA-256$10:c2FsdA==$a:b",
                "fewer than SCRAM's minimum",
            ),
            ("SCRAM-SHA-256$4096:***$a:b", "salt is not base64"),
            (
                "SCRAM-SHA-256$4096:c2FsdA==$c2FsdA==:c2FsdA==",
                "not 32 bytes",
            ),
        ] {
            let error = ScramVerifier::parse(text).unwrap_err();
            assert!(error.contains(reason), "{text}: {error}");
        }
    }

    #[test]
    fn roles_see_their_layers_and_tables() {
        let text = format!(
            r#"
            [roles.merchandiser]
            base = "analyst"
            schemas = ["clean"]
            tables = ["quality.results"]

            [users.ana]
            role = "analyst"
            password = "{a}"

            [users.mia]
            role = "merchandiser"
            password = "{m}"

            [users.eve]
            role = "engineer"
            password = "{e}"
            "#,
            a = ScramVerifier::new("a"),
            m = ScramVerifier::new("m"),
            e = ScramVerifier::new("e"),
        );
        let users = Users::parse(&text).unwrap();
        assert_eq!(users.len(), 3);
        let ana = &users.get("ana").unwrap().role;
        assert!(ana.sees("model", "fact_user_events"));
        assert!(!ana.sees("raw", "events"));
        assert!(!ana.sees("clean", "events"));
        let mia = &users.get("mia").unwrap().role;
        assert!(mia.sees("model", "mart_funnel_daily"));
        assert!(mia.sees("clean", "events"));
        assert!(mia.sees("quality", "results"));
        assert!(!mia.sees("quality", "rejects"));
        let eve = &users.get("eve").unwrap().role;
        assert!(LAYERS.iter().all(|layer| eve.sees(layer, "anything")));
        assert!(users.authenticate("mia", "m").is_some());
        assert!(users.authenticate("mia", "a").is_none());
        assert!(users.authenticate("nobody", "m").is_none());
    }

    #[test]
    fn bad_users_files_name_what_is_wrong() {
        let v = ScramVerifier::new("x");
        for (text, reason) in [
            (
                format!("[users.a]\nrole = \"boss\"\npassword = \"{v}\""),
                "role \"boss\" is not defined",
            ),
            (
                "[users.a]\nrole = \"analyst\"\npassword = \"plain\"".to_string(),
                "not a SCRAM-SHA-256 verifier",
            ),
            (
                format!("[users.a]\nrole = \"analyst\"\npassword = \"{v}\"\nextra = 1"),
                "unknown field",
            ),
            ("[roles.analyst]\nschemas = []".to_string(), "built in"),
            (
                "[roles.r]\nschemas = [\"secret\"]".to_string(),
                "not a layer",
            ),
            (
                "[roles.r]\ntables = [\"raw.nope\"]".to_string(),
                "not a lake table",
            ),
            (
                "[roles.r]\nbase = \"root\"".to_string(),
                "not a built-in role",
            ),
            (
                format!("[users.\"a b\"]\nrole = \"analyst\"\npassword = \"{v}\""),
                "not a user name",
            ),
        ] {
            let error = Users::parse(&text).unwrap_err();
            assert!(error.contains(reason), "{text}: {error}");
        }
    }

    #[test]
    fn add_user_writes_a_verifier_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        add_user(&path, "ana", "analyst", "pw1").unwrap();
        add_user(&path, "eve", "engineer", "pw2").unwrap();
        add_user(&path, "ana", "engineer", "pw3").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("pw1") && !text.contains("pw3"));
        let users = Users::load(&path).unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(users.get("ana").unwrap().role.name, "engineer");
        assert!(users.authenticate("ana", "pw3").is_some());
        assert!(users.authenticate("ana", "pw1").is_none());
        assert!(users.authenticate("eve", "pw2").is_some());
        assert!(add_user(&path, "x", "boss", "pw").is_err());
        assert!(Users::load(&path).unwrap().get("x").is_none());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
