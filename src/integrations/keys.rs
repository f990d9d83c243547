//! The encryption keys at run time: a start-up check that the keys read what is stored in
//! every column of `tenancy::sealed::SEALED_COLUMNS`, and rotation of every stored secret to
//! the newest key.

use anyhow::{Context, bail};
use chrono::Utc;
use secrecy::ExposeSecret;
use uuid::Uuid;

use super::crypto::{Binding, Keyring, current_prefix, key_id_of};
use crate::tenancy::sealed::{SEALED_COLUMNS, SealedColumn};
use crate::tenancy::{Db, unscoped};

const ROTATION_BATCH: u64 = 100;

/// Where a value of `column` in `organization`'s row `row` belongs: what its ciphertext is
/// bound to.
pub fn binding(column: SealedColumn, organization: Uuid, row: Uuid) -> Binding<'static> {
    Binding {
        organization,
        table: column.table,
        column: column.column,
        row,
    }
}

/// Refuses to start with keys that cannot read the newest stored secret of every encrypted
/// column: a missing or wrong key would otherwise surface only when a job needed it.
pub async fn check_against_stored(db: &Db, keyring: &Keyring) -> anyhow::Result<()> {
    for column in SEALED_COLUMNS {
        let Some(stored) = unscoped::ciphertexts::newest_sealed(db, column, Utc::now()).await? else {
            continue;
        };
        let (table, name) = (column.table, column.column);
        let key_id = key_id_of(&stored.value).unwrap_or("?");
        if !keyring.has_key(key_id) {
            bail!(
                "ENCRYPTION_KEYS lacks key {key_id:?}, which stored {table}.{name} values are encrypted with"
            );
        }
        if keyring
            .decrypt(&stored.value, binding(column, stored.organization_id, stored.id))
            .is_err()
        {
            bail!(
                "ENCRYPTION_KEYS key {key_id:?} does not decrypt stored {table}.{name} (row {}): is it the right key?",
                stored.id
            );
        }
    }
    Ok(())
}

/// What a rotation did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Values re-encrypted under the newest key.
    pub rotated: u64,
    /// Spent single-use rows deleted rather than re-encrypted.
    pub deleted: u64,
}

/// Re-encrypts every stored secret of every encrypted column not yet under the newest key
/// in the current format (so `v1` values become `v2`, bound to their row), in batches, each
/// row on its own with a conditional update (a concurrent change wins); interrupted, it
/// picks up where it stopped.
pub async fn rotate(db: &Db, keyring: &Keyring) -> anyhow::Result<Rotation> {
    let current = keyring.current_key_id();
    let format_prefix = current_prefix(current);
    let mut done = Rotation::default();
    for column in SEALED_COLUMNS {
        if column.single_use {
            done.deleted += unscoped::ciphertexts::delete_spent(db, column, Utc::now()).await?;
        }
        let mut after = None;
        loop {
            let batch = unscoped::ciphertexts::sealed_not_under(
                db,
                column,
                &format_prefix,
                after,
                Utc::now(),
                ROTATION_BATCH,
            )
            .await?;
            let Some(last) = batch.last() else { break };
            after = Some(last.id);
            for stored in batch {
                let bound_to = binding(column, stored.organization_id, stored.id);
                let plain = keyring.decrypt(&stored.value, bound_to).with_context(|| {
                    format!(
                        "{}.{} of row {} cannot be decrypted",
                        column.table, column.column, stored.id
                    )
                })?;
                let sealed = keyring.encrypt(plain.expose_secret(), bound_to)?;
                if unscoped::ciphertexts::reseal(db, column, stored.id, &stored.value, sealed).await? {
                    done.rotated += 1;
                }
            }
        }
    }
    Ok(done)
}
