pub mod accounts;
pub mod api_keys;
pub mod input;
pub mod organizations;
pub mod projects;
