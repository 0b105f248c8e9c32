//! The schema's front door: every operation, over HTTP or WebSocket, is parsed once, held to
//! the query limits before async-graphql's own checks, executed, given error codes and
//! counted.
//!
//! A document is parsed once per distinct text ([`Api::document`]), and the parse is
//! remembered with what the limits made of it and with what the response cache may do with
//! each of its operations ([`crate::responses::Cacheability`]): the HTTP layer asks for the
//! document once, hands the cache what it may do, and hands execution the parsed document.
//!
//! This is done around the schema rather than in async-graphql extensions: with any
//! extension installed, async-graphql sends every field of every answer through its
//! extension path (a registry lookup and a boxed future per field, two type-name strings
//! per list item), which cost more than the fields themselves on a page of products.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use async_graphql::futures_util::stream::{self, BoxStream, StreamExt};
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, OperationType,
};
use async_graphql::{Data, Request, Response, ServerError, ValidationMode, Value};

use super::{cost, guard, limits, validated};
use crate::graphql::AppSchema;
use crate::metrics::{CodeLabels, Metrics};
use crate::responses::Cacheability;
use crate::state::AppState;

/// The schema with its limits and metrics. Cheap to share (`Arc`), one per app.
pub struct Api {
    schema: AppSchema,
    /// The same schema validating in async-graphql's `Fast` mode, for documents that passed
    /// the full validation once ([`validated`]).
    fast: AppSchema,
    /// The input types, to check a validated document's variables.
    inputs: validated::InputTypes,
    limits: limits::Limits,
    /// Bound on the nesting of the document's brackets and of the variables.
    max_nesting: usize,
    introspection: guard::IntrospectionLimits,
    metrics: Arc<Metrics>,
    documents: Documents,
    /// What an operation costs (`QUERY_TOO_COMPLEX` above `max_cost`).
    costs: cost::CostModel,
    max_cost: usize,
    /// Every answer reports its cost in `extensions.cost`.
    report_cost: bool,
}

