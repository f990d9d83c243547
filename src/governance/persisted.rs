//! Persisted queries. Apollo APQ for everyone: a client sends a query's SHA-256, and its
//! text only when the server does not know it yet; registrations live in the database so
//! every replica serves them, behind a small in-process LRU. Looking a hash up is open to
//! anyone; registering costs the caller: only a caller with a tenant, only once the
//! operation has validated and been charged to its rate limits (`graphql::limits`), only
//! documents up to a size cap, and each registration expires. Trusted documents: the
//! operations of an Apollo persisted-query manifest plus those an organization's admins
//! register; API keys flagged persisted-only may run nothing else.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use entity::trusted_document;
use sea_orm::ActiveValue::Set;
use uuid::Uuid;

use crate::auth::cache::TtlCache;
use crate::auth::secret_token::sha256_hex;
use crate::error::{AppError, AppResult, duplicate_as};
use crate::governance::intake::DocumentLimits;
use crate::input::Name;
use crate::tenancy::{Db, Page, PageRequest, Scoped, Tenant, unscoped};

const CACHE_ENTRIES: usize = 1_024;
/// Expired registrations are deleted at most this often, by the replica registering one.
const PURGE_EVERY: Duration = Duration::from_secs(3_600);

/// What APQ registration allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApqConfig {
    /// Longer documents still run, but are not stored.
    pub max_bytes: usize,
    /// How long a registration is served after it was last registered.
    pub ttl: Duration,
}

/// The text an operation runs, and the APQ registration it asked for, if it may be
/// stored once the operation has validated and been charged.
#[derive(Debug)]
pub struct Resolved {
    pub text: String,
    pub registration: Option<Registration>,
}

/// A query to store under its hash (`PersistedQueries::register`).
#[derive(Debug, Clone)]
pub struct Registration {
    sha256: String,
    text: String,
}

/// What the client asked to run: a text, a hash, or both (an APQ registration).
#[derive(Debug, Default)]
pub struct Requested {
    pub query: Option<String>,
    pub sha256: Option<String>,
}

impl Requested {
    /// Reads `extensions.persistedQuery` (`{"version": 1, "sha256Hash": "…"}`) beside `query`.
    pub fn new(query: Option<String>, persisted_query: Option<&serde_json::Value>) -> AppResult<Self> {
        let sha256 = match persisted_query {
            None | Some(serde_json::Value::Null) => None,
            Some(persisted) => {
                if persisted.get("version").and_then(serde_json::Value::as_u64) != Some(1) {
                    return Err(AppError::bad_input(
                        "extensions.persistedQuery",
                        "only version 1 of persisted queries is supported",
                    ));
                }
                let hash = persisted
                    .get("sha256Hash")
                    .and_then(serde_json::Value::as_str)
                    .filter(|hash| hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
                    .ok_or_else(|| {
                        AppError::bad_input(
                            "extensions.persistedQuery",
                            "sha256Hash must be 64 hexadecimal digits",
                        )
                    })?;
                Some(hash.to_ascii_lowercase())
            }
        };
        Ok(Self {
            query: query.filter(|query| !query.trim().is_empty()),
            sha256,
        })
    }
}

pub struct PersistedQueries {
    db: Db,
    limits: DocumentLimits,
    apq: ApqConfig,
    /// The manifest's operations by hash.
    manifest: HashMap<String, String>,
    /// APQ registrations recently used here, with when they were read or registered.
    cache: TtlCache<String, Arc<str>>,
    last_purge: Mutex<Option<Instant>>,
}

impl PersistedQueries {
    pub fn new(db: Db, limits: DocumentLimits, apq: ApqConfig, manifest: HashMap<String, String>) -> Self {
        Self {
            db,
            limits,
            apq,
            manifest,
            cache: TtlCache::new(CACHE_ENTRIES, apq.ttl),
            last_purge: Mutex::new(None),
        }
    }

    /// The bounds every document is checked against before anything parses it.
    pub fn limits(&self) -> DocumentLimits {
        self.limits
    }

