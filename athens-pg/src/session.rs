//! Whether each connection gets a PostgreSQL session of its own, as the sync needs: its writer
//! lease is a session advisory lock, its change listener a `LISTEN`, and sqlx prepares named
//! statements per session. Behind a pooler in transaction mode (PgBouncer's `pool_mode =
//! transaction`, for one) a client's consecutive transactions may run in different server
//! sessions and other clients' in its own: a lease could be held, or seen held, by the wrong
//! client. Direct connections and poolers in session mode are fine.

use sea_orm::sqlx::{self, Connection, PgConnection, Row};

use crate::error::PgError;
use crate::source::PgSource;

/// The server process serving `conn`'s current transaction, asked with the simple query protocol
/// (no prepared statement, which a transaction-mode pooler may not carry over).
async fn backend(conn: &mut PgConnection) -> Result<i32, PgError> {
    let row = sqlx::raw_sql("SELECT pg_backend_pid()")
        .fetch_one(&mut *conn)
        .await?;
    Ok(row.try_get(0)?)
}

/// What two sessions saw: `first` asked twice (`first`, `again`) while `second` held a
/// transaction open in between. Two sessions of their own never share a server process, and a
/// session keeps its process.
fn shared(first: i32, second: i32, again: i32) -> Option<String> {
    if first == second {
        Some(format!(
            "two client sessions ran in the same server process ({first})"
        ))
    } else if first != again {
        Some(format!(
            "one client session moved from server process {first} to {again}"
        ))
    } else {
        None
    }
}

impl PgSource {
    /// Fails with a `Misconfigured` error when `database.url` leads to a pooler that shares
    /// server sessions between clients (transaction or statement mode), seen by two sessions of
    /// this source: the sync must connect directly or through a pooler in session mode.
    ///
    /// A pooler that hands a released server session to another client (PgBouncer does, by
    /// default) is caught every time; one that spreads clients round-robin may pass unnoticed.
    pub async fn check_session(&self) -> Result<(), PgError> {
        let options = self.config().connect_options()?;
        let mut first = PgConnection::connect_with(&options).await?;
        let mut second = PgConnection::connect_with(&options).await?;
        let seen = async {
            let before = backend(&mut first).await?;
            sqlx::raw_sql("BEGIN").execute(&mut second).await?;
            let other = backend(&mut second).await?;
            let after = backend(&mut first).await?;
            sqlx::raw_sql("COMMIT").execute(&mut second).await?;
            Ok::<_, PgError>((before, other, after))
        }
        .await;
        first.close().await.ok();
        second.close().await.ok();
        let (before, other, after) = seen?;
        match shared(before, other, after) {
            None => Ok(()),
            Some(seen) => Err(PgError::Misconfigured(format!(
                "database.url leads to a pooler in transaction mode ({seen}): the sync's writer \
                 lease and change listener need a session of their own; connect the sync to \
                 PostgreSQL directly or through a pooler in session mode (docs/operations.md)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_of_their_own_pass_and_shared_processes_are_named() {
        assert_eq!(shared(10, 11, 10), None);
        let same = shared(10, 10, 10).unwrap_or_default();
        assert!(same.contains("same server process (10)"), "{same}");
        let moved = shared(10, 11, 12).unwrap_or_default();
        assert!(moved.contains("from server process 10 to 12"), "{moved}");
    }
}
