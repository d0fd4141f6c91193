//! Pages read and change data only by running a GraphQL operation of the one
//! schema, in-process, as the viewer: what a page can do, an API client can
//! do with the same operation, and nothing more.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{OnceLock, RwLock};

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use async_graphql::Variables;
use serde::de::DeserializeOwned;
use switchboard_graphql::SessionToken;

use crate::{AppState, PageContext};

/// Why an operation gave no data.
#[derive(Debug)]
pub enum OperationError {
    /// The schema said no (a guard, bad input): messages meant for people.
    Refused(Vec<String>),
    /// Some input fields are wrong: (field, message) pairs to show beside them.
    Invalid(Vec<(String, String)>),
    /// The answer did not have the shape the page expects: a bug.
    Unexpected(String),
    /// The database is not answering: try again in a moment.
    Unavailable,
}

impl OperationError {
    /// One line for the person looking at the page.
    pub fn message(&self) -> String {
        match self {
            OperationError::Refused(messages) => messages.join(" "),
            OperationError::Invalid(_) => "Some fields need correcting.".into(),
            OperationError::Unexpected(_) => {
                "Something went wrong on our side; it has been logged.".into()
            }
            OperationError::Unavailable => {
                "The database is not answering; try again in a moment.".into()
            }
        }
    }