    /// The text to run, checked against the document limits whatever its source (nothing
    /// is stored before: an APQ registration waits for validation). `trusted_only` holds the
    /// tenant of a persisted-only API key, which may run only trusted documents whether it
    /// sends their hash, their text or both.
    pub async fn resolve(&self, requested: Requested, trusted_only: Option<&Tenant>) -> AppResult<Resolved> {
        let resolved = self.find(requested, trusted_only).await?;
        self.limits.check(&resolved.text)?;
        Ok(resolved)
    }

    async fn find(&self, requested: Requested, trusted_only: Option<&Tenant>) -> AppResult<Resolved> {
        let unregistered = |text: String| Resolved {
            text,
            registration: None,
        };
        if let Some(tenant) = trusted_only {
            let hash = match (&requested.sha256, &requested.query) {
                (Some(hash), _) => hash.clone(),
                (None, Some(query)) => sha256_hex(query),
                (None, None) => return Err(AppError::PersistedQueryRequired),
            };
            if let Some(query) = &requested.query
                && sha256_hex(query) != hash
            {
                return Err(hash_mismatch());
            }
            return self
                .trusted(tenant, &hash)
                .await?
                .map(unregistered)
                .ok_or(AppError::PersistedQueryRequired);
        }
        match (requested.query, requested.sha256) {
            (Some(query), None) => Ok(unregistered(query)),
            (None, None) => Err(AppError::bad_input("query", "`query` is required")),
            (Some(query), Some(hash)) => {
                if sha256_hex(&query) != hash {
                    return Err(hash_mismatch());
                }
                let known = self.manifest.contains_key(&hash) || self.cached(&hash).is_some();
                // An oversize document runs like a plain query; the client keeps sending it.
                let registration = (!known && query.len() <= self.apq.max_bytes).then(|| Registration {
                    sha256: hash,
                    text: query.clone(),
                });
                Ok(Resolved {
                    text: query,
                    registration,
                })
            }
            (None, Some(hash)) => {
                if let Some(query) = self.manifest.get(&hash) {
                    return Ok(unregistered(query.clone()));
                }
                if let Some(query) = self.cached(&hash) {
                    return Ok(unregistered(query.to_string()));
                }
                let query = unscoped::persisted_queries::find_persisted_query(
                    &self.db,
                    &hash,
                    self.registered_since(),
                )
                .await?
                .ok_or(AppError::PersistedQueryNotFound)?;
                self.remember(hash, &query);
                Ok(unregistered(query))
            }
        }
    }

