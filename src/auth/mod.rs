pub mod api_key;
pub mod jwt;
pub mod password;
pub mod principal;
pub mod secret_token;
pub mod tenant;

pub use principal::{ApiKeyPrincipal, Principal};
