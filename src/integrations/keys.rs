//! The encryption keys at run time: a start-up check that they read what is stored, and
//! rotation of every stored secret to the newest key.

use anyhow::{Context, bail};

use super::credentials::binding;
use super::crypto::{Keyring, key_id_of};
use crate::tenancy::{Db, unscoped};

const ROTATION_BATCH: u64 = 100;

/// Refuses to start with keys that cannot read the newest stored secret: a missing or wrong
/// key would otherwise surface only when a job needed it.
pub async fn check_against_stored(db: &Db, keyring: &Keyring) -> anyhow::Result<()> {
    let Some(credential) = unscoped::newest_credential(db).await? else {
        return Ok(());
    };
    let key_id = key_id_of(&credential.secret).unwrap_or("?");
    if !keyring.has_key(key_id) {
        bail!("ENCRYPTION_KEYS lacks key {key_id:?}, which stored credentials are encrypted with");
    }
    if keyring
        .decrypt(&credential.secret, binding(credential.organization_id))
        .is_err()
    {
        bail!("ENCRYPTION_KEYS key {key_id:?} does not decrypt stored credentials: is it the right key?");
    }
    Ok(())
}

/// Re-encrypts every stored secret not yet under the newest key, in batches, each row on
/// its own; interrupted, it picks up where it stopped. Returns how many it re-encrypted.
pub async fn rotate(db: &Db, keyring: &Keyring) -> anyhow::Result<u64> {
    let current = keyring.current_key_id();
    let mut rotated = 0;
    loop {
        let batch = unscoped::credentials_not_under(db, current, ROTATION_BATCH).await?;
        if batch.is_empty() {
            return Ok(rotated);
        }
        for credential in batch {
            let binding = binding(credential.organization_id);
            let plain = keyring
                .decrypt(&credential.secret, binding)
                .with_context(|| format!("credential {} cannot be decrypted", credential.id))?;
            let sealed = keyring.encrypt(secrecy::ExposeSecret::expose_secret(&plain), binding)?;
            if unscoped::reseal_credential(db, credential.id, &credential.secret, sealed).await? {
                rotated += 1;
            }
        }
    }
}
