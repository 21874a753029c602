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
//! rounds, a few milliseconds; as long for a name that is not a user), off the async workers
//! and two at a time, so a flood of bad logins cannot stall the servers; a check that passed
//! is remembered by a digest of the header, so a dashboard's later calls cost none.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::users::{Users, constant_time_eq};

/// Credentials remembered at most (then forgotten all at once: a login costs one check again).
const REMEMBERED: usize = 4096;

/// The authentication a server asks for.
pub struct Guard {
    token: Option<Arc<str>>,
    users: Option<Arc<Users>>,
    /// Digests of Basic headers that passed, and the user each named.
    passed: Mutex<HashMap<[u8; 32], String>>,
    /// Password checks running at once.
    checks: Semaphore,
}

/// What a request carries that may let it in, taken from it before any wait.
#[derive(Debug, Default)]
pub struct Credentials {
    authorization: Option<String>,
    query: Option<String>,
}

impl Credentials {
    /// `request`'s `Authorization` header and query string.
    pub fn of(request: &Request) -> Credentials {
        Credentials {
            authorization: request
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_string),
            query: request.uri().query().map(str::to_string),
        }
    }
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
            checks: Semaphore::new(2),
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

    /// Checks a request to `route` that carries `credentials`.
    pub async fn check(&self, route: &str, credentials: &Credentials) -> Verdict {
        if !self.is_on() || route == "/healthz" {
            return Verdict::Allowed(None);
        }
        let authorization = credentials.authorization.as_deref();
        if let Some(token) = &self.token {
            let bearer = authorization
                .and_then(|v| v.strip_prefix("Bearer "))
                .is_some_and(|t| constant_time_eq(t.as_bytes(), token.as_bytes()));
            let query = credentials.query.as_deref().is_some_and(|q| {
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
            return self.check_basic(users, basic.trim()).await;
        }
        Verdict::Unauthenticated(self.what_to_send())
    }

    async fn check_basic(&self, users: &Arc<Users>, basic: &str) -> Verdict {
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
        let role = {
            let Ok(_permit) = self.checks.acquire().await else {
                return Verdict::Unauthenticated("the server is stopping".to_string());
            };
            let (users, user) = (users.clone(), name.clone());
            tokio::task::spawn_blocking(move || {
                users.authenticate(&user, &password).map(|u| u.role.clone())
            })
            .await
            .ok()
            .flatten()
        };
        let Some(role) = role else {
            return Verdict::Unauthenticated(format!(
                "password authentication failed for user \"{name}\""
            ));
        };
        if !role.sees_reports() {
            return Verdict::Forbidden(format!(
                "user \"{name}\" has role \"{}\", which does not see the model layer the reports read",
                role.name
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

    /// `Ok(user)` when a request to `route` with `credentials` may be served, else the
    /// answer to send.
    pub async fn admit(
        &self,
        route: &str,
        credentials: &Credentials,
    ) -> Result<Option<String>, Refusal> {
        match self.check(route, credentials).await {
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

    fn sent(uri: &str, authorization: Option<&str>) -> Credentials {
        let mut builder = Request::builder().uri(uri);
        if let Some(a) = authorization {
            builder = builder.header(header::AUTHORIZATION, a);
        }
        Credentials::of(&builder.body(axum::body::Body::empty()).unwrap())
    }

    fn basic(user: &str, password: &str) -> String {
        format!("Basic {}", BASE64.encode(format!("{user}:{password}")))
    }

    #[tokio::test]
    async fn nothing_asked_lets_everyone_in() {
        let guard = Guard::new(Some(String::new()), None);
        assert!(!guard.is_on());
        assert_eq!(
            guard.check("/", &sent("/", None)).await,
            Verdict::Allowed(None)
        );
    }

    #[tokio::test]
    async fn users_log_in_by_basic_and_their_role_must_see_the_reports() {
        let guard = Guard::new(None, Some(users()));
        let check = |auth: Option<String>| {
            let credentials = sent("/api/reports", auth.as_deref());
            let guard = &guard;
            async move { guard.check("/api/reports", &credentials).await }
        };
        let ana = Verdict::Allowed(Some("ana".into()));
        assert_eq!(check(Some(basic("ana", "s3cret"))).await, ana);
        assert_eq!(
            guard.remembered().len(),
            1,
            "a login that passed is remembered"
        );
        assert_eq!(check(Some(basic("ana", "s3cret"))).await, ana);
        assert!(
            matches!(check(Some(basic("ana", "wrong"))).await, Verdict::Unauthenticated(m) if m.contains("\"ana\""))
        );
        assert!(matches!(
            check(Some(basic("nobody", "s3cret"))).await,
            Verdict::Unauthenticated(_)
        ));
        assert_eq!(guard.remembered().len(), 1, "a login that failed is not");
        assert!(
            matches!(check(Some("Basic !!!".into())).await, Verdict::Unauthenticated(m) if m.contains("base64"))
        );
        assert!(matches!(check(None).await, Verdict::Unauthenticated(m) if m.contains("curl -u")));
        let forbidden = check(Some(basic("raw_only", "other"))).await;
        assert!(matches!(&forbidden, Verdict::Forbidden(m) if m.contains("loader")));
        let refused = |auth: Option<String>| {
            let credentials = sent("/api/reports", auth.as_deref());
            let guard = &guard;
            async move { guard.admit("/api/reports", &credentials).await.unwrap_err() }
        };
        assert_eq!(
            refused(Some(basic("raw_only", "other"))).await.status,
            StatusCode::FORBIDDEN
        );
        let unauthenticated = refused(None).await;
        assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);
        let challenge = unauthenticated.challenge.unwrap();
        assert!(challenge.to_str().unwrap().starts_with("Basic realm="));
        // A token is not a password: without a token configured, Bearer is refused.
        assert!(matches!(
            check(Some("Bearer s3cret".into())).await,
            Verdict::Unauthenticated(_)
        ));
        // Health answers everyone.
        assert_eq!(
            guard.check("/healthz", &sent("/healthz", None)).await,
            Verdict::Allowed(None)
        );
    }

    #[tokio::test]
    async fn a_token_is_taken_from_the_header_or_the_page_address() {
        let guard = Guard::new(Some("t0k".into()), Some(users()));
        assert_eq!(
            guard.check("/", &sent("/?token=t0k", None)).await,
            Verdict::Allowed(None)
        );
        assert_eq!(
            guard
                .check("/api/reports", &sent("/api/reports", Some("Bearer t0k")))
                .await,
            Verdict::Allowed(None)
        );
        assert!(matches!(
            guard.check("/", &sent("/?token=t0", None)).await,
            Verdict::Unauthenticated(m) if m.contains("Bearer")
        ));
        assert_eq!(
            guard
                .check("/", &sent("/", Some(&basic("ana", "s3cret"))))
                .await,
            Verdict::Allowed(Some("ana".into()))
        );
    }
}
