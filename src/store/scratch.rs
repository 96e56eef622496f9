//! Throw-away PostgreSQL databases for tests and benchmarks.

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};

use super::{Result, StoreError};

fn valid_name(name: &str) -> Result<()> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(StoreError::Invalid(format!(
            "{name:?} is not a plain database name"
        )));
    }
    Ok(())
}

/// Creates database `name` on the server of `server_url` (dropping a leftover of the same name)
/// and returns a URL for it.
pub async fn create_postgres_database(server_url: &str, name: &str) -> Result<String> {
    valid_name(name)?;
    let options = PgConnectOptions::from_str(server_url)?;
    let mut conn = options
        .connect()
        .await
        .map_err(|source| StoreError::Connect {
            url: super::redact_password(server_url),
            source,
        })?;
    sqlx::query(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await?;
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(url_with_database(server_url, name))
}

pub async fn drop_postgres_database(server_url: &str, name: &str) -> Result<()> {
    valid_name(name)?;
    let mut conn = PgConnectOptions::from_str(server_url)?.connect().await?;
    sqlx::query(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await?;
    conn.close().await?;
    Ok(())
}

/// `postgres://u@h:5432/postgres?x=y` with its database replaced by `name`.
pub fn url_with_database(server_url: &str, name: &str) -> String {
    let (base, query) = match server_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (server_url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_is_replaced_in_urls() {
        assert_eq!(
            url_with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            url_with_database("postgres://u:p@h/db?sslmode=disable", "t2"),
            "postgres://u:p@h/t2?sslmode=disable"
        );
        assert_eq!(url_with_database("postgres://h", "t3"), "postgres://h/t3");
        assert!(valid_name("bad name; drop").is_err());
    }
}