/// An admitted request: the request (its document parsed), its operation's type, its cost
/// report when asked for, and the parsed document.
type Admitted = (Request, &'static str, Option<Value>, Arc<Parsed>);

/// Set in a request's data to have its answer report its cost (`extensions.cost`), as
/// `PUSHHAND_REPORT_COST` does for every answer.
#[derive(Clone, Copy, Debug)]
pub struct ReportCost;

/// A document the limits admitted: parsed, and what the response cache may do with each
/// of its operations.
#[derive(Debug)]
pub struct Parsed {
    pub doc: ExecutableDocument,
    pub cacheability: Cacheability,
    /// The operation name with which the document once passed async-graphql's full
    /// validation ([`validated`]).
    validated: OnceLock<Option<String>>,
    /// An operation's cost when no variable changes it, by operation name.
    cost: OnceLock<(Option<String>, usize)>,
}

impl Parsed {
    pub fn new(doc: ExecutableDocument, cacheability: Cacheability) -> Parsed {
        Parsed {
            doc,
            cacheability,
            validated: OnceLock::new(),
            cost: OnceLock::new(),
        }
    }
}

/// What the limits made of one document text: the parsed document, or the refusal.
pub type Admission = Result<Arc<Parsed>, ServerError>;

/// Documents already admitted or refused, by their text: clients send the same few documents
/// over and over, and parsing (pest) plus the limit walk cost more than the execution of a
/// small query — and than a hit of the response cache. A copy of the parsed document is
/// cheap next to parsing it again. The one memo of parsed documents: the response cache and
/// execution share it.
struct Documents {
    seen: moka::sync::Cache<String, Admission>,
}

impl Default for Documents {
    fn default() -> Documents {
        Documents {
            seen: moka::sync::Cache::builder()
                .max_capacity(Documents::CAPACITY)
                .weigher(|query: &String, _: &Admission| Documents::weight(query))
                .build(),
        }
    }
}

impl Documents {
    /// Bound on the memo, in bytes of text, each document counted [`Documents::OVERHEAD`]
    /// more for its parsed form (the least used go first beyond it).
    const CAPACITY: u64 = 16 << 20;
    const OVERHEAD: u32 = 1024;

    fn weight(query: &str) -> u32 {
        u32::try_from(query.len())
            .unwrap_or(u32::MAX)
            .saturating_add(Documents::OVERHEAD)
    }

    /// The admission of `query`, from the memo or from `admit`.
    fn admission(&self, query: &str, admit: impl FnOnce() -> Admission) -> Admission {
        if let Some(known) = self.seen.get(query) {
            return known;
        }
        let admission = admit();
        self.seen.insert(query.to_owned(), admission.clone());
        admission
    }
}

impl Api {
    /// The schema with everything a request needs; add per-request data (loaders, viewer)
    /// to each `async_graphql::Request`.
    pub fn new(state: AppState) -> Api {
        let metrics = state.metrics.clone();
        let l = state.config.limits.clone();
        let state_report_cost = state.config.limits.report_cost;
        let introspection = guard::IntrospectionLimits {
            enabled: state.config.introspection_enabled(),
            max_depth: l.max_introspection_depth,
            max_cost: l.max_introspection_cost,
        };
        let state = Arc::new(state);
        let build = |mode| {
            let mut schema = crate::graphql::builder();
            if !introspection.enabled {
                // A backstop: the front door refuses `__schema`/`__type` first, with a code.
                schema = schema.disable_introspection();
            }
            schema
                .data(state.clone())
                .validation_mode(mode)
                // Depth is checked by `limits` (introspection excepted); async-graphql's own
                // depth limit stays as a backstop at the parser's recursion limit.
                .limit_depth(limits::MAX_RECURSIVE_DEPTH)
                .limit_recursive_depth(limits::MAX_RECURSIVE_DEPTH)
                .limit_directives(limits::MAX_DIRECTIVES_PER_FIELD)
                .finish()
        };
        let schema = build(ValidationMode::Strict);
        let costs = cost::CostModel::from_sdl(&schema.sdl());
        Api {
            schema,
            fast: build(ValidationMode::Fast),
            inputs: validated::InputTypes::of::<
                crate::graphql::Query,
                crate::graphql::Mutation,
                crate::graphql::schema::live::Subscription,
            >(),
            limits: limits::Limits {
                guard: guard::Limits {
                    max_selections: l.max_selections,
                    max_fragments: l.max_fragments,
                    max_aliases: l.max_aliases,
                    max_root_fields: l.max_root_fields,
                },
                max_depth: l.max_depth,
            },
            max_nesting: l.max_nesting,
            introspection,
            metrics,
            documents: Documents::default(),
            costs,
            max_cost: l.max_complexity,
            report_cost: state_report_cost,
        }
    }

    /// Runs one query or mutation (a subscription document answers with an error).
    pub async fn execute(&self, request: Request) -> Response {
        let document = self.document(&request.query);
        self.execute_document(request, document).await
    }

    /// [`Api::execute`] with the request's document as [`Api::document`] gave it.
    pub async fn execute_document(&self, request: Request, document: Admission) -> Response {
        let started = Instant::now();
        let (response, operation) = match self.admit(request, document) {
            Ok((request, operation, report, parsed)) => {
                let name = request.operation_name.clone();
                let op = selected_operation(&parsed.doc, name.as_deref());
                let fast = parsed.validated.get() == Some(&name)
                    && op.is_some_and(|op| self.inputs.fit(op, &request.variables));
                let schema = if fast { &self.fast } else { &self.schema };
                let mut response = schema.execute(request).await;
                // Validation errors, and the other refusals before execution, have no path.
                if !fast && response.errors.iter().all(|e| !e.path.is_empty()) {
                    let _ = parsed.validated.set(name);
                }
                // async-graphql puts fields in the order they complete.
                if let Some(op) = op {
                    super::field_order::reorder(
                        &parsed.doc,
                        &op.selection_set.node,
                        &mut response.data,
                    );
                }
                if let Some(cost) = report {
                    response.extensions.insert("cost".into(), cost);
                }
                (response, operation)
            }
            Err(refusal) => (Response::from_errors(vec![refusal]), "invalid"),
        };
        self.finish(response, operation, started)
    }

    /// Runs one operation as a stream (subscriptions; a query or mutation answers once)
    /// with `session` as the connection's data.
    pub fn execute_stream(
        self: &Arc<Self>,
        request: Request,
        session: Arc<Data>,
    ) -> BoxStream<'static, Response> {
        let started = Instant::now();
        let document = self.document(&request.query);
        match self.admit(request, document) {
            // Counted by the WebSocket handler (`pushhand_ws_subscriptions`).
            Ok((request, _, _, _)) => {
                let api = self.clone();
                self.schema
                    .execute_stream_with_session_data(request, session)
                    .map(move |r| api.label(r))
                    .boxed()
            }
            Err(refusal) => {
                let refusal = Response::from_errors(vec![refusal]);
                stream::once(std::future::ready(self.finish(refusal, "invalid", started))).boxed()
            }
        }
    }

    /// The document `query`, parsed and held to the limits — once: a text seen before is
    /// not parsed again — with what the response cache may do with its operations; or the
    /// refusal.
    pub fn document(&self, query: &str) -> Admission {
        self.documents.admission(query, || {
            // Before the parser, which recurses on every bracket.
            guard::scan_text(query, self.max_nesting).map_err(refused)?;
            let doc = parse(query)?;
            self.limits.check(&doc)?;
            guard::check_introspection(&doc, &self.introspection).map_err(refused)?;
            let cacheability = Cacheability::of(&doc);
            Ok(Arc::new(Parsed::new(doc, cacheability)))
        })
    }

    /// Applies the variables' limits and the cost limit (per request: variables change the
    /// cost) to a request whose `document` was admitted. Returns the request with its
    /// operation's type, its cost report when asked for, and the parsed document; or the
    /// refusal.
    fn admit(&self, mut request: Request, document: Admission) -> Result<Admitted, ServerError> {
        guard::scan_variables(&request.variables, self.max_nesting).map_err(refused)?;
        check_uploads(&request)?;
        let parsed = document?;
        let doc = &parsed.doc;
        let name = request.operation_name.as_deref();
        let cost = match parsed.cost.get() {
            Some((of, cost)) if of.as_deref() == name => *cost,
            _ => {
                let (cost, reads) = self.costs.cost_and_reads(doc, name, &request.variables);
                if !reads {
                    let _ = parsed.cost.set((name.map(str::to_owned), cost));
                }
                cost
            }
        };
        if cost > self.max_cost {
            return Err(limits::coded(
                format!(
                    "the query costs {cost}, over the limit of {} (scalars 0, objects 1, a \
                     connection `first` × one item)",
                    self.max_cost
                ),
                "QUERY_TOO_COMPLEX",
            ));
        }
        let report = (self.report_cost
            || request
                .data
                .get(&std::any::TypeId::of::<ReportCost>())
                .is_some())
        .then(|| cost_report(cost, self.max_cost));
        let operation =
            operation_type(doc, request.operation_name.as_deref()).map_or("invalid", kind);
        request.set_parsed_query(ExecutableDocument::clone(doc));
        Ok((request, operation, report, parsed))
    }

    /// The checks on a request's raw text and variables ([`guard::scan_text`],
    /// [`guard::scan_variables`]), for a caller that looks into the document before
    /// [`Api::execute`] does (the HTTP handlers: GET's method check, the response cache).
    /// Linear, no recursion.
    pub fn front_door(&self, request: &Request) -> Result<(), ServerError> {
        guard::scan_text(&request.query, self.max_nesting).map_err(refused)?;
        guard::scan_variables(&request.variables, self.max_nesting).map_err(refused)
    }

    /// Bound on the nesting of a request body's JSON: the variables' bound plus the
    /// request object around them.
    pub fn max_body_nesting(&self) -> usize {
        self.max_nesting.saturating_add(1)
    }

    /// Counts a refusal made before [`Api::execute`] (by the HTTP handlers).
    pub fn count_refusal(&self, response: &Response) {
        self.metrics.count_graphql_request("invalid", 0.0);
        self.count_errors(response);
    }

    /// Gives async-graphql's own errors (validation, complexity) their codes.
    fn label(&self, mut response: Response) -> Response {
        limits::label(&mut response.errors);
        response
    }

    /// Labels and counts an answer.
    fn finish(&self, response: Response, operation: &'static str, started: Instant) -> Response {
        let response = self.label(response);
        self.metrics
            .count_graphql_request(operation, started.elapsed().as_secs_f64());
        self.count_errors(&response);
        response
    }

    fn count_errors(&self, response: &Response) {
        for err in &response.errors {
            let code = match err.extensions.as_ref().and_then(|e| e.get("code")) {
                Some(Value::String(code)) => code.clone(),
                _ => "INTERNAL".to_owned(),
            };
            self.metrics
                .graphql_errors
                .get_or_create(&CodeLabels { code })
                .inc();
        }
    }
}

