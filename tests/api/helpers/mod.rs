//! The test harness: the real server on 127.0.0.1:0 against a fresh database per test, on
//! SQLite and on PostgreSQL, plus a small GraphQL client and actors to call it as.

mod actors;
mod app;
mod client;
mod macros;
pub mod postgres;
mod processes;
mod ws;

pub use actors::{Org, access_token};
pub use app::{Backend, TestApp};
pub use client::{Client, GqlResponse, test_client};
pub use postgres::PG_OWNER_ROLE;
pub use processes::Replica;
pub use ws::{Ws, WsEnd, ws_raw_to, ws_to};

pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123456789";
pub const BASE_DOMAIN: &str = "tenantql.test";
pub const PASSWORD: &str = "Correct-horse-42";
/// One fixed key, so a test can read what the server encrypted.
pub const ENCRYPTION_KEYS: &str = "test1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
/// `PLAN_LIMITS` no test or benchmark reaches.
pub const UNLIMITED_PLANS: &str = "FREE=1000000/100000000/100000,STARTER=1000000/100000000/100000,\
                                   PRO=1000000/100000000/100000,ENTERPRISE=1000000/100000000/100000";
/// `EGRESS_ALLOW` of the test servers: loopback, where the tests' fake third parties listen.
pub const LOOPBACK: &str = "127.0.0.0/8,::1/128";
