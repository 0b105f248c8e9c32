//! An async-graphql extension that counts requests and their latency per operation type and
//! errors per `extensions.code`, into the instance's Prometheus metrics.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextRequest,
};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use async_graphql::{Response, ServerResult, Value, Variables};

use crate::metrics::{CodeLabels, Metrics};

pub struct RequestMetrics(pub Arc<Metrics>);

impl ExtensionFactory for RequestMetrics {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PerRequest {
            metrics: self.0.clone(),
            named: Mutex::new(Vec::new()),
            operation: Mutex::new("invalid"),
        })
    }
}

struct PerRequest {
    metrics: Arc<Metrics>,
    /// Types of the named operations of a multi-operation document, until `execute` says
    /// which one runs. std Mutexes: neither is ever held across an await.
    named: Mutex<Vec<(String, &'static str)>>,
    operation: Mutex<&'static str>,
}

fn kind(t: OperationType) -> &'static str {
    match t {
        OperationType::Query => "query",
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
    }
}

/// The type of the operation a request runs, if the document names it unambiguously.
pub fn operation_type(doc: &ExecutableDocument, name: Option<&str>) -> Option<OperationType> {
    match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| op.node.ty),
        (DocumentOperations::Multiple(_), None) => None,
    }
}

#[async_trait::async_trait]
impl Extension for PerRequest {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let started = Instant::now();
        let response = next.run(ctx).await;
        let operation = *self.operation.lock().unwrap_or_else(|e| e.into_inner());
        self.metrics
            .count_graphql_request(operation, started.elapsed().as_secs_f64());
        for err in &response.errors {
            let code = match err.extensions.as_ref().and_then(|e| e.get("code")) {
                Some(Value::String(code)) => code.clone(),
                // Parse and validation errors come from async-graphql itself without a code.
                _ => "GRAPHQL_VALIDATION_FAILED".to_owned(),
            };
            self.metrics
                .graphql_errors
                .get_or_create(&CodeLabels { code })
                .inc();
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
        let doc = next.run(ctx, query, variables).await?;
        match &doc.operations {
            DocumentOperations::Single(op) => {
                *self.operation.lock().unwrap_or_else(|e| e.into_inner()) = kind(op.node.ty);
            }
            DocumentOperations::Multiple(ops) => {
                *self.named.lock().unwrap_or_else(|e| e.into_inner()) = ops
                    .iter()
                    .map(|(name, op)| (name.to_string(), kind(op.node.ty)))
                    .collect();
            }
        }
        Ok(doc)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        if let Some(name) = operation_name {
            let named = self.named.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((_, t)) = named.iter().find(|(n, _)| n == name) {
                *self.operation.lock().unwrap_or_else(|e| e.into_inner()) = t;
            }
        }
        next.run(ctx, operation_name).await
    }
}