/// How async-graphql's multipart parser marks a variable that is a file: the marker and
/// the file's index among the request's uploads.
const UPLOAD_MARKER: &str = "#__graphql_file__:";

/// Refuses a request whose document or variables carry the upload marker other than where
/// the multipart parser put it (`VALIDATION`, before execution): the `Upload` scalar trusts
/// the marker — it unwraps the number and indexes the request's files with it — so a
/// hand-written one would make the resolver panic. Variables' nesting is bounded by
/// [`guard::scan_variables`], which runs first.
fn check_uploads(request: &Request) -> Result<(), ServerError> {
    fn fits(value: &Value, files: usize) -> bool {
        match value {
            Value::String(s) => s
                .strip_prefix(UPLOAD_MARKER)
                .is_none_or(|n| n.parse::<usize>().is_ok_and(|n| n < files)),
            Value::List(items) => items.iter().all(|v| fits(v, files)),
            Value::Object(fields) => fields.values().all(|v| fits(v, files)),
            _ => true,
        }
    }
    let files = request.uploads.len();
    if request.query.contains(UPLOAD_MARKER)
        || !request.variables.iter().all(|(_, v)| fits(v, files))
    {
        return Err(limits::coded(
            "a file reference that names no file of this request: send files as a GraphQL \
             multipart request"
                .to_owned(),
            "VALIDATION",
        ));
    }
    Ok(())
}

