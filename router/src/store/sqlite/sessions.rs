//! Agents' sessions ended early: one row per revoked session, until it would have expired.

use async_trait::async_trait;
use rusqlite::params;

use super::SqliteStore;
use crate::domain::clock::now_secs;
use crate::store::{Durability, RevokedSession, SessionStore, StoreError};

#[async_trait]
impl SessionStore for SqliteStore {
    async fn revoke_session(&self, session: &RevokedSession) -> Result<(), StoreError> {
        let RevokedSession { id, expires_at } = session.clone();
        self.write(Durability::Synced, move |conn| {
            conn.prepare_cached(
                "INSERT INTO revoked_sessions (id, expires_at) VALUES (?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET expires_at = max(expires_at, ?2)",
            )?
            .execute(params![id, expires_at])?;
            // What has expired by now is refused anyway: the table holds only live ones.
            conn.prepare_cached("DELETE FROM revoked_sessions WHERE expires_at <= ?1")?
                .execute([now_secs()])?;
            Ok(())
        })
        .await
    }

    async fn revoked_sessions(&self, now: i64) -> Result<Vec<RevokedSession>, StoreError> {
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(
                "SELECT id, expires_at FROM revoked_sessions WHERE expires_at > ?1 ORDER BY id",
            )?;
            let rows = statement.query_map([now], |row| {
                Ok(RevokedSession {
                    id: row.get(0)?,
                    expires_at: row.get(1)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }
}
