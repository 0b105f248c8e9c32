//! GraphQL over HTTP: POST for everything but subscriptions, GET for queries only (a GET must
//! never change anything: caches and prefetchers replay them), and the GraphiQL page.

use async_graphql::http::GraphiQLSource;
use async_graphql::parser::types::OperationType;
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::HttpState;
use crate::graphql::{loaders, metrics_ext::operation_type};

/// Runs one GraphQL request with fresh per-request data (loaders).
async fn execute(state: &HttpState, req: async_graphql::Request) -> GraphQLResponse {
    let req = req.data(loaders::for_request(&state.app.db));
    state.schema.execute(req).await.into()
}

pub async fn post(State(state): State<HttpState>, req: GraphQLRequest) -> GraphQLResponse {
    execute(&state, req.into_inner()).await
}

pub async fn get(State(state): State<HttpState>, req: GraphQLRequest) -> Response {
    let req = req.into_inner();
    // Documents that do not parse go on to execution, which reports the syntax error.
    if let Ok(doc) = async_graphql::parser::parse_query(&req.query) {
        match operation_type(&doc, req.operation_name.as_deref()) {
            Some(OperationType::Query) | None => {}
            Some(_) => {
                let body = serde_json::json!({ "errors": [{
                    "message": "only queries may be sent with GET; use POST for mutations and \
                                WebSocket for subscriptions",
                    "extensions": { "code": "METHOD_NOT_ALLOWED" }
                }]});
                return (
                    StatusCode::METHOD_NOT_ALLOWED,
                    [("allow", "POST")],
                    Json(body),
                )
                    .into_response();
            }
        }
    }
    execute(&state, req).await.into_response()
}

pub async fn graphiql() -> Html<String> {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql/ws")
            .title("Pushhand GraphiQL")
            .finish(),
    )
}
