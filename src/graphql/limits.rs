//! What one operation may cost: its shape (depth, complexity, aliases, root fields) and the
//! caller's rate limits, charged by the operation's complexity. Runs for every operation,
//! over HTTP and websockets alike. The same extension also times each operation, for its
//! span and metrics: async-graphql wraps every resolved field in every extension, so one
//! extension per operation is cheaper than two.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextRequest, NextValidation,
};
use async_graphql::parser::types::{
    ExecutableDocument, FragmentDefinition, OperationType, Selection, SelectionSet,
};
use async_graphql::{
    Name, Positioned, Response, ServerError, ServerResult, ValidationResult, Value, Variables,
};

use tracing::Instrument;

use crate::error::AppError;
use crate::governance::allowance::Allowance;
use crate::governance::intake::DocumentLimits;
use crate::governance::persisted::Registration;
use crate::governance::rate_limits::RateLimits;
use crate::graphql::documents::DocumentCache;
use crate::graphql::errors::request_error;
use crate::graphql::{RequestContext, Services};
use crate::telemetry::metrics;

/// Bounds on one operation's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    pub max_depth: usize,
    /// Each field costs 1, a list its page size times its selection.
    pub max_complexity: usize,
    /// Bounds on the document's text, checked before it is parsed (`governance::intake`).
    pub document: DocumentLimits,
    /// Top-level fields of the operation: each root field is its own resolver chain.
    pub max_root_fields: usize,
    /// Operations in one batched request; 0 refuses batches.
    pub max_batch_size: usize,
    /// Introspection and field suggestions ("did you mean …").
    pub introspection: bool,
}

/// Installs [`OperationGuard`] on the schema: one per request.
pub struct OperationLimits {
    pub limits: QueryLimits,
    pub rate_limits: Arc<RateLimits>,
    /// Parsed documents, shared by every request of the schema.
    pub documents: Arc<DocumentCache>,
}

impl ExtensionFactory for OperationLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(OperationGuard {
            limits: self.limits,
            rate_limits: self.rate_limits.clone(),
            documents: self.documents.clone(),
            charged: Mutex::new(None),
            kinds: Mutex::new(Vec::new()),
            kind: Mutex::new("unknown"),
        })
    }
}

struct OperationGuard {
    limits: QueryLimits,
    rate_limits: Arc<RateLimits>,
    documents: Arc<DocumentCache>,
    /// What the operation was charged, reported in the response's `extensions.cost`.
    charged: Mutex<Option<(u32, Allowance)>>,
    /// The document's operations by name, and then the type of the one that ran.
    kinds: Mutex<Vec<(Option<String>, &'static str)>>,
    kind: Mutex<&'static str>,
}

#[async_graphql::async_trait::async_trait]
impl Extension for OperationGuard {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let span = tracing::info_span!(
            "graphql",
            otel.name = tracing::field::Empty,
            graphql.operation.name = tracing::field::Empty,
            graphql.operation.type = tracing::field::Empty,
        );
        let started = Instant::now();
        let mut response = next.run(ctx).instrument(span).await;
        let kind = *self.kind.lock().unwrap_or_else(PoisonError::into_inner);
        metrics::graphql_operation(kind, response.errors.is_empty(), started.elapsed());
        let charged = *self.charged.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((cost, allowance)) = charged {
            response
                .extensions
                .insert("cost".into(), cost_extension(cost, allowance));
        }
        response
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = match self.documents.get(query) {
            Some(document) => document,
            None => {
                let document = next.run(ctx, query, variables).await?;
                self.documents.keep(query, &document);
                document
            }
        };
        *self.kinds.lock().unwrap_or_else(PoisonError::into_inner) = document
            .operations
            .iter()
            .map(|(name, operation)| (name.map(|name| name.to_string()), kind_name(operation.node.ty)))
            .collect();
        let root_fields = root_fields(&document);
        if root_fields > self.limits.max_root_fields {
            return Err(too_complex(format!(
                "the operation selects {} root fields; at most {} are allowed",
                root_fields, self.limits.max_root_fields
            )));
        }
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        let request = ctx.data_opt::<RequestContext>();
        let Some(caller) = request.and_then(RequestContext::caller) else {
            // No tenant to charge: the client address pays, so anonymous work is metered too.
            let ip = request.and_then(|request| request.client().ip.as_deref());
            self.rate_limits
                .charge_anonymous(ip)
                .await
                .map_err(|error| vec![request_error(error)])?;
            return Ok(result);
        };
        let cost = u32::try_from(result.complexity.max(1)).unwrap_or(u32::MAX);
        let allowance = self
            .rate_limits
            .charge_operation(caller, cost)
            .await
            .map_err(|error| vec![request_error(error)])?;
        *self.charged.lock().unwrap_or_else(PoisonError::into_inner) = Some((cost, allowance));
        // Stored only now: the document validated and its caller paid for it. A failed store
        // costs the client a resend, not this operation.
        if let (Some(registration), Some(services)) =
            (ctx.data_opt::<Registration>(), ctx.data_opt::<Arc<Services>>())
            && let Err(error) = services.persisted.register(registration).await
        {
            tracing::warn!(error = ?error, "could not store a persisted query");
        }
        Ok(result)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let kind = self
            .kinds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|(name, _)| operation_name.is_none() || name.as_deref() == operation_name)
            .map_or("unknown", |(_, kind)| kind);
        *self.kind.lock().unwrap_or_else(PoisonError::into_inner) = kind;
        // A subscription runs this for every event it sends, where no span is open.
        let span = tracing::Span::current();
        if !span.is_disabled() {
            let name = operation_name.unwrap_or("anonymous");
            span.record("otel.name", format!("{kind} {name}"));
            span.record("graphql.operation.name", name);
            span.record("graphql.operation.type", kind);
        }
        next.run(ctx, operation_name).await
    }
}

