//! API keys look like `tql_<prefix>_<secret>`: the prefix finds the row, the secret's hash proves it.

use crate::auth::secret_token::{random_alphanumeric, sha256_hex};

const PREFIX_LEN: usize = 10;
const SECRET_LEN: usize = 40;

/// A newly generated key: `plaintext` is shown to its creator once and never stored.
pub struct NewApiKey {
    pub plaintext: String,
    pub prefix: String,
    pub secret_hash: String,
}

pub fn generate() -> NewApiKey {
    let prefix = random_alphanumeric(PREFIX_LEN).to_ascii_lowercase();
    let secret = random_alphanumeric(SECRET_LEN);
    NewApiKey {
        plaintext: format!("tql_{prefix}_{secret}"),
        secret_hash: sha256_hex(&secret),
        prefix,
    }
}

/// Splits a presented key into its prefix and the hash of its secret; `None` if malformed.
pub fn parse(presented: &str) -> Option<(&str, String)> {
    let rest = presented.strip_prefix("tql_")?;
    let (prefix, secret) = rest.split_once('_')?;
    let well_formed = prefix.len() == PREFIX_LEN
        && secret.len() == SECRET_LEN
        && prefix.bytes().all(|b| b.is_ascii_alphanumeric())
        && secret.bytes().all(|b| b.is_ascii_alphanumeric());
    well_formed.then(|| (prefix, sha256_hex(secret)))
}

pub fn looks_like_api_key(token: &str) -> bool {
    token.starts_with("tql_")
}
