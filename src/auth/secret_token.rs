//! Random bearer secrets and the hashes stored in their place.

use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};

/// A random string of ASCII letters and digits (about 5.95 bits per character).
pub fn random_alphanumeric(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rng(), len)
}

/// The SHA-256 of a high-entropy secret, hex encoded. A slow hash is unnecessary here:
/// these secrets are random, not chosen by people, so they cannot be guessed from a list.
pub fn sha256_hex(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Compares two hashes in time independent of where they first differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