    /// The status a page answers with when it cannot go on: 503 while the
    /// database is down (a retry will do), 500 for what a retry won't mend.
    pub fn status(&self) -> poem::http::StatusCode {
        use poem::http::StatusCode;
        match self {
            OperationError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            OperationError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            OperationError::Refused(_) | OperationError::Unexpected(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

/// Runs `operation` with `variables` as the viewer of `ctx`.
pub async fn run<T: DeserializeOwned>(
    state: &AppState,
    ctx: &PageContext,
    operation: &str,
    variables: serde_json::Value,
) -> Result<T, OperationError> {
    let data = run_value(state, ctx, operation, variables).await?;
    // Read straight from the schema's answer: made into JSON first, it
    // cost the report page about 6% of the server's time.
    async_graphql::from_value(data).map_err(|e| {
        tracing::error!(error = %e, "a page's operation returned an unexpected shape");
        OperationError::Unexpected(e.to_string())
    })
}

/// The answer of an operation, as the schema gives it.
///
/// Boxed, and not generic: `run` is generic over the page's data, so
/// without the box each crate with pages would compile this again (see
/// `switchboard_graphql::execute`, which boxes the schema's execution).
fn run_value<'a>(
    state: &'a AppState,
    ctx: &'a PageContext,
    operation: &'a str,
    variables: serde_json::Value,
) -> Pin<Box<dyn Future<Output = Result<async_graphql::Value, OperationError>> + Send + 'a>> {
    Box::pin(async move {
        let mut request = async_graphql::Request::new(operation)
            .variables(Variables::from_json(variables))
            .data(ctx.viewer.clone());
        let (mut reads_only, mut accepted) = (false, false);
        if let Some(kept) = parsed(operation) {
            request.set_parsed_query(kept.document);
            (reads_only, accepted) = (kept.reads_only, kept.accepted);
        }
        if let Some(token) = &ctx.session_token {
            request = request.data(SessionToken(token.clone()));
        }
        let schema = if accepted {
            &state.accepted_texts_schema
        } else {
            &state.schema
        };
        let started = std::time::Instant::now();
        let response = switchboard_graphql::execute(schema, request).await;
        switchboard_core::metrics::graphql_ran(started.elapsed());
        if response.errors.is_empty() && reads_only && !accepted {
            accept(operation);
        }
        if !response.errors.is_empty() {
            let fields: Vec<(String, String)> = response
                .errors
                .iter()
                .filter_map(|e| e.extensions.as_ref()?.get("fields"))
                .filter_map(|v| match v {
                    async_graphql::Value::List(items) => Some(items.clone()),
                    _ => None,
                })
                .flatten()
                .filter_map(|item| {
                    let json = item.into_json().ok()?;
                    Some((
                        json["field"].as_str()?.to_owned(),
                        json["message"].as_str()?.to_owned(),
                    ))
                })
                .collect();
            if !fields.is_empty() {
                return Err(OperationError::Invalid(fields));
            }
            // Resolvers hide what went wrong from the viewer; asking the
            // database tells an outage (503, try again) from a failure.
            if switchboard_core::db::ping(&state.pool).await.is_err() {
                return Err(OperationError::Unavailable);
            }
            return Err(OperationError::Refused(
                response.errors.into_iter().map(|e| e.message).collect(),
            ));
        }
        Ok(response.data)
    })
}

/// How many operation texts are kept parsed. Pages send a few dozen fixed
/// texts; a text past this many is parsed on every run, as before.
const PARSED_KEPT: usize = 256;

/// An operation text as kept.
#[derive(Clone)]
struct Kept {
    document: ExecutableDocument,
    /// Whether the text only reads (every operation in it is a query).
    reads_only: bool,
    /// Whether the strict schema has run it without an error; a text
    /// that only reads is then run on the schema for accepted texts.
    accepted: bool,
}

/// The operation texts seen, parsed; one map per process, filled as pages
/// run (the texts are in the binary, so every instance fills its own alike).
fn kept() -> &'static RwLock<HashMap<String, Kept>> {
    static KEPT: OnceLock<RwLock<HashMap<String, Kept>>> = OnceLock::new();
    KEPT.get_or_init(Default::default)
}

/// `operation` parsed, from the texts already seen. A page sends one of a
/// few fixed texts, and parsing it again on every request was a few
/// hundredths of a panel page's time. `None` when the text does not parse:
/// the schema's execution then says why, as it does for any client.
fn parsed(operation: &str) -> Option<Kept> {
    if let Some(kept) = kept().read().ok()?.get(operation) {
        return Some(kept.clone());
    }
    let document = async_graphql::parser::parse_query(operation).ok()?;
    let reads_only = match &document.operations {
        DocumentOperations::Single(one) => one.node.ty == OperationType::Query,
        DocumentOperations::Multiple(many) => {
            many.values().all(|one| one.node.ty == OperationType::Query)
        }
    };
    let fresh = Kept {
        document,
        reads_only,
        accepted: false,
    };
    if let Ok(mut kept) = kept().write() {
        if kept.len() < PARSED_KEPT {
            kept.insert(operation.to_owned(), fresh.clone());
        }
    }
    Some(fresh)
}

/// Whether `operation` now runs on the schema for accepted texts.
pub fn is_accepted(operation: &str) -> bool {
    kept()
        .read()
        .is_ok_and(|kept| kept.get(operation).is_some_and(|kept| kept.accepted))
}

/// Notes that the strict schema ran `operation` without an error. Only a
/// kept text that only reads is marked: changes always run on the strict
/// schema, where a form's values are checked against every rule.
fn accept(operation: &str) {
    if let Ok(mut kept) = kept().write() {
        if let Some(kept) = kept.get_mut(operation) {
            kept.accepted = kept.reads_only;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_kept(text: &str) -> bool {
        kept().read().expect("the kept texts").contains_key(text)
    }

    #[test]
    fn an_operation_is_parsed_once_then_given_out_as_parsed() {
        let text = "query KeptParsed { plans { slug } }";
        assert!(!is_kept(text));
        let first = parsed(text).expect("parses").document;
        assert!(is_kept(text));
        let again = parsed(text).expect("parses").document;
        assert_eq!(format!("{first:?}"), format!("{again:?}"));
        assert_eq!(
            format!("{again:?}"),
            format!(
                "{:?}",
                async_graphql::parser::parse_query(text).expect("parses")
            )
        );
    }

    #[test]
    fn only_a_kept_text_that_only_reads_is_marked_accepted() {
        let read = "query AcceptedRead { plans { slug } }";
        let change = "mutation AcceptedChange { signOut }";
        let mixed = "query A { plans { slug } } mutation B { signOut }";
        for text in [read, change, mixed] {
            assert!(!parsed(text).expect("parses").accepted);
            accept(text);
        }
        assert!(is_accepted(read));
        assert!(parsed(read).expect("kept").accepted);
        assert!(!is_accepted(change));
        assert!(!is_accepted(mixed));
        // A text never seen is not kept, so there is nothing to mark.
        let unseen = "query NeverSeen { plans { slug } }";
        accept(unseen);
        assert!(!is_kept(unseen) && !is_accepted(unseen));
    }

    #[test]
    fn a_text_that_does_not_parse_is_left_to_the_schema_and_not_kept() {
        let text = "query Broken { plans { slug }";
        assert!(parsed(text).is_none());
        assert!(!is_kept(text));
    }
}
