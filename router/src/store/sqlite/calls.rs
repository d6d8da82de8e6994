//! Calls and permissions: each stored as a JSON document with a version, changed only
//! by compare-and-set; one live call per user checked in the same write as the insert.

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use super::SqliteStore;
use switchboard_protocol::{Bsuid, CallId, WaId};

use crate::domain::call::Call;
use crate::domain::permission::Permission;
use crate::store::{CallStore, Durability, StoreError, Versioned};

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Unavailable(e.into()))
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Unavailable(e.into()))
}

/// The keys a user is found by: phone number and BSUID, either may be missing.
fn user_keys(user: &switchboard_protocol::User) -> (Option<&str>, Option<&str>) {
    (user.wa_id.as_deref(), user.user_id.as_deref())
}

fn live_call_of_user(conn: &Connection, call: &Call) -> Result<Option<String>, StoreError> {
    let (phone, bsuid) = user_keys(&call.user);
    Ok(conn
        .prepare_cached(
            "SELECT id FROM calls WHERE live = 1 AND id != ?3
               AND ((?1 IS NOT NULL AND user_phone = ?1) OR (?2 IS NOT NULL AND user_bsuid = ?2))
             LIMIT 1",
        )?
        .query_row(params![phone, bsuid, call.id.as_str()], |row| row.get(0))
        .optional()?)
}

fn write_call(conn: &Connection, call: &Call, version: i64) -> Result<(), StoreError> {
    let (phone, bsuid) = user_keys(&call.user);
    conn.prepare_cached(
        "INSERT INTO calls (id, user_phone, user_bsuid, live, created_at, doc, version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (id) DO UPDATE SET user_phone = ?2, user_bsuid = ?3, live = ?4,
             created_at = ?5, doc = ?6, version = ?7",
    )?
    .execute(params![
        call.id.as_str(),
        phone,
        bsuid,
        call.is_live(),
        call.created_at,
        to_json(call)?,
        version
    ])?;
    Ok(())
}

fn call_version(conn: &Connection, id: &str) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT version FROM calls WHERE id = ?1")?
        .query_row([id], |row| row.get(0))
        .optional()?)
}

fn check_version(found: Option<i64>, expected: Option<i64>, what: &str) -> Result<i64, StoreError> {
    if found == expected {
        Ok(expected.map_or(1, |v| v + 1))
    } else {
        Err(StoreError::Conflict(format!("{what} changed meanwhile")))
    }
}

