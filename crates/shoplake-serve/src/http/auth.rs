//! Who may read the dashboard and the API.
//!
//! - With a users file: the users of the PostgreSQL endpoint, by HTTP Basic (`curl -u`, and
//!   the browser's own login prompt, which then sends it with every call the page makes).
//!   A user's role must see the `model` layer, which the reports read.
//! - With a token: `Authorization: Bearer TOKEN`, or `?token=TOKEN` on the page (it passes
//!   the token on to the API). A service or a shared screen that has no user.
//! - Neither (loopback only, which `bind` enforces): everyone.
//!
//! `/healthz` answers everyone. A password is checked by PBKDF2 (the SCRAM verifier's 4096
//! rounds, a few milliseconds); a check that passed is remembered by a digest of the header,
//! so the dozen calls a dashboard makes cost one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::users::Users;

/// Credentials remembered at most (then forgotten all at once: a login costs one check again).
const REMEMBERED: usize = 4096;

/// The authentication a server asks for.
pub struct Guard {
    token: Option<Arc<str>>,
    users: Option<Arc<Users>>,
    /// Digests of Basic headers that passed, and the user each named.
    passed: Mutex<HashMap<[u8; 32], String>>,
}

/// What a request is let do.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Served (and by whom, when a user logged in).
    Allowed(Option<String>),
    /// No or wrong credentials: 401.
    Unauthenticated(String),
    /// A user whose role does not see the reports: 403.
    Forbidden(String),
}

/// A refused request's answer.
#[derive(Debug)]
pub struct Refusal {
    /// 401 or 403.
    pub status: StatusCode,
    /// What to send instead.
    pub message: String,
    /// `WWW-Authenticate`, for the browser's login prompt.
    pub challenge: Option<HeaderValue>,
}

impl Guard {
    /// A guard asking for `token` or one of `users`; neither lets everyone in.
    pub fn new(token: Option<String>, users: Option<Arc<Users>>) -> Guard {
        Guard {
            token: token.filter(|t| !t.is_empty()).map(Arc::from),
            users,
            passed: Mutex::new(HashMap::new()),
        }
    }

    /// Whether anything is asked for.
    pub fn is_on(&self) -> bool {
        self.token.is_some() || self.users.is_some()
    }

    /// Whether users log in (the 401 then asks the browser for a login).
    pub fn has_users(&self) -> bool {
        self.users.is_some()
    }

    /// Whether `/?token=` is how the page is opened.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// Checks `request` (its route is `route`).
    pub fn check(&self, route: &str, request: &Request) -> Verdict {
        if !self.is_on() || route == "/healthz" {
            return Verdict::Allowed(None);
        }
        let authorization = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v: &HeaderValue| v.to_str().ok());
        if let Some(token) = &self.token {
            let bearer = authorization
                .and_then(|v| v.strip_prefix("Bearer "))
                .is_some_and(|t| constant_time_eq(t.as_bytes(), token.as_bytes()));
            let query = request.uri().query().is_some_and(|q| {
                q.split('&')
                    .filter_map(|pair| pair.split_once('='))
                    .any(|(k, v)| k == "token" && constant_time_eq(v.as_bytes(), token.as_bytes()))
            });
            if bearer || query {
                return Verdict::Allowed(None);
            }
        }
        if let (Some(users), Some(basic)) = (
            &self.users,
            authorization.and_then(|v| v.strip_prefix("Basic ")),
        ) {
            return self.check_basic(users, basic.trim());
        }
        Verdict::Unauthenticated(self.what_to_send())
    }

    fn check_basic(&self, users: &Users, basic: &str) -> Verdict {
        let digest = ring::digest::digest(&ring::digest::SHA256, basic.as_bytes());
        let key: [u8; 32] = digest.as_ref().try_into().expect("a SHA-256 digest");
        if let Some(name) = self.remembered().get(&key) {
            return Verdict::Allowed(Some(name.clone()));
        }
        let Some((name, password)) = BASE64
            .decode(basic)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|text| {
                text.split_once(':')
                    .map(|(n, p)| (n.to_string(), p.to_string()))
            })
        else {
            return Verdict::Unauthenticated(
                "the Authorization header is not Basic base64(user:password)".to_string(),
            );
        };
        let Some(user) = users.authenticate(&name, &password) else {
            return Verdict::Unauthenticated(format!(
                "password authentication failed for user \"{name}\""
            ));
        };
        if !user.role.sees_reports() {
            return Verdict::Forbidden(format!(
                "user \"{name}\" has role \"{}\", which does not see the model layer the reports read",
                user.role.name
            ));
        }
        let mut passed = self.remembered();
        if passed.len() >= REMEMBERED {
            passed.clear();
        }
        passed.insert(key, name.clone());
        Verdict::Allowed(Some(name))
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], String>> {
        self.passed.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn what_to_send(&self) -> String {
        match (&self.users, &self.token) {
            (Some(_), Some(_)) => "log in: a user of the users file (HTTP Basic, e.g. curl -u NAME), or Authorization: Bearer TOKEN".to_string(),
            (Some(_), None) => "log in: a user of the users file (HTTP Basic, e.g. curl -u NAME)".to_string(),
            _ => "this server needs its token: send Authorization: Bearer TOKEN, or open the page with ?token=TOKEN".to_string(),
        }
    }

    /// `Ok(user)` when `request` may be served, else the answer to send.
    pub fn admit(&self, route: &str, request: &Request) -> Result<Option<String>, Refusal> {
        match self.check(route, request) {
            Verdict::Allowed(user) => Ok(user),
            Verdict::Forbidden(message) => Err(Refusal {
                status: StatusCode::FORBIDDEN,
                message,
                challenge: None,
            }),
            Verdict::Unauthenticated(message) => Err(Refusal {
                status: StatusCode::UNAUTHORIZED,
                message,
                challenge: self.has_users().then(|| {
                    HeaderValue::from_static("Basic realm=\"shoplake\", charset=\"UTF-8\"")
                }),
            }),
        }
    }
}

