//! Pages read and change data only by running a GraphQL operation of the one
//! schema, in-process, as the viewer: what a page can do, an API client can
//! do with the same operation, and nothing more.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{OnceLock, RwLock};

use async_graphql::parser::types::ExecutableDocument;
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
    let data = run_json(state, ctx, operation, variables).await?;
    serde_json::from_value(data).map_err(|e| {
        tracing::error!(error = %e, "a page's operation returned an unexpected shape");
        OperationError::Unexpected(e.to_string())
    })
}

/// The answer of an operation, as JSON.
///
/// Boxed, and not generic: `run` is generic over the page's data, so
/// without the box each crate with pages would compile this again (see
/// `switchboard_graphql::execute`, which boxes the schema's execution).
fn run_json<'a>(
    state: &'a AppState,
    ctx: &'a PageContext,
    operation: &'a str,
    variables: serde_json::Value,
) -> Pin<Box<dyn Future<Output = Result<serde_json::Value, OperationError>> + Send + 'a>> {
    Box::pin(async move {
        let mut request = async_graphql::Request::new(operation)
            .variables(Variables::from_json(variables))
            .data(ctx.viewer.clone());
        if let Some(document) = parsed(operation) {
            request.set_parsed_query(document);
        }
        if let Some(token) = &ctx.session_token {
            request = request.data(SessionToken(token.clone()));
        }
        let started = std::time::Instant::now();
        let response = switchboard_graphql::execute(&state.schema, request).await;
        switchboard_core::metrics::graphql_ran(started.elapsed());
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
        response
            .data
            .into_json()
            .map_err(|e| OperationError::Unexpected(e.to_string()))
    })
}

/// How many operation texts are kept parsed. Pages send a few dozen fixed
/// texts; a text past this many is parsed on every run, as before.
const PARSED_KEPT: usize = 256;

/// The operation texts seen, parsed; one map per process, filled as pages
/// run (the texts are in the binary, so every instance fills its own alike).
fn kept() -> &'static RwLock<HashMap<String, ExecutableDocument>> {
    static KEPT: OnceLock<RwLock<HashMap<String, ExecutableDocument>>> = OnceLock::new();
    KEPT.get_or_init(Default::default)
}

/// `operation` parsed, from the texts already seen. A page sends one of a
/// few fixed texts, and parsing it again on every request was a few
/// hundredths of a panel page's time. `None` when the text does not parse:
/// the schema's execution then says why, as it does for any client.
fn parsed(operation: &str) -> Option<ExecutableDocument> {
    if let Some(document) = kept().read().ok()?.get(operation) {
        return Some(document.clone());
    }
    let document = async_graphql::parser::parse_query(operation).ok()?;
    if let Ok(mut kept) = kept().write() {
        if kept.len() < PARSED_KEPT {
            kept.insert(operation.to_owned(), document.clone());
        }
    }
    Some(document)
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
        let first = parsed(text).expect("parses");
        assert!(is_kept(text));
        let again = parsed(text).expect("parses");
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
    fn a_text_that_does_not_parse_is_left_to_the_schema_and_not_kept() {
        let text = "query Broken { plans { slug }";
        assert!(parsed(text).is_none());
        assert!(!is_kept(text));
    }
}
