//! Rows written straight into the tables by the benchmarks, as the owner role, many per
//! statement: the tables and the columns each row lists, in order.

use sea_orm::{ConnectionTrait, DatabaseConnection};

pub const USERS: &str =
    "users (id, email, password_hash, display_name, is_platform_admin, created_at, updated_at)";
pub const ORGANIZATIONS: &str =
    "organizations (id, slug, name, kind, plan, monthly_budget_cents, created_at, updated_at)";
pub const MEMBERS: &str = "organization_members (id, organization_id, user_id, role, created_at, updated_at)";
pub const PROJECTS: &str = "projects (id, organization_id, slug, name, description, created_at, updated_at)";

/// Inserts `rows` (each a parenthesized list of SQL values) into `table`.
pub async fn insert(db: &DatabaseConnection, table: &str, rows: &[String]) {
    let statement = format!("INSERT INTO {table} VALUES {}", rows.join(","));
    db.execute_unprepared(&statement).await.unwrap();
}
