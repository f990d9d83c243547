//! What connects tenants to the outside: encrypted provider credentials, OAuth2-connected
//! accounts and bot pairing.

pub mod credentials;
pub mod crypto;
pub mod keys;
pub mod oauth;
pub mod pairing;
