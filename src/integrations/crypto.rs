//! Encryption of third-party secrets at rest: AES-256-GCM with a random nonce, bound by its
//! associated data to one table, column, organization and row, so a ciphertext copied to
//! another tenant, column or row does not decrypt. Stored values name their format and key,
//! so keys rotate: the first key of `ENCRYPTION_KEYS` encrypts, every listed key decrypts.
//! `v2` is written; `v1` (bound to the organization, table and column only, as written
//! before row binding) is still read until `rotate-keys` rewrites it.

use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::SecretString;
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::input::setting_entries;

/// The format written: the row id in the associated data.
const FORMAT: &str = "v2";
/// The format written before rows were bound: read, never written.
const FORMAT_V1: &str = "v1";
const NONCE_BYTES: usize = 12;

/// Where a ciphertext belongs; it decrypts nowhere else.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    pub organization: Uuid,
    pub table: &'a str,
    pub column: &'a str,
    /// The id of the row holding it: ids are generated in code before the insert, so the
    /// value can be sealed to its row before the row exists.
    pub row: Uuid,
}

impl Binding<'_> {
    fn associated_data(&self, format: &str) -> Vec<u8> {
        if format == FORMAT_V1 {
            return format!("tenantql/{}.{}/{}", self.table, self.column, self.organization).into_bytes();
        }
        format!(
            "tenantql/{format}/{}.{}/{}/{}",
            self.table, self.column, self.organization, self.row
        )
        .into_bytes()
    }
}

pub struct Keyring {
    /// Newest first: the first encrypts.
    keys: Vec<(String, Aes256Gcm)>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("Keyring").field("key_ids", &ids).finish()
    }
}

impl Keyring {
    /// `id:base64-key[,id:base64-key…]`, newest first; each key is 32 bytes.
    pub fn parse(spec: &str) -> anyhow::Result<Self> {
        let mut keys = Vec::new();
        for (id, encoded) in setting_entries(spec, ':', "ENCRYPTION_KEYS entries are id:base64-key")? {
            if id.is_empty()
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                bail!("ENCRYPTION_KEYS key ids are letters, digits, - and _ (got {id:?})");
            }
            let bytes = STANDARD
                .decode(encoded.trim())
                .with_context(|| format!("ENCRYPTION_KEYS key {id} is not base64"))?;
            if bytes.len() != 32 {
                bail!("ENCRYPTION_KEYS key {id} must be 32 bytes (got {})", bytes.len());
            }
            if keys.iter().any(|(known, _)| known == id) {
                bail!("ENCRYPTION_KEYS names key {id} twice");
            }
            let key = Key::<Aes256Gcm>::try_from(bytes.as_slice())
                .map_err(|_| anyhow::anyhow!("ENCRYPTION_KEYS key {id} must be 32 bytes"))?;
            let cipher = Aes256Gcm::new(&key);
            keys.push((id.to_owned(), cipher));
        }
        if keys.is_empty() {
            bail!("ENCRYPTION_KEYS holds no key");
        }
        Ok(Self { keys })
    }

    /// A fresh key as `ENCRYPTION_KEYS` expects it, named `id`.
    pub fn generate_entry(id: &str) -> String {
        let key = Key::<Aes256Gcm>::generate();
        format!("{id}:{}", STANDARD.encode(key.as_slice()))
    }

    pub fn current_key_id(&self) -> &str {
        self.keys.first().map_or("", |(id, _)| id.as_str())
    }

    pub fn has_key(&self, id: &str) -> bool {
        self.keys.iter().any(|(known, _)| known == id)
    }

    /// `v2:<key id>:<base64(nonce ‖ ciphertext)>` under the newest key.
    pub fn encrypt(&self, plaintext: &str, binding: Binding<'_>) -> AppResult<String> {
        self.encrypt_as(FORMAT, plaintext, binding)
    }

    fn encrypt_as(&self, format: &str, plaintext: &str, binding: Binding<'_>) -> AppResult<String> {
        let (id, cipher) = self
            .keys
            .first()
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("no encryption key")))?;
        let nonce = Nonce::generate();
        let aad = binding.associated_data(format);
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| AppError::internal(anyhow::anyhow!("encryption failed")))?;
        let mut stored = nonce.to_vec();
        stored.extend_from_slice(&sealed);
        Ok(format!("{format}:{id}:{}", STANDARD.encode(stored)))
    }

    pub fn decrypt(&self, stored: &str, binding: Binding<'_>) -> AppResult<SecretString> {
        let failed = |why: &str| AppError::internal(anyhow::anyhow!("cannot decrypt a stored secret: {why}"));
        let mut parts = stored.splitn(3, ':');
        let (Some(format @ (FORMAT | FORMAT_V1)), Some(id), Some(body)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(failed("unknown format"));
        };
        let cipher = self
            .keys
            .iter()
            .find(|(known, _)| known == id)
            .map(|(_, cipher)| cipher)
            .ok_or_else(|| failed("its key is not in ENCRYPTION_KEYS"))?;
        let bytes = STANDARD.decode(body).map_err(|_| failed("not base64"))?;
        if bytes.len() <= NONCE_BYTES {
            return Err(failed("too short"));
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let nonce = Nonce::try_from(nonce).map_err(|_| failed("bad nonce"))?;
        let aad = binding.associated_data(format);
        let plain = cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| failed("wrong key, or it belongs elsewhere"))?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| failed("not text"))
    }
}

/// How a value stored now under key `key_id` begins; anything else (another key, or `v1`)
/// is due for rotation.
pub fn current_prefix(key_id: &str) -> String {
    format!("{FORMAT}:{key_id}:")
}

