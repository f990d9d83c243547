//! Who is calling: argon2id passwords (a bounded pool), HS256 access tokens, the API-key
//! format, random bearer secrets (refresh tokens, OAuth states) and their hashes, the
//! `Principal` behind a request and the tenant it acts in.

pub mod api_key;
pub mod cache;
pub mod jwt;
pub mod password;
pub mod principal;
pub mod secret_token;
pub mod tenant;

pub use principal::{ApiKeyPrincipal, Principal};
