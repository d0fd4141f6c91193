//! What one request may ask of the server: refused before it runs when it
//! would cost more than it is worth, answered when a person's tool asks.

use std::time::Duration;

use serde_json::{json, Value};
use switchboard_graphql::limits::fragment_bomb;

use crate::harness::TestApp;

/// An anonymous `POST /graphql`, with a deadline so that a server that
/// works on it for ever fails the test instead of hanging it.
async fn post(app: &TestApp, body: Value) -> Value {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("a client")
        .post(app.url("/graphql"))
        .json(&body)
        .send()
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("a JSON answer")
}

fn messages(answer: &Value) -> Vec<String> {
    answer["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thirty_level_fragment_bomb_is_refused_before_anything_expands_it() {
    let app = TestApp::spawn().await;
    let answer = post(&app, json!({ "query": fragment_bomb(30) })).await;
    assert!(answer["data"].is_null(), "{answer}");
    let said = messages(&answer);
    assert!(
        said.iter().any(|m| m.contains("too many fields")),
        "{said:?}"
    );
    // And the server still answers.
    let health = reqwest::get(app.url("/healthz")).await.expect("GET");
    assert_eq!(health.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_month_of_calls_as_csv_can_be_asked_for_once_a_request() {
    let app = TestApp::spawn().await;
    let (_, username, password) = app.client("aliases", 0).await;
    let http = app.signed_in(&username, &password).await;
    let once = app
        .graphql(&http, "{ viewer { account { callsCsv } } }", json!({}))
        .await;
    assert!(once["errors"].is_null(), "{once}");
    let twice = app
        .graphql(
            &http,
            "{ viewer { account { a: callsCsv b: callsCsv(month: LAST) } } }",
            json!({}),
        )
        .await;
    assert_eq!(messages(&twice), ["Query is too complex."], "{twice}");
    assert!(twice["data"].is_null());
    // Spread over several accounts by alias, it is the same request.
    let spread = app
        .graphql(
            &http,
            "{ a: viewer { account { callsCsv } } b: viewer { account { callsCsv } } }",
            json!({}),
        )
        .await;
    assert_eq!(messages(&spread), ["Query is too complex."]);
}

#[tokio::test(flavor = "multi_thread")]
async fn reports_and_rate_tables_cost_their_work() {
    let app = TestApp::spawn().await;
    let (_, username, password) = app.client("reports", 0).await;
    let http = app.signed_in(&username, &password).await;
    let reports: String = (0..13)
        .map(|n| format!("r{n}: report {{ unrated }} "))
        .collect();
    let answer = app
        .graphql(
            &http,
            &format!("{{ viewer {{ account {{ {reports} }} }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(messages(&answer), ["Query is too complex."]);

    let (_, password) = app
        .user("rates-reader", switchboard_core::Role::Staff, None)
        .await;
    let staff = app.signed_in("rates-reader", &password).await;
    let exports = app
        .graphql(
            &staff,
            "{ callingPlans { a: exportCsv b: exportCsv c: exportCsv } }",
            json!({}),
        )
        .await;
    assert_eq!(messages(&exports), ["Query is too complex."]);
}

#[tokio::test(flavor = "multi_thread")]
async fn graphiqls_own_introspection_query_is_answered() {
    let app = TestApp::spawn().await;
    let answer = post(
        &app,
        json!({
            "query": include_str!("graphiql_introspection.graphql"),
            "operationName": "IntrospectionQuery",
        }),
    )
    .await;
    assert!(
        answer["errors"].is_null(),
        "{}",
        messages(&answer).join("; ")
    );
    let types = answer["data"]["__schema"]["types"]
        .as_array()
        .expect("types");
    assert!(types.iter().any(|t| t["name"] == "Account"));
}

#[tokio::test(flavor = "multi_thread")]
async fn introspection_that_nests_lists_past_graphiqls_needs_is_refused() {
    let app = TestApp::spawn().await;
    let answer = post(
        &app,
        json!({ "query": "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }" }),
    )
    .await;
    assert!(answer["data"].is_null());
    assert!(messages(&answer)[0].contains("nests too many lists"));
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_directives_get_a_short_list_of_errors() {
    let app = TestApp::spawn().await;
    let fields: String = (0..400)
        .map(|n| format!("p{n}: plan(slug: \"x\") @nope @nope @nope {{ name }} "))
        .collect();
    let response = reqwest::Client::new()
        .post(app.url("/graphql"))
        .json(&json!({ "query": format!("{{ {fields} }}") }))
        .send()
        .await
        .expect("POST");
    let body = response.text().await.expect("body");
    assert!(body.len() < 20_000, "{} bytes of errors", body.len());
    let answer: Value = serde_json::from_str(&body).expect("JSON");
    let said = messages(&answer);
    assert!(said.len() <= 21, "{} errors", said.len());
    assert!(!said.is_empty(), "{}", &body[..body.len().min(500)]);
    assert!(
        said.last().expect("errors").contains("more errors"),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nul_in_a_string_is_a_clear_validation_error() {
    let app = TestApp::spawn().await;
    for body in [
        json!({ "query": "{ plan(slug: \"a\\u0000b\") { name } }" }),
        json!({ "query": "query($s: String!) { plan(slug: $s) { name } }", "variables": { "s": "a\u{0}b" } }),
    ] {
        let answer = post(&app, body).await;
        let said = messages(&answer);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].contains("NUL character"), "{said:?}");
    }
}