    /// Stores an APQ registration; called once its operation has validated and been
    /// charged to a caller with a tenant. Registering a hash again renews it.
    pub async fn register(&self, registration: &Registration) -> AppResult<()> {
        unscoped::persisted_queries::register_persisted_query(
            &self.db,
            &registration.sha256,
            &registration.text,
        )
        .await?;
        self.remember(registration.sha256.clone(), &registration.text);
        let purge_due = {
            let mut last = self.last_purge.lock().unwrap_or_else(PoisonError::into_inner);
            let due = last.is_none_or(|at| at.elapsed() >= PURGE_EVERY);
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        if purge_due {
            unscoped::persisted_queries::purge_persisted_queries(&self.db, self.registered_since()).await?;
        }
        Ok(())
    }

    /// Registrations older than this have expired.
    fn registered_since(&self) -> chrono::DateTime<Utc> {
        Utc::now() - chrono::Duration::from_std(self.apq.ttl).unwrap_or(chrono::Duration::MAX)
    }

    async fn trusted(&self, tenant: &Tenant, hash: &str) -> AppResult<Option<String>> {
        if let Some(query) = self.manifest.get(hash) {
            return Ok(Some(query.clone()));
        }
        let found = tenant
            .read(async |scoped| find_by_hash(scoped, hash).await)
            .await?;
        Ok(found.map(|document| document.query))
    }

    /// A registration this replica saw within the TTL.
    fn cached(&self, hash: &str) -> Option<Arc<str>> {
        self.cache.get(hash)
    }

    fn remember(&self, hash: String, query: &str) {
        self.cache.put(hash, Arc::from(query));
    }
}

fn hash_mismatch() -> AppError {
    AppError::bad_input("extensions.persistedQuery", "provided sha does not match query")
}

/// Reads an Apollo persisted-query manifest
/// (`{"format": "apollo-persisted-query-manifest", "version": 1, "operations": [{"id", "body", …}]}`),
/// refusing one whose ids are not the SHA-256 of their bodies or whose bodies exceed the
/// document limits.
pub fn load_manifest(path: &Path, limits: &DocumentLimits) -> anyhow::Result<HashMap<String, String>> {
    #[derive(serde::Deserialize)]
    struct Manifest {
        format: String,
        version: u32,
        operations: Vec<Operation>,
    }
    #[derive(serde::Deserialize)]
    struct Operation {
        id: String,
        body: String,
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the persisted-query manifest {}", path.display()))?;
    let manifest: Manifest = serde_json::from_str(&text)
        .with_context(|| format!("{} is not an Apollo persisted-query manifest", path.display()))?;
    if manifest.format != "apollo-persisted-query-manifest" || manifest.version != 1 {
        bail!(
            "{} is not a version 1 apollo-persisted-query-manifest",
            path.display()
        );
    }
    let mut operations = HashMap::new();
    for operation in manifest.operations {
        if sha256_hex(&operation.body) != operation.id.to_ascii_lowercase() {
            bail!(
                "the manifest operation {} is not the SHA-256 of its body",
                operation.id
            );
        }
        if let Err(error) = limits.check(&operation.body) {
            bail!("the manifest operation {}: {error}", operation.id);
        }
        operations.insert(operation.id.to_ascii_lowercase(), operation.body);
    }
    Ok(operations)
}

/// The organization's trusted documents, newest first.
pub async fn list(scoped: &Scoped, page: PageRequest) -> AppResult<Page<trusted_document::Model>> {
    scoped
        .page(scoped.select::<trusted_document::Entity>(), page)
        .await
}

async fn find_by_hash(scoped: &Scoped, hash: &str) -> AppResult<Option<trusted_document::Model>> {
    scoped.find_by(trusted_document::Column::Sha256, hash).await
}

/// Allows a document for the organization's persisted-only keys; it must be within the
/// document limits and parse.
pub async fn register(
    scoped: &Scoped,
    limits: &DocumentLimits,
    name: &str,
    query: &str,
) -> AppResult<trusted_document::Model> {
    let name = Name::parse("name", name)?;
    limits.check(query)?;
    if async_graphql_parser::parse_query(query).is_err() {
        return Err(AppError::bad_input("query", "not a GraphQL document"));
    }
    let now = Utc::now();
    let document = trusted_document::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(scoped.context().org.0),
        sha256: Set(sha256_hex(query)),
        name: Set(name.into_inner()),
        query: Set(query.to_owned()),
        created_by: Set(scoped.context().actor.accountable_user().0),
        created_at: Set(now),
        updated_at: Set(now),
    };
    scoped
        .insert(document)
        .await
        .map_err(duplicate_as("query", "this document is already trusted"))
}

pub async fn remove(scoped: &Scoped, id: Uuid) -> AppResult<()> {
    scoped
        .delete::<trusted_document::Entity>(id, "trusted document")
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_persisted_query_extension_is_read_strictly() {
        let hash = "a".repeat(64);
        let requested = Requested::new(
            None,
            Some(&serde_json::json!({ "version": 1, "sha256Hash": hash.to_uppercase() })),
        )
        .unwrap();
        assert_eq!(requested.sha256.as_deref(), Some(hash.as_str()));
        for bad in [
            serde_json::json!({ "version": 2, "sha256Hash": hash }),
            serde_json::json!({ "version": 1, "sha256Hash": "abc" }),
            serde_json::json!({ "version": 1 }),
        ] {
            assert!(Requested::new(None, Some(&bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_manifest_whose_ids_do_not_match_is_refused() {
        let dir = std::env::temp_dir().join(format!("tenantql-manifest-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let body = "query Me { me { id } }";
        let write = |id: &str| {
            let path = dir.join(format!("{id}.json"));
            let manifest = serde_json::json!({
                "format": "apollo-persisted-query-manifest",
                "version": 1,
                "operations": [{ "id": id, "name": "Me", "type": "query", "body": body }]
            });
            std::fs::write(&path, manifest.to_string()).unwrap();
            path
        };
        let limits = DocumentLimits::default();
        let good = load_manifest(&write(&sha256_hex(body)), &limits).unwrap();
        assert_eq!(good[&sha256_hex(body)], body);
        assert!(load_manifest(&write(&"0".repeat(64)), &limits).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
