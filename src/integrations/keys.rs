//! The encryption keys at run time: the one list of columns that hold ciphertexts, a
//! start-up check that the keys read what is stored in each, and rotation of every stored
//! secret to the newest key.

use anyhow::{Context, bail};
use chrono::Utc;
use secrecy::ExposeSecret;
use uuid::Uuid;

use super::crypto::{Binding, Keyring, key_id_of};
use crate::tenancy::{Db, unscoped};

const ROTATION_BATCH: u64 = 100;

/// A column holding ciphertexts. Every table in this list has `id`, `organization_id` and
/// `updated_at`; the row's organization and id are what its ciphertexts are bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedColumn {
    pub table: &'static str,
    pub column: &'static str,
    /// The row's tenant, part of the associated data.
    pub organization: &'static str,
    /// The row's id.
    pub id: &'static str,
    /// Rows that are read once and then never again: a pending OAuth state, spent once
    /// `used_at` is set or `expires_at` has passed. Rotation deletes spent rows instead of
    /// re-encrypting them, and the start-up check looks at pending ones only.
    pub single_use: bool,
}

impl SealedColumn {
    const fn new(table: &'static str, column: &'static str, single_use: bool) -> Self {
        Self {
            table,
            column,
            organization: "organization_id",
            id: "id",
            single_use,
        }
    }

    /// Where a value of this column in `organization`'s row `row` belongs.
    pub fn binding(self, organization: Uuid, row: Uuid) -> Binding<'static> {
        Binding {
            organization,
            table: self.table,
            column: self.column,
            row,
        }
    }
}

/// An organization's secret for a provider (`setProviderCredential`).
pub const PROVIDER_SECRET: SealedColumn = SealedColumn::new("provider_credentials", "secret", false);
/// A connected account's OAuth access token.
pub const ACCESS_TOKEN: SealedColumn = SealedColumn::new("integrations", "access_token", false);
/// A connected account's OAuth refresh token (nullable).
pub const REFRESH_TOKEN: SealedColumn = SealedColumn::new("integrations", "refresh_token", false);
/// A pending OAuth authorization's PKCE verifier.
pub const PKCE_VERIFIER: SealedColumn = SealedColumn::new("oauth_states", "pkce_verifier", true);

/// Every column that holds ciphertexts: rotation and the start-up check both follow it, so
/// a new encrypted column is added here, with its binding, or not at all.
pub const SEALED_COLUMNS: [SealedColumn; 4] = [PROVIDER_SECRET, ACCESS_TOKEN, REFRESH_TOKEN, PKCE_VERIFIER];

/// Refuses to start with keys that cannot read the newest stored secret of every encrypted
/// column: a missing or wrong key would otherwise surface only when a job needed it.
pub async fn check_against_stored(db: &Db, keyring: &Keyring) -> anyhow::Result<()> {
    for column in SEALED_COLUMNS {
        let Some(stored) = unscoped::newest_sealed(db, column, Utc::now()).await? else {
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
            .decrypt(&stored.value, column.binding(stored.organization_id, stored.id))
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
/// in the current format (so `v1` values become `v2`, bound to their row), in batches, each row on its own with a conditional update (a concurrent change wins);
/// interrupted, it picks up where it stopped.
pub async fn rotate(db: &Db, keyring: &Keyring) -> anyhow::Result<Rotation> {
    let current = keyring.current_key_id();
    let mut done = Rotation::default();
    for column in SEALED_COLUMNS {
        if column.single_use {
            done.deleted += unscoped::delete_spent(db, column, Utc::now()).await?;
        }
        let mut after = None;
        loop {
            let batch =
                unscoped::sealed_not_under(db, column, current, after, Utc::now(), ROTATION_BATCH).await?;
            let Some(last) = batch.last() else { break };
            after = Some(last.id);
            for stored in batch {
                let binding = column.binding(stored.organization_id, stored.id);
                let plain = keyring.decrypt(&stored.value, binding).with_context(|| {
                    format!(
                        "{}.{} of row {} cannot be decrypted",
                        column.table, column.column, stored.id
                    )
                })?;
                let sealed = keyring.encrypt(plain.expose_secret(), binding)?;
                if unscoped::reseal(db, column, stored.id, &stored.value, sealed).await? {
                    done.rotated += 1;
                }
            }
        }
    }
    Ok(done)
}