/// `extensions.cost`: `{ "requestedQueryCost": n, "maximumAvailable": limit }`, in the shape
/// Shopify's API reports it.
fn cost_report(cost: usize, limit: usize) -> Value {
    let mut map = async_graphql::indexmap::IndexMap::new();
    map.insert(
        async_graphql::Name::new("requestedQueryCost"),
        Value::from(cost as u64),
    );
    map.insert(
        async_graphql::Name::new("maximumAvailable"),
        Value::from(limit as u64),
    );
    Value::Object(map)
}

/// A refusal of the guard as a GraphQL error with its code.
fn refused(refusal: guard::Refusal) -> ServerError {
    limits::coded(refusal.message(), refusal.code())
}

/// Parses a document; a syntax error is `GRAPHQL_PARSE_FAILED`.
fn parse(query: &str) -> Result<ExecutableDocument, ServerError> {
    async_graphql::parser::parse_query(query)
        .map_err(|e| limits::coded(e.to_string(), "GRAPHQL_PARSE_FAILED"))
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
    selected_operation(doc, name).map(|op| op.ty)
}

/// The operation `name` selects (the only one needs no name).
pub fn selected_operation<'a>(
    doc: &'a ExecutableDocument,
    name: Option<&str>,
) -> Option<&'a OperationDefinition> {
    match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => Some(&op.node),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| &op.node),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| &op.node)
        }
        (DocumentOperations::Multiple(_), None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admit_unlimited(query: &str) -> Admission {
        parse(query).map(|doc| {
            let cacheability = Cacheability::of(&doc);
            Arc::new(Parsed::new(doc, cacheability))
        })
    }

    #[test]
    fn a_document_is_parsed_once_and_a_refusal_is_remembered_too() {
        let docs = Documents::default();
        let parses = std::cell::Cell::new(0);
        let admit = |q: &str| {
            docs.admission(q, || {
                parses.set(parses.get() + 1);
                admit_unlimited(q)
            })
        };
        let first = admit("{ products { edges { cursor } } }").expect("parses");
        let again = admit("{ products { edges { cursor } } }").expect("parses");
        assert!(
            Arc::ptr_eq(&first, &again),
            "the second request reuses the parse"
        );
        assert!(
            first.cacheability.operation(None).catalog,
            "and what the response cache may do with it"
        );
        assert_eq!(parses.get(), 1);
        let broken = admit("{ products {").expect_err("does not parse");
        let broken_again = admit("{ products {").expect_err("still does not parse");
        assert_eq!(parses.get(), 2, "a refusal is remembered like an admission");
        assert_eq!(broken.message, broken_again.message);
        let code = |e: &ServerError| e.extensions.as_ref().and_then(|x| x.get("code")).cloned();
        assert_eq!(
            code(&broken_again),
            Some(Value::String("GRAPHQL_PARSE_FAILED".into()))
        );
        admit("{ __typename }").expect("parses");
        assert_eq!(parses.get(), 3, "another text is another document");
    }

    #[test]
    fn the_memo_is_bounded_by_the_size_of_its_documents() {
        let long = format!("{{ __typename }}{}", " ".repeat(64 * 1024));
        let docs = Documents::default();
        let parses = std::cell::Cell::new(0);
        for _ in 0..2 {
            docs.admission(&long, || {
                parses.set(parses.get() + 1);
                admit_unlimited(&long)
            })
            .expect("parses");
        }
        assert_eq!(parses.get(), 1, "a long document is remembered too");
        let n = (Documents::CAPACITY / u64::from(Documents::weight(&long))) as usize + 50;
        for i in 0..n {
            let q = format!("query Q{i} {long}");
            docs.admission(&q, || admit_unlimited(&q)).expect("parses");
        }
        docs.seen.run_pending_tasks();
        assert!(docs.seen.weighted_size() <= Documents::CAPACITY);
        assert!(docs.seen.entry_count() < n as u64);
    }
}
