//! Logging in: SCRAM-SHA-256 against the users file's verifiers, or, on loopback with no users
//! file, anyone as a local engineer.
//!
//! pgwire's own SCRAM handler wants the salted password (which lets whoever holds it log in);
//! this one checks the client's proof against PostgreSQL-style verifiers (the stored key and
//! the server key), so the users file grants nothing to whoever reads it. Channel binding
//! (SCRAM-SHA-256-PLUS) is not offered.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use datafusion_postgres::pgwire;
use futures::{Sink, SinkExt};
use pgwire::api::auth::{
    DefaultServerParameterProvider, StartupHandler, finish_authentication, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use pgwire::api::{ClientInfo, METADATA_USER, PgWireConnectionState};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::startup::Authentication;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use ring::rand::SecureRandom;

use super::ConnectionState;
use super::cancel::Cancels;
use super::policy::error;
use crate::users::{Role, ScramVerifier, User, Users};

const MECHANISM: &str = "SCRAM-SHA-256";

/// The PostgreSQL version clients are told (they parse it), then shoplake's own.
pub const SERVER_VERSION: &str = concat!("16.6 (shoplake ", env!("CARGO_PKG_VERSION"), ")");

/// A connection's login.
pub(crate) struct Login {
    users: Option<Arc<Users>>,
    /// Refuse a client off loopback that did not ask for TLS (TLS is configured).
    tls_required: bool,
    connection: Arc<ConnectionState>,
    exchange: Mutex<Exchange>,
    parameters: DefaultServerParameterProvider,
    cancels: Arc<Cancels>,
}

// One exchange a connection: boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Exchange {
    /// No SCRAM message yet.
    Start,
    /// The server-first message was sent.
    ServerFirstSent {
        user: Option<User>,
        verifier: ScramVerifier,
        gs2_header: String,
        client_first_bare: String,
        server_first: String,
        nonce: String,
    },
    /// Done (or failed).
    Over,
}

impl Login {
    pub(crate) fn new(
        users: Option<Arc<Users>>,
        tls_required: bool,
        connection: Arc<ConnectionState>,
        cancels: Arc<Cancels>,
    ) -> Login {
        let mut parameters = DefaultServerParameterProvider::default();
        parameters.server_version = SERVER_VERSION.to_string();
        parameters.is_superuser = false;
        parameters.default_transaction_read_only = true;
        Login {
            users,
            tls_required,
            connection,
            exchange: Mutex::new(Exchange::Start),
            parameters,
            cancels,
        }
    }

    async fn finish<C>(&self, client: &mut C, role: Role) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let (pid, secret) = self.cancels.register(&*client, &self.connection.cancel);
        let _ = self.connection.pid.set(pid);
        client.set_pid_and_secret_key(pid, secret);
        self.connection.set_role(role);
        finish_authentication(client, &self.parameters).await
    }

    fn exchange(&self) -> std::sync::MutexGuard<'_, Exchange> {
        self.exchange.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An error that ends the connection.
fn fatal(code: &str, message: impl Into<String>) -> PgWireError {
    let mut info = error(code, message);
    info.severity = "FATAL".to_string();
    PgWireError::UserError(Box::new(info))
}

fn failed(user: &str) -> PgWireError {
    fatal(
        "28P01",
        format!("password authentication failed for user \"{user}\""),
    )
}

fn needs_tls() -> PgWireError {
    fatal(
        "28000",
        "this server takes connections from other hosts over TLS only: connect with sslmode=require",
    )
}

fn malformed(what: &str) -> PgWireError {
    fatal("08P01", format!("malformed SCRAM message: {what}"))
}

/// Whether a client must be refused for want of TLS: TLS is configured, the connection is
/// not encrypted, and the peer is not this host (an IPv4 peer of an IPv6 listener included).
fn refused_without_tls(tls_required: bool, secure: bool, peer: std::net::IpAddr) -> bool {
    tls_required && !secure && !peer.to_canonical().is_loopback()
}

/// The value of attribute `key` (`r`, `c`, `p`, ...) in a SCRAM message.
fn attribute(message: &str, key: char) -> Option<&str> {
    message.split(',').find_map(|part| {
        let mut chars = part.chars();
        (chars.next() == Some(key) && chars.next() == Some('=')).then(|| &part[2..])
    })
}

