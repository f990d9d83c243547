//! Turning a request into an operation, the same for HTTP and websockets: the GraphQL
//! parameters checked for shape, the document resolved (sent, persisted or trusted), and
//! the response of an operation refused before it ran.

use async_graphql::Variables;
use serde_json::{Map, Value};

use crate::error::AppError;
use crate::governance::persisted::{Requested, Resolved};
use crate::graphql::errors::{present, request_error};
use crate::graphql::{RequestContext, Services};

/// The GraphQL parameters of a request (an HTTP body or query string, or a websocket
/// `subscribe` payload), checked for shape.
pub(super) struct Params {
    /// Absent when the client sends only a persisted query's hash.
    query: Option<String>,
    pub(super) operation_name: Option<String>,
    variables: Option<Map<String, Value>>,
    /// `extensions.persistedQuery`, Apollo's APQ.
    persisted_query: Option<Value>,
}

impl Params {
    pub(super) fn from_json(body: Value) -> Result<Self, &'static str> {
        let Value::Object(mut body) = body else {
            return Err("the body must be a JSON object");
        };
        let query = match body.remove("query") {
            Some(Value::String(query)) => Some(query),
            None | Some(Value::Null) => None,
            Some(_) => return Err("`query` must be a string"),
        };
        let operation_name = match body.remove("operationName") {
            Some(Value::String(name)) => Some(name),
            None | Some(Value::Null) => None,
            Some(_) => return Err("`operationName` must be a string"),
        };
        let variables = match body.remove("variables") {
            Some(Value::Object(variables)) => Some(variables),
            None | Some(Value::Null) => None,
            Some(_) => return Err("`variables` must be an object"),
        };
        let persisted_query = match body.remove("extensions") {
            None | Some(Value::Null) => None,
            Some(Value::Object(mut extensions)) => extensions.remove("persistedQuery"),
            Some(_) => return Err("`extensions` must be an object"),
        };
        if query.is_none() && persisted_query.is_none() {
            return Err("`query` is required");
        }
        Ok(Self {
            query,
            operation_name,
            variables,
            persisted_query,
        })
    }

    pub(super) fn from_query_string(
        params: &std::collections::HashMap<String, String>,
    ) -> Result<Self, &'static str> {
        let mut body = Map::new();
        for (key, value) in params {
            let value = match key.as_str() {
                "query" | "operationName" => Value::String(value.clone()),
                "variables" | "extensions" => {
                    serde_json::from_str(value).map_err(|_| match key.as_str() {
                        "variables" => "`variables` must be a JSON object",
                        _ => "`extensions` must be a JSON object",
                    })?
                }
                _ => continue,
            };
            body.insert(key.clone(), value);
        }
        Self::from_json(Value::Object(body))
    }
}

/// The text the operation runs: the query sent, or the persisted one its hash names; for a
/// persisted-only API key, a trusted document or nothing. The same for HTTP and websockets.
pub(super) async fn resolve_document(
    services: &Services,
    context: &RequestContext,
    mut params: Params,
) -> Result<(Resolved, Params), AppError> {
    let requested = Requested::new(params.query.take(), params.persisted_query.as_ref())?;
    Ok((context.document(services, requested).await?, params))
}

impl Params {
    /// The operation to run; an APQ registration rides along for `graphql::limits` to store
    /// once the operation has validated and been charged.
    pub(super) fn into_request(self, document: Resolved) -> async_graphql::Request {
        let mut request = async_graphql::Request::new(document.text);
        if let Some(registration) = document.registration {
            request = request.data(registration);
        }
        if let Some(name) = self.operation_name {
            request = request.operation_name(name);
        }
        if let Some(variables) = self.variables {
            request = request.variables(Variables::from_json(Value::Object(variables)));
        }
        request
    }
}

/// A response for an operation refused before it ran, its error presented like any other.
pub(super) fn refused_response(error: AppError) -> async_graphql::Response {
    let mut error = request_error(error);
    present(&mut error);
    async_graphql::Response::from_errors(vec![error])
}
