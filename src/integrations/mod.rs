//! What connects tenants to the outside: encrypted provider credentials and bot pairing.

pub mod credentials;
pub mod crypto;
pub mod keys;
pub mod pairing;