#[async_trait]
impl StartupHandler for Login {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                if refused_without_tls(
                    self.tls_required,
                    client.is_secure(),
                    client.socket_addr().ip(),
                ) {
                    return Err(needs_tls());
                }
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                if self.users.is_none() {
                    // Loopback without a users file (the listener refuses anything else).
                    return self.finish(client, Role::engineer()).await;
                }
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                client
                    .send(PgWireBackendMessage::Authentication(Authentication::SASL(
                        vec![MECHANISM.to_string()],
                    )))
                    .await?;
            }
            PgWireFrontendMessage::PasswordMessageFamily(message) => {
                let Some(users) = &self.users else {
                    return Err(malformed("no password was asked for"));
                };
                let name = client
                    .metadata()
                    .get(METADATA_USER)
                    .cloned()
                    .unwrap_or_default();
                let state = std::mem::replace(&mut *self.exchange(), Exchange::Over);
                match state {
                    Exchange::Start => {
                        let initial = message.into_sasl_initial_response()?;
                        if initial.auth_method != MECHANISM {
                            return Err(malformed("only SCRAM-SHA-256 is offered"));
                        }
                        let data = initial
                            .data
                            .ok_or_else(|| malformed("empty client-first"))?;
                        let text = std::str::from_utf8(&data)
                            .map_err(|_| malformed("client-first is not UTF-8"))?;
                        // gs2-header: "n,," or "y,," (no channel binding); "p=..." asks for it.
                        let (flag, rest) = text
                            .split_once(',')
                            .ok_or_else(|| malformed("no gs2 header"))?;
                        if flag != "n" && flag != "y" {
                            return Err(malformed("channel binding is not offered"));
                        }
                        let (_authzid, bare) = rest
                            .split_once(',')
                            .ok_or_else(|| malformed("no gs2 header"))?;
                        let client_nonce =
                            attribute(bare, 'r').ok_or_else(|| malformed("no client nonce"))?;
                        if client_nonce.is_empty() || !client_nonce.is_ascii() {
                            return Err(malformed("bad client nonce"));
                        }
                        let user = users.get(&name).cloned();
                        let verifier = user
                            .as_ref()
                            .map(|u| u.verifier.clone())
                            .unwrap_or_else(ScramVerifier::unmatchable);
                        let mut server_nonce = [0u8; 18];
                        ring::rand::SystemRandom::new()
                            .fill(&mut server_nonce)
                            .map_err(|_| malformed("no random source"))?;
                        let nonce = format!("{client_nonce}{}", BASE64.encode(server_nonce));
                        let server_first = format!(
                            "r={nonce},s={},i={}",
                            BASE64.encode(&verifier.salt),
                            verifier.iterations
                        );
                        client
                            .send(PgWireBackendMessage::Authentication(
                                Authentication::SASLContinue(server_first.clone().into()),
                            ))
                            .await?;
                        *self.exchange() = Exchange::ServerFirstSent {
                            user,
                            verifier,
                            gs2_header: format!("{flag},{_authzid},"),
                            client_first_bare: bare.to_string(),
                            server_first,
                            nonce,
                        };
                    }
                    Exchange::ServerFirstSent {
                        user,
                        verifier,
                        gs2_header,
                        client_first_bare,
                        server_first,
                        nonce,
                    } => {
                        let response = message.into_sasl_response()?;
                        let text = std::str::from_utf8(&response.data)
                            .map_err(|_| malformed("client-final is not UTF-8"))?;
                        let (without_proof, proof) = text
                            .rsplit_once(",p=")
                            .ok_or_else(|| malformed("no proof"))?;
                        if attribute(without_proof, 'c') != Some(&BASE64.encode(&gs2_header))
                            || attribute(without_proof, 'r') != Some(nonce.as_str())
                        {
                            return Err(malformed("channel binding or nonce mismatch"));
                        }
                        let proof = BASE64
                            .decode(proof)
                            .map_err(|_| malformed("proof is not base64"))?;
                        let auth_message =
                            format!("{client_first_bare},{server_first},{without_proof}");
                        let signature = verifier.check_proof(auth_message.as_bytes(), &proof);
                        let (Some(user), Some(signature)) = (user, signature) else {
                            return Err(failed(&name));
                        };
                        client
                            .send(PgWireBackendMessage::Authentication(
                                Authentication::SASLFinal(
                                    format!("v={}", BASE64.encode(signature)).into(),
                                ),
                            ))
                            .await?;
                        self.finish(client, user.role).await?;
                    }
                    Exchange::Over => return Err(malformed("the exchange is over")),
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_loopback_a_client_needs_tls_once_it_is_configured() {
        let ip = |text: &str| text.parse::<std::net::IpAddr>().unwrap();
        assert!(refused_without_tls(true, false, ip("10.0.0.1")));
        assert!(refused_without_tls(true, false, ip("2001:db8::1")));
        assert!(!refused_without_tls(true, true, ip("10.0.0.1")));
        assert!(!refused_without_tls(false, false, ip("10.0.0.1")));
        assert!(!refused_without_tls(true, false, ip("127.0.0.1")));
        assert!(!refused_without_tls(true, false, ip("::1")));
        assert!(!refused_without_tls(true, false, ip("::ffff:127.0.0.1")));
    }
}