/// The key id a stored value was encrypted under.
pub fn key_id_of(stored: &str) -> Option<&str> {
    let mut parts = stored.splitn(3, ':');
    matches!(parts.next(), Some(FORMAT | FORMAT_V1))
        .then(|| parts.next())
        .flatten()
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    /// One row of one tenant, reused by the tests that are not about rows.
    const ROW: Uuid = Uuid::from_u128(7);

    fn binding(organization: Uuid) -> Binding<'static> {
        Binding {
            organization,
            table: "provider_credentials",
            column: "secret",
            row: ROW,
        }
    }

    #[test]
    fn a_secret_round_trips_only_where_it_belongs() {
        let keyring = Keyring::parse(&Keyring::generate_entry("k1")).unwrap();
        let (acme, globex) = (Uuid::now_v7(), Uuid::now_v7());
        let stored = keyring.encrypt("sk-live-1234", binding(acme)).unwrap();
        assert!(stored.starts_with("v2:k1:"));
        assert!(!stored.contains("sk-live"));
        assert_eq!(
            keyring.decrypt(&stored, binding(acme)).unwrap().expose_secret(),
            "sk-live-1234"
        );
        // Copied to another tenant, or to another column, it does not decrypt.
        assert!(keyring.decrypt(&stored, binding(globex)).is_err());
        let elsewhere = Binding {
            column: "access_token",
            ..binding(acme)
        };
        assert!(keyring.decrypt(&stored, elsewhere).is_err());
        // Two encryptions of one secret differ (random nonces).
        assert_ne!(stored, keyring.encrypt("sk-live-1234", binding(acme)).unwrap());
    }

    #[test]
    fn a_v2_value_decrypts_only_in_its_own_row_table_column_and_tenant() {
        let keyring = Keyring::parse(&Keyring::generate_entry("k1")).unwrap();
        let home = Binding {
            organization: Uuid::now_v7(),
            table: "integrations",
            column: "access_token",
            row: Uuid::now_v7(),
        };
        let stored = keyring.encrypt("at-1234", home).unwrap();
        assert_eq!(keyring.decrypt(&stored, home).unwrap().expose_secret(), "at-1234");
        let elsewhere = [
            Binding {
                row: Uuid::now_v7(),
                ..home
            },
            Binding {
                table: "provider_credentials",
                ..home
            },
            Binding {
                column: "refresh_token",
                ..home
            },
            Binding {
                organization: Uuid::now_v7(),
                ..home
            },
        ];
        for binding in elsewhere {
            assert!(keyring.decrypt(&stored, binding).is_err(), "{binding:?}");
        }
        // Relabelled as v1 it does not decrypt either: the format is part of the binding.
        let relabelled = stored.replacen("v2:", "v1:", 1);
        assert!(keyring.decrypt(&relabelled, home).is_err());
    }

    #[test]
    fn a_v1_value_still_decrypts_and_is_due_for_rotation_to_v2() {
        let keyring = Keyring::parse(&Keyring::generate_entry("k1")).unwrap();
        let org = Uuid::now_v7();
        let home = Binding {
            row: Uuid::now_v7(),
            ..binding(org)
        };
        let old = keyring.encrypt_as(FORMAT_V1, "sk-old", home).unwrap();
        assert!(old.starts_with("v1:k1:"));
        assert_eq!(key_id_of(&old), Some("k1"));
        assert!(!old.starts_with(&current_prefix("k1")));
        // v1 named no row: any row of the same tenant, table and column reads it...
        let other_row = Binding {
            row: Uuid::now_v7(),
            ..home
        };
        assert_eq!(
            keyring.decrypt(&old, other_row).unwrap().expose_secret(),
            "sk-old"
        );
        // ...but not another tenant.
        assert!(keyring.decrypt(&old, binding(Uuid::now_v7())).is_err());
        // What rotation writes: v2, bound to the row.
        let plain = keyring.decrypt(&old, home).unwrap();
        let rotated = keyring.encrypt(plain.expose_secret(), home).unwrap();
        assert!(rotated.starts_with(&current_prefix("k1")), "{rotated}");
        assert_eq!(keyring.decrypt(&rotated, home).unwrap().expose_secret(), "sk-old");
        assert!(keyring.decrypt(&rotated, other_row).is_err());
    }

    #[test]
    fn older_keys_decrypt_and_the_newest_encrypts() {
        let old = Keyring::generate_entry("old");
        let before = Keyring::parse(&old).unwrap();
        let org = Uuid::now_v7();
        let stored = before.encrypt("secret", binding(org)).unwrap();
        let after = Keyring::parse(&format!("{},{old}", Keyring::generate_entry("new"))).unwrap();
        assert_eq!(after.current_key_id(), "new");
        assert_eq!(
            after.decrypt(&stored, binding(org)).unwrap().expose_secret(),
            "secret"
        );
        assert_eq!(
            key_id_of(&after.encrypt("secret", binding(org)).unwrap()),
            Some("new")
        );
        // A keyring without the old key cannot read what it encrypted.
        let forgot = Keyring::parse(&Keyring::generate_entry("new")).unwrap();
        assert!(forgot.decrypt(&stored, binding(org)).is_err());
        // Nor can a different key under the old name.
        let impostor = Keyring::parse(&Keyring::generate_entry("old")).unwrap();
        assert!(impostor.decrypt(&stored, binding(org)).is_err());
    }

    #[test]
    fn bad_key_lists_are_refused() {
        for bad in ["", "k1", "k1:not-base64!", "k1:AAAA", "bad id:AAAA"] {
            assert!(Keyring::parse(bad).is_err(), "{bad}");
        }
        let entry = Keyring::generate_entry("k1");
        assert!(Keyring::parse(&format!("{entry},{entry}")).is_err());
    }
}
