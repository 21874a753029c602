//! Connecting to the store's database.
//!
//! One URL (`postgresql://user:password@host:port/database?...`) serves both the ordinary
//! connections (tokio-postgres) and the replication connection (libpq, with
//! `replication=database` added). Messages name the host and database, never the password.

use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config, NoTls};

use crate::error::{OltpError, Result, describe};

/// A parsed database URL.
#[derive(Debug, Clone)]
pub struct DbUrl {
    url: String,
    config: Config,
}

impl DbUrl {
    /// Parses `url` (a `postgresql://` URL or a `key=value` connection string).
    pub fn parse(url: &str) -> Result<DbUrl> {
        let mut config = Config::from_str(url).map_err(|e| {
            OltpError::BadUrl(format!(
                "{e} (expected postgresql://user:password@host:port/database)"
            ))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("shoplake");
        }
        Ok(DbUrl {
            url: url.to_string(),
            config,
        })
    }

    /// `host:port/database`, for messages.
    pub fn target(&self) -> String {
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".to_string(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        let db = self
            .config
            .get_dbname()
            .or(self.config.get_user())
            .unwrap_or("postgres");
        format!("{host}:{port}/{db}")
    }

    /// The user the URL connects as (`postgres` when it names none).
    pub fn user(&self) -> String {
        self.config.get_user().unwrap_or("postgres").to_string()
    }

    /// Opens an ordinary connection; its I/O runs on a task of its own.
    pub async fn connect(&self) -> Result<Client> {
        let (client, connection) =
            self.config
                .connect(NoTls)
                .await
                .map_err(|e| OltpError::Connect {
                    target: self.target(),
                    reason: describe(&e),
                })?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("database connection ended: {}", describe(&e));
            }
        });
        Ok(client)
    }

    /// The URL with `replication=database`, for the replication connection, and (unless the
    /// URL sets `options`) ISO dates in UTC, the form the lake's parser reads.
    pub fn replication_url(&self) -> String {
        let has_options = self.url.contains("options=");
        if self.url.contains("://") {
            let sep = if self.url.contains('?') { '&' } else { '?' };
            let mut url = format!("{}{sep}replication=database", self.url);
            if !has_options {
                url.push_str("&options=-c%20DateStyle%3DISO%20-c%20TimeZone%3DUTC");
            }
            url
        } else {
            let mut s = format!("{} replication=database", self.url);
            if !has_options {
                s.push_str(" options='-c DateStyle=ISO -c TimeZone=UTC'");
            }
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_name_no_password() {
        let url = DbUrl::parse("postgresql://shop:secret@db.example:6543/store").unwrap();
        assert_eq!(url.target(), "db.example:6543/store");
        assert_eq!(url.user(), "shop");
        assert!(!url.target().contains("secret"));
        assert_eq!(
            url.replication_url(),
            "postgresql://shop:secret@db.example:6543/store?replication=database\
             &options=-c%20DateStyle%3DISO%20-c%20TimeZone%3DUTC"
        );
        let with_query = DbUrl::parse("postgresql://shop@h/store?connect_timeout=3").unwrap();
        assert!(
            with_query
                .replication_url()
                .contains("connect_timeout=3&replication=database&options=")
        );
        assert!(DbUrl::parse("postgresql://h:notaport/x").is_err());
    }
}
