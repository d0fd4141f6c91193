use serde_json::json;
use switchboard_core::{AccountKind, Role};

use crate::harness::TestApp;

#[tokio::test(flavor = "multi_thread")]
async fn the_viewer_sees_their_account_its_balance_and_recent_entries() {
    let app = TestApp::spawn().await;
    let (_, username, password) = app.client("quinn", 7_250_000).await;
    let http = app.signed_in(&username, &password).await;
    let answer = app
        .graphql(
            &http,
            "{ viewer { user { username role } account { name currency balance { micros formatted } recentEntries { kind memo amount { micros } } } } }",
            json!({}),
        )
        .await;
    let viewer = &answer["data"]["viewer"];
    assert_eq!(viewer["user"]["role"], "CLIENT");
    assert_eq!(viewer["account"]["balance"]["micros"], "7250000");
    assert_eq!(viewer["account"]["balance"]["formatted"], "$7.25");
    assert_eq!(
        viewer["account"]["recentEntries"][0]["amount"]["micros"],
        "7250000"
    );
    assert_eq!(viewer["account"]["recentEntries"][0]["kind"], "adjustment");
}

#[tokio::test(flavor = "multi_thread")]
async fn staff_list_accounts_with_balances_filters_and_pages() {
    let app = TestApp::spawn().await;
    for n in 0..5 {
        app.account(
            &format!("Alpha {n}"),
            AccountKind::Retail,
            None,
            n * 1_000_000,
        )
        .await;
    }
    app.account("Beta Ltd", AccountKind::Wholesale, None, 0)
        .await;
    let (_, password) = app.user("stan", Role::Staff, None).await;
    let http = app.signed_in("stan", &password).await;
    let page = |first: i32, after: Option<String>, search: Option<&str>| {
        let http = http.clone();
        let app = &app;
        let search = search.map(str::to_owned);
        async move {
            app.graphql(
                &http,
                "query($first: Int!, $after: String, $search: String) { accounts(first: $first, after: $after, search: $search) { edges { cursor node { name balance { micros } } } pageInfo { hasNextPage endCursor } } }",
                json!({ "first": first, "after": after, "search": search }),
            )
            .await
        }
    };
    let first = page(4, None, None).await;
    let edges = first["data"]["accounts"]["edges"]
        .as_array()
        .expect("edges")
        .clone();
    assert_eq!(edges.len(), 4);
    assert_eq!(edges[2]["node"]["balance"]["micros"], "2000000");
    assert_eq!(first["data"]["accounts"]["pageInfo"]["hasNextPage"], true);
    let cursor = first["data"]["accounts"]["pageInfo"]["endCursor"]
        .as_str()
        .map(str::to_owned);
    let second = page(4, cursor, None).await;
    let names: Vec<&str> = second["data"]["accounts"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter_map(|e| e["node"]["name"].as_str())
        .collect();
    assert_eq!(names, ["Alpha 4", "Beta Ltd"]);
    assert_eq!(second["data"]["accounts"]["pageInfo"]["hasNextPage"], false);
    let beta = page(10, None, Some("beta")).await;
    assert_eq!(
        beta["data"]["accounts"]["edges"]
            .as_array()
            .expect("edges")
            .len(),
        1
    );
    let wildcard = page(10, None, Some("%")).await;
    assert_eq!(
        wildcard["data"]["accounts"]["edges"]
            .as_array()
            .expect("edges")
            .len(),
        0,
        "% is searched literally"
    );
    let too_many = page(500, None, None).await;
    assert_eq!(
        too_many["errors"][0]["message"],
        "first must be between 1 and 200."
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_adjustment_moves_the_balance_once_per_key() {
    let app = TestApp::spawn().await;
    let account = app.account("Gamma", AccountKind::Retail, None, 0).await;
    let (_, password) = app.user("ada", Role::Admin, None).await;
    let http = app.signed_in("ada", &password).await;
    let adjust = |amount: &str, key: &str| {
        let (http, app) = (http.clone(), &app);
        let variables = json!({ "input": { "accountId": account.0.to_string(), "amount": amount, "memo": "goodwill", "idempotencyKey": key } });
        async move {
            app.graphql(
                &http,
                "mutation($input: AdjustBalanceInput!) { adjustBalance(input: $input) { replayed transactionId account { balance { micros } } } }",
                variables,
            )
            .await
        }
    };
    let first = adjust("12.50", "k1").await;
    assert_eq!(
        first["data"]["adjustBalance"]["account"]["balance"]["micros"],
        "12500000"
    );
    assert_eq!(first["data"]["adjustBalance"]["replayed"], false);
    let again = adjust("12.50", "k1").await;
    assert_eq!(again["data"]["adjustBalance"]["replayed"], true);
    assert_eq!(
        again["data"]["adjustBalance"]["transactionId"],
        first["data"]["adjustBalance"]["transactionId"]
    );
    assert_eq!(
        again["data"]["adjustBalance"]["account"]["balance"]["micros"],
        "12500000"
    );
    let conflict = adjust("99", "k1").await;
    assert_eq!(
        conflict["errors"][0]["message"],
        "This idempotency key was used for a different adjustment."
    );
    let bad = adjust("twelve", "k2").await;
    assert_eq!(
        bad["errors"][0]["message"],
        "The amount is not a number such as 12.50."
    );
    let debit = adjust("-2.5", "k3").await;
    assert_eq!(
        debit["data"]["adjustBalance"]["account"]["balance"]["micros"],
        "10000000"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn queries_that_are_too_deep_or_too_costly_are_refused() {
    let app = TestApp::spawn().await;
    let (_, password) = app.user("deep", Role::Staff, None).await;
    let http = app.signed_in("deep", &password).await;
    // Deeper than GraphiQL's own introspection query (nine `ofType`s).
    let deep = format!(
        "{{ __schema {{ types {{ fields {{ type {{ {} name {} }} }} }} }} }}",
        "ofType { ".repeat(12),
        "} ".repeat(12)
    );
    let answer = app.graphql(&http, &deep, json!({})).await;
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .expect("an error")
            .contains("nested too deep"),
        "{answer}"
    );
    let costly: String = (0..30)
        .map(|n| format!("a{n}: accounts(first: 200) {{ edges {{ node {{ name }} }} }} "))
        .collect();
    let answer = app
        .graphql(&http, &format!("{{ {costly} }}"), json!({}))
        .await;
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .expect("an error")
            .contains("complex"),
        "{answer}"
    );
}

#[test]
fn schema_graphql_is_what_print_schema_prints() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let stored = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        stored == switchboard_graphql::sdl(),
        "schema.graphql is stale: run `cargo run -- print-schema > schema.graphql`"
    );
}
