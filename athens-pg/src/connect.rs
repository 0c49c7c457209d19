//! The first connection to PostgreSQL, made alone before the pool opens: the pool retries a refused
//! connection until its timeout and then reports only `pool timed out`, while one direct attempt
//! fails at once with the real reason, which becomes one sentence naming the setting that fixes it.

use std::io;
use std::time::Duration;

use sea_orm::sqlx::postgres::{PgConnectOptions, PgConnection};
use sea_orm::sqlx::{self, Connection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::PgConfig;
use crate::error::PgError;

/// Opens one connection with `options` and closes it; the error, if any, says what is wrong and how
/// to fix it.
pub(crate) async fn probe(config: &PgConfig, options: &PgConnectOptions) -> Result<(), PgError> {
    if !options.get_host().starts_with('/') {
        speaks_postgres(config, options).await?;
    }
    let attempt = tokio::time::timeout(config.connect_timeout, PgConnection::connect_with(options));
    match attempt.await {
        Ok(Ok(connection)) => {
            connection.close().await.ok();
            Ok(())
        }
        Ok(Err(error)) => Err(explain(config, options, error)),
        Err(_) => Err(PgError::Connect {
            message: format!(
                "PostgreSQL at {} did not answer within {:?}: check the host and port in \
                 database.url (ATHENS_DATABASE_URL), or raise database.connect_timeout",
                target(options),
                config.connect_timeout
            ),
            retryable: true,
            source: None,
        }),
    }
}

/// How long a server has to answer the protocol's first message: a PostgreSQL server answers it at
/// once, while another server on that port (an HTTP one, say) waits for more and never answers.
const FIRST_ANSWER: Duration = Duration::from_secs(3);

/// PostgreSQL's `SSLRequest`: length 8, code 80877103. Every server version answers it with one byte,
/// `S` or `N` (or `E` from a server that refuses it).
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// Checks, over a bare TCP connection, that something answers at the configured address and that it
/// speaks PostgreSQL, so a wrong port is said at once instead of after the driver's timeout.
async fn speaks_postgres(config: &PgConfig, options: &PgConnectOptions) -> Result<(), PgError> {
    let at = target(options);
    let url = &config.url;
    let exchange = async {
        let mut stream = TcpStream::connect((options.get_host(), options.get_port())).await?;
        stream.write_all(&SSL_REQUEST).await?;
        let mut answer = [0u8; 1];
        match tokio::time::timeout(FIRST_ANSWER, stream.read(&mut answer)).await {
            Ok(Ok(1)) => Ok(Some(answer[0])),
            Ok(Ok(_)) => Ok(None),
            Ok(Err(error)) => Err(error),
            Err(_) => Ok(None),
        }
    };
    let unreachable = |error: io::Error| {
        let message = if error.kind() == io::ErrorKind::ConnectionRefused {
            format!(
                "nothing answers at {at} (database.url = {url}): start PostgreSQL there, or set \
                 database.url (ATHENS_DATABASE_URL or --database-url) to your server"
            )
        } else {
            format!(
                "cannot reach PostgreSQL at {at} ({error}): check the host and port in \
                 database.url (ATHENS_DATABASE_URL = {url})"
            )
        };
        PgError::Connect {
            message,
            retryable: true,
            source: Some(sqlx::Error::Io(error)),
        }
    };
    match tokio::time::timeout(config.connect_timeout, exchange).await {
        Ok(Ok(Some(b'S' | b'N' | b'E'))) => Ok(()),
        Ok(Ok(_)) => Err(PgError::Connect {
            message: format!(
                "something answers at {at} but it is not PostgreSQL: check the port in \
                 database.url (ATHENS_DATABASE_URL = {url})"
            ),
            retryable: false,
            source: None,
        }),
        Ok(Err(error)) => Err(unreachable(error)),
        Err(_) => Err(unreachable(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no connection within {:?}", config.connect_timeout),
        ))),
    }
}

/// `host:port` as the driver will use them.
fn target(options: &PgConnectOptions) -> String {
    format!("{}:{}", options.get_host(), options.get_port())
}

/// Turns the driver's refusal into a sentence naming the setting to change.
fn explain(config: &PgConfig, options: &PgConnectOptions, error: sqlx::Error) -> PgError {
    let at = target(options);
    let url = &config.url;
    let user = options.get_username();
    let database = options.get_database().unwrap_or(user);
    let (message, retryable) = match &error {
        sqlx::Error::Io(io) if io.kind() == io::ErrorKind::ConnectionRefused => (
            format!(
                "nothing answers at {at} (database.url = {url}): start PostgreSQL there, or set \
                 database.url (ATHENS_DATABASE_URL or --database-url) to your server"
            ),
            true,
        ),
        sqlx::Error::Io(_) => (
            format!(
                "cannot reach PostgreSQL at {at} (database.url = {url}): check the host and \
                 port in database.url (ATHENS_DATABASE_URL)"
            ),
            true,
        ),
        sqlx::Error::Protocol(_) => (
            format!(
                "something answers at {at} but it is not PostgreSQL: check the port in \
                 database.url (ATHENS_DATABASE_URL = {url})"
            ),
            false,
        ),
        sqlx::Error::Tls(_) => (
            format!(
                "the TLS handshake with PostgreSQL at {at} failed: check sslmode and the \
                 certificates in database.url (ATHENS_DATABASE_URL = {url})"
            ),
            false,
        ),
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("28P01" | "28000") => (
                format!(
                    "PostgreSQL at {at} refused user {user}: fix the user or password in \
                     database.url (ATHENS_DATABASE_URL = {url})"
                ),
                false,
            ),
            Some("3D000") => (
                format!(
                    "database {database} does not exist at {at}: create it (createdb \
                     {database}) or name another in database.url (ATHENS_DATABASE_URL = {url})"
                ),
                false,
            ),
            Some("53300") => (
                format!(
                    "PostgreSQL at {at} has no connection slot left: raise its max_connections \
                     or lower database.max_connections"
                ),
                true,
            ),
            _ => (
                format!("PostgreSQL at {at} refused the connection (database.url = {url})"),
                false,
            ),
        },
        _ => (
            format!("cannot connect to PostgreSQL at {at} (database.url = {url})"),
            false,
        ),
    };
    PgError::Connect {
        message,
        retryable,
        source: Some(error),
    }
}