/// Compares without stopping at the first difference (no timing hint of the token).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::ScramVerifier;

    fn users() -> Arc<Users> {
        let text = format!(
            "[users.ana]\nrole = \"analyst\"\npassword = \"{}\"\n\n[users.raw_only]\nrole = \"loader\"\npassword = \"{}\"\n\n[roles.loader]\nschemas = [\"raw\"]\n",
            ScramVerifier::with_salt("s3cret", b"salt-ana".to_vec(), 4096),
            ScramVerifier::with_salt("other", b"salt-raw".to_vec(), 4096),
        );
        Arc::new(Users::parse(&text).unwrap())
    }

    fn request(uri: &str, authorization: Option<&str>) -> Request {
        let mut builder = Request::builder().uri(uri);
        if let Some(a) = authorization {
            builder = builder.header(header::AUTHORIZATION, a);
        }
        builder.body(axum::body::Body::empty()).unwrap()
    }

    fn basic(user: &str, password: &str) -> String {
        format!("Basic {}", BASE64.encode(format!("{user}:{password}")))
    }

    #[test]
    fn nothing_asked_lets_everyone_in() {
        let guard = Guard::new(Some(String::new()), None);
        assert!(!guard.is_on());
        assert_eq!(
            guard.check("/", &request("/", None)),
            Verdict::Allowed(None)
        );
    }

    #[test]
    fn users_log_in_by_basic_and_their_role_must_see_the_reports() {
        let guard = Guard::new(None, Some(users()));
        let check =
            |auth: Option<&str>| guard.check("/api/reports", &request("/api/reports", auth));
        assert_eq!(
            check(Some(&basic("ana", "s3cret"))),
            Verdict::Allowed(Some("ana".into()))
        );
        // Remembered: the same header passes again (and a wrong one still fails).
        assert_eq!(
            check(Some(&basic("ana", "s3cret"))),
            Verdict::Allowed(Some("ana".into()))
        );
        assert!(
            matches!(check(Some(&basic("ana", "wrong"))), Verdict::Unauthenticated(m) if m.contains("\"ana\""))
        );
        assert!(matches!(
            check(Some(&basic("nobody", "s3cret"))),
            Verdict::Unauthenticated(_)
        ));
        assert!(
            matches!(check(Some("Basic !!!")), Verdict::Unauthenticated(m) if m.contains("base64"))
        );
        assert!(matches!(check(None), Verdict::Unauthenticated(m) if m.contains("curl -u")));
        let forbidden = check(Some(&basic("raw_only", "other")));
        assert!(matches!(&forbidden, Verdict::Forbidden(m) if m.contains("loader")));
        let refused = |auth: Option<&str>| {
            guard
                .admit("/api/reports", &request("/api/reports", auth))
                .unwrap_err()
        };
        assert_eq!(
            refused(Some(&basic("raw_only", "other"))).status,
            StatusCode::FORBIDDEN
        );
        let unauthenticated = refused(None);
        assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);
        let challenge = unauthenticated.challenge.unwrap();
        assert!(challenge.to_str().unwrap().starts_with("Basic realm="));
        // A token is not a password: without a token configured, Bearer is refused.
        assert!(matches!(
            check(Some("Bearer s3cret")),
            Verdict::Unauthenticated(_)
        ));
        // Health answers everyone.
        assert_eq!(
            guard.check("/healthz", &request("/healthz", None)),
            Verdict::Allowed(None)
        );
    }

    #[test]
    fn a_token_is_taken_from_the_header_or_the_page_address() {
        let guard = Guard::new(Some("t0k".into()), Some(users()));
        assert_eq!(
            guard.check("/", &request("/?token=t0k", None)),
            Verdict::Allowed(None)
        );
        assert_eq!(
            guard.check("/api/reports", &request("/api/reports", Some("Bearer t0k"))),
            Verdict::Allowed(None)
        );
        assert!(matches!(
            guard.check("/", &request("/?token=t0", None)),
            Verdict::Unauthenticated(m) if m.contains("Bearer")
        ));
        assert_eq!(
            guard.check("/", &request("/", Some(&basic("ana", "s3cret")))),
            Verdict::Allowed(Some("ana".into()))
        );
    }
}