fn permission_rows(
    conn: &Connection,
    phone: Option<&str>,
    bsuid: Option<&str>,
) -> Result<Vec<(i64, String, i64)>, StoreError> {
    let rows = conn
        .prepare_cached(
            "SELECT id, doc, version FROM permissions
             WHERE (?1 IS NOT NULL AND user_phone = ?1) OR (?2 IS NOT NULL AND user_bsuid = ?2)
             ORDER BY version DESC",
        )?
        .query_map(params![phone, bsuid], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

#[async_trait]
impl CallStore for SqliteStore {
    async fn insert_call(
        &self,
        call: &Call,
        one_per_user: bool,
        durability: Durability,
    ) -> Result<i64, StoreError> {
        let call = call.clone();
        self.write(durability, move |conn| {
            if call_version(conn, &call.id)?.is_some() {
                return Err(StoreError::Conflict(format!(
                    "call {} already exists",
                    call.id
                )));
            }
            if one_per_user {
                if let Some(live) = live_call_of_user(conn, &call)? {
                    return Err(StoreError::Conflict(format!(
                        "{} already has a live call ({live})",
                        call.user.display_name()
                    )));
                }
            }
            write_call(conn, &call, 1)?;
            Ok(1)
        })
        .await
    }

    async fn load_call(&self, id: &CallId) -> Result<Option<Versioned<Call>>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| {
            let row: Option<(String, i64)> = conn
                .prepare_cached("SELECT doc, version FROM calls WHERE id = ?1")?
                .query_row([id.as_str()], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()?;
            row.map(|(doc, version)| {
                Ok(Versioned {
                    value: from_json(&doc)?,
                    version,
                })
            })
            .transpose()
        })
        .await
    }

    async fn update_call(
        &self,
        call: &Call,
        version: i64,
        durability: Durability,
    ) -> Result<i64, StoreError> {
        let call = call.clone();
        self.write(durability, move |conn| {
            let next = check_version(call_version(conn, &call.id)?, Some(version), "the call")?;
            write_call(conn, &call, next)?;
            Ok(next)
        })
        .await
    }

    async fn promote_call(
        &self,
        local_id: &CallId,
        call: &Call,
        version: Option<i64>,
    ) -> Result<i64, StoreError> {
        let (local_id, call) = (local_id.to_owned(), call.clone());
        self.write(Durability::Synced, move |conn| {
            let next = check_version(call_version(conn, &call.id)?, version, "the call")?;
            conn.prepare_cached("DELETE FROM calls WHERE id = ?1")?
                .execute([local_id.as_str()])?;
            write_call(conn, &call, next)?;
            Ok(next)
        })
        .await
    }

    async fn list_calls(&self, before: Option<i64>, limit: usize) -> Result<Vec<Call>, StoreError> {
        self.read(move |conn| {
            let docs: Vec<String> = conn
                .prepare_cached(
                    "SELECT doc FROM calls WHERE (?1 IS NULL OR created_at < ?1)
                     ORDER BY created_at DESC, id LIMIT ?2",
                )?
                .query_map(
                    params![before, i64::try_from(limit).unwrap_or(i64::MAX)],
                    |row| row.get(0),
                )?
                .collect::<Result<_, _>>()?;
            docs.iter().map(|d| from_json(d)).collect()
        })
        .await
    }

    async fn live_calls(&self) -> Result<Vec<Call>, StoreError> {
        self.read(|conn| {
            let docs: Vec<String> = conn
                .prepare_cached("SELECT doc FROM calls WHERE live = 1 ORDER BY created_at")?
                .query_map([], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            docs.iter().map(|d| from_json(d)).collect()
        })
        .await
    }

    async fn load_permission(
        &self,
        phone: Option<&WaId>,
        bsuid: Option<&Bsuid>,
    ) -> Result<Option<Versioned<Permission>>, StoreError> {
        let (phone, bsuid) = (phone.cloned(), bsuid.cloned());
        self.read(move |conn| {
            permission_rows(conn, phone.as_deref(), bsuid.as_deref())?
                .into_iter()
                .next()
                .map(|(_, doc, version)| {
                    Ok(Versioned {
                        value: from_json(&doc)?,
                        version,
                    })
                })
                .transpose()
        })
        .await
    }

    async fn save_permission(
        &self,
        permission: &Permission,
        version: Option<i64>,
    ) -> Result<i64, StoreError> {
        let permission = permission.clone();
        self.write(Durability::Synced, move |conn| {
            let (phone, bsuid) = user_keys(&permission.user);
            let rows = permission_rows(conn, phone, bsuid)?;
            let next = check_version(rows.first().map(|r| r.2), version, "the permission")?;
            // A user first known by number and later by BSUID (or the reverse) may have two
            // records; the one being saved carries what both knew, so the others go.
            for (id, _, _) in &rows {
                conn.prepare_cached("DELETE FROM permissions WHERE id = ?1")?
                    .execute([id])?;
            }
            conn.prepare_cached(
                "INSERT INTO permissions (user_phone, user_bsuid, doc, version) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![phone, bsuid, to_json(&permission)?, next])?;
            Ok(next)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use switchboard_protocol::User;

    use super::*;
    use crate::store::sqlite::OpenMode;

    /// Records written before Meta sent BSUIDs kept `"user_id":""`; they read as a user
    /// without one, and are still found by number.
    #[tokio::test]
    async fn a_call_stored_with_an_empty_user_id_reads_as_a_user_without_one() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = SqliteStore::open(dir.path(), OpenMode::Server).unwrap();
        let user = User {
            wa_id: Some("12125550100".into()),
            ..User::default()
        };
        let call = Call::dialing("wacid.old".into(), user, "asha".into(), 1_000);
        store
            .insert_call(&call, true, Durability::Synced)
            .await
            .unwrap();
        let path = dir.path().join("switchboard.db");
        let raw = Connection::open(&path).unwrap();
        let rewritten = raw
            .execute(
                "UPDATE calls SET doc = json_set(doc, '$.user.user_id', '') WHERE id = 'wacid.old'",
                [],
            )
            .unwrap();
        assert_eq!(rewritten, 1);

        let loaded = store
            .load_call(&"wacid.old".into())
            .await
            .unwrap()
            .expect("stored");
        assert_eq!(loaded.value.user.user_id, None);
        assert_eq!(loaded.value.user, call.user);
        let again = Call::dialing("wacid.new".into(), call.user.clone(), "ben".into(), 2_000);
        let refused = store.insert_call(&again, true, Durability::Synced).await;
        assert!(
            matches!(refused, Err(StoreError::Conflict(_))),
            "{refused:?}"
        );
    }
}
