//! The runtime role of docs/operations.md "Least privilege", created or updated in one step by a
//! role that is both administrator (`CREATEROLE`) and the tables' owner, such as RDS's master user:
//! what `athens grant-runtime` does on AWS, so that the long-running sync and API log in with only
//! the grants they need.
//!
//! The password never travels in clear: it is sent as a SCRAM-SHA-256 verifier computed here
//! (what `psql`'s `\password` does), so servers that log DDL (`log_statement = ddl`, as deploy/aws
//! sets) log the verifier, from which the password cannot be recovered.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sea_orm::sqlx::{self, AssertSqlSafe};
use sha2::{Digest, Sha256};
use tracing::info;

use crate::error::PgError;
use crate::source::PgSource;
use crate::tables::table_list;

/// PBKDF2 iterations of the verifier: PostgreSQL's own default (`scram_iterations`).
const SCRAM_ITERATIONS: u32 = 4096;

/// The grants of the runtime role once capture is installed, for `role`: the second SQL block of
/// docs/operations.md "Least privilege" (a test of athens-cli checks that they agree).
pub fn runtime_grants(role: &str) -> Vec<String> {
    let read_tables = format!("GRANT SELECT ON {} TO {{role}}", table_list());
    [
        "GRANT USAGE ON SCHEMA public TO {role}",
        read_tables.as_str(),
        "GRANT USAGE ON SCHEMA athens TO {role}",
        "GRANT SELECT, DELETE ON athens.outbox TO {role}",
        "GRANT SELECT, INSERT, UPDATE ON athens.dead_letters, athens.consumer TO {role}",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON athens.rebuild_queue TO {role}",
        "GRANT USAGE, SELECT, UPDATE ON SEQUENCE athens.wakeup TO {role}",
        "GRANT USAGE ON SEQUENCE athens.version TO {role}",
    ]
    .iter()
    .map(|grant| grant.replace("{role}", role))
    .collect()
}

/// A role name Athens will put into SQL unquoted: lowercase letters, digits and `_`.
fn check_role(role: &str) -> Result<(), PgError> {
    let valid = role
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && role.len() <= 63
        && role
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(PgError::config(format!(
            "role name {role:?} must be 1-63 characters of a-z, 0-9 and _, not starting with a digit"
        )))
    }
}

/// The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802/7677): what
/// `CREATE ROLE … PASSWORD '<verifier>'` accepts in place of a clear password.
fn scram_verifier(password: &str, salt: &[u8], iterations: u32) -> Result<String, PgError> {
    let mac = |key: &[u8], parts: &[&[u8]]| -> Result<Vec<u8>, PgError> {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|error| PgError::Config {
            message: format!("scram: {error}"),
            source: Some(Box::new(error)),
        })?;
        for part in parts {
            mac.update(part);
        }
        Ok(mac.finalize().into_bytes().to_vec())
    };
    // PBKDF2-HMAC-SHA256 with one output block: Hi(password, salt, i) of RFC 5802.
    let mut block = mac(password.as_bytes(), &[salt, &1u32.to_be_bytes()])?;
    let mut salted = block.clone();
    for _ in 1..iterations {
        block = mac(password.as_bytes(), &[&block])?;
        for (out, byte) in salted.iter_mut().zip(&block) {
            *out ^= byte;
        }
    }
    let client_key = mac(&salted, &[b"Client Key"])?;
    let stored_key = Sha256::digest(&client_key);
    let server_key = mac(&salted, &[b"Server Key"])?;
    Ok(format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        BASE64.encode(salt),
        BASE64.encode(stored_key),
        BASE64.encode(server_key)
    ))
}

impl PgSource {
    /// Creates `role` (or updates its password), lets it connect to this database and grants it
    /// what [`runtime_grants`] lists (plus `MAINTAIN` on the outbox from PostgreSQL 17 on).
    /// Run it as a role that may create roles and owns the tables, after `install_capture`;
    /// idempotent.
    pub async fn grant_runtime(&self, role: &str, password: &str) -> Result<(), PgError> {
        check_role(role)?;
        if password.len() < 16 {
            return Err(PgError::config(
                "the runtime role's password must be at least 16 characters",
            ));
        }
        self.check_capture().await?;
        let salt: [u8; 16] = rand::random();
        let verifier = scram_verifier(password, &salt, SCRAM_ITERATIONS)?;
        let mut tx = self.pool().begin().await?;
        let (database, version): (String, i32) = sqlx::query_as(
            "SELECT current_database()::text, current_setting('server_version_num')::int",
        )
        .fetch_one(&mut *tx)
        .await?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)")
                .bind(role)
                .fetch_one(&mut *tx)
                .await?;
        let mut statements = vec![
            if exists {
                format!("ALTER ROLE {role} WITH LOGIN PASSWORD '{verifier}'")
            } else {
                format!("CREATE ROLE {role} WITH LOGIN PASSWORD '{verifier}'")
            },
            format!(
                "GRANT CONNECT ON DATABASE \"{}\" TO {role}",
                database.replace('"', "\"\"")
            ),
        ];
        statements.extend(runtime_grants(role));
        if version >= 170_000 {
            statements.push(format!("GRANT MAINTAIN ON athens.outbox TO {role}"));
        }
        for statement in statements {
            sqlx::raw_sql(AssertSqlSafe(statement))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        info!(role, created = !exists, "runtime role granted");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_matches_postgresql() {
        // Computed independently (Python's hashlib.pbkdf2_hmac and hmac, per RFC 5802) for the
        // salt below; that PostgreSQL accepts such verifiers for a login is tested in athens-cli.
        let salt = BASE64.decode("jY/rDGBsJDWAP0ZVeq1cNg==").unwrap();
        assert_eq!(
            scram_verifier("pencil", &salt, 4096).unwrap(),
            "SCRAM-SHA-256$4096:jY/rDGBsJDWAP0ZVeq1cNg==$enW0FHlmkD68fW4nZoAfBEwE+tyAA/UV2EAY18KVDKE=:kWRuFSIF3LvbVyv5Olwp2oE57GIJR2zhd3lmDPCYoJo="
        );
    }

    #[test]
    fn role_names_are_plain_identifiers() {
        for good in ["athens_runtime", "_r", "r2"] {
            check_role(good).unwrap();
        }
        for bad in ["", "Athens", "2r", "a-b", "a;drop", "a b", &"r".repeat(64)] {
            assert!(check_role(bad).is_err(), "{bad:?}");
        }
    }
}
