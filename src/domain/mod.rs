pub mod accounts;
pub mod agents;
pub mod api_keys;
pub mod content;
pub mod input;
pub mod jobs;
pub mod organizations;
pub mod projects;
