pub mod api_key;
pub mod jwt;
pub mod password;
pub mod principal;
pub mod secret_token;

pub use principal::{ApiKeyPrincipal, Principal};