fn kind_name(kind: OperationType) -> &'static str {
    match kind {
        OperationType::Query => "query",
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
    }
}

fn cost_extension(cost: u32, allowance: Allowance) -> Value {
    let mut cost_value = async_graphql::indexmap::IndexMap::new();
    cost_value.insert(Name::new("requestedQueryCost"), Value::from(cost));
    cost_value.insert(Name::new("limit"), Value::from(allowance.limit));
    cost_value.insert(Name::new("remaining"), Value::from(allowance.remaining));
    cost_value.insert(Name::new("resetSeconds"), Value::from(allowance.reset_seconds));
    Value::Object(cost_value)
}

fn too_complex(message: String) -> ServerError {
    request_error(AppError::QueryTooComplex(message.into()))
}

/// The most top-level fields any operation of the document selects, looking through
/// fragments (taken before validation, so fragment cycles are possible here and are walked
/// once). Aliases and the document's other lexical bounds are `governance::intake`'s.
fn root_fields(document: &ExecutableDocument) -> usize {
    document
        .operations
        .iter()
        .map(|(_, operation)| {
            fields_in(
                &operation.node.selection_set,
                &document.fragments,
                &mut HashSet::new(),
            )
        })
        .max()
        .unwrap_or(0)
}

/// Fields selected at this level, looking through fragments.
fn fields_in(
    set: &Positioned<SelectionSet>,
    fragments: &std::collections::HashMap<Name, Positioned<FragmentDefinition>>,
    seen: &mut HashSet<Name>,
) -> usize {
    set.node
        .items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(_) => 1,
            Selection::InlineFragment(fragment) => fields_in(&fragment.node.selection_set, fragments, seen),
            Selection::FragmentSpread(spread) => {
                let name = &spread.node.fragment_name.node;
                match fragments.get(name) {
                    Some(fragment) if seen.insert(name.clone()) => {
                        fields_in(&fragment.node.selection_set, fragments, seen)
                    }
                    _ => 0,
                }
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots(query: &str) -> usize {
        root_fields(&async_graphql::parser::parse_query(query).unwrap())
    }

    #[test]
    fn root_fields_are_counted_through_fragments() {
        assert_eq!(
            roots(
                "{ a: me { id } b: me { x: id } ...F } fragment F on QueryRoot { c: me { id } projects { totalCount } }"
            ),
            4
        );
        // A fragment that spreads itself is walked once, not forever.
        assert_eq!(roots("{ ...F } fragment F on QueryRoot { me { id } ...F }"), 1);
    }
}
