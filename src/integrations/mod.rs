//! What connects tenants to the outside: encrypted provider credentials, OAuth2-connected
//! accounts, bot pairing, and each organization's workspace of files.

pub mod credentials;
pub mod crypto;
pub mod keys;
pub mod oauth;
pub mod pairing;
pub mod workspaces;
