//! What connects tenants to the outside: encrypted provider credentials, OAuth2-connected
//! accounts, bot pairing, each organization's workspace of files, and the egress gate every
//! outbound call passes.

pub mod credentials;
pub mod crypto;
pub mod egress;
pub mod keys;
pub mod oauth;
pub mod pairing;
pub mod workspaces;
