//! The authorization matrix: every query field and mutation, with the roles
//! allowed to use it, checked for every role — and a client asking for
//! another client's account.

use std::collections::BTreeSet;

use switchboard_core::{AccountKind, Role};
use switchboard_graphql::Viewer;

use crate::harness::TestApp;

const ANONYMOUS: &str = "anonymous";
const CLIENT: &str = "client";
const RESELLER: &str = "reseller";
const STAFF: &str = "staff";
const ADMIN: &str = "admin";
const EVERY_ROLE: [&str; 5] = [ANONYMOUS, CLIENT, RESELLER, STAFF, ADMIN];

/// (root type, field, an operation using it, who may). `{account}` stands
/// for an account the viewer may see (their own; any for staff).
fn matrix(account_id: &str) -> Vec<(&'static str, &'static str, String, Vec<&'static str>)> {
    vec![
        ("Query", "viewer", "{ viewer { user { username } } }".into(), vec![CLIENT, RESELLER, STAFF, ADMIN]),
        (
            "Query",
            "account",
            "{ account(id: \"{account}\") { name } }".into(),
            vec![CLIENT, RESELLER, STAFF, ADMIN],
        ),
        ("Query", "accounts", "{ accounts { edges { node { name } } } }".into(), vec![STAFF, ADMIN]),
        ("Query", "emails", "{ emails { edges { node { subject } } } }".into(), vec![STAFF, ADMIN]),
        ("Query", "email", "{ email(id: \"0\") { subject } }".into(), vec![STAFF, ADMIN]),
        ("Query", "pbx", "{ pbx(id: \"0\") { state } }".into(), vec![CLIENT, RESELLER, STAFF, ADMIN]),
        ("Query", "plans", "{ plans { slug } }".into(), EVERY_ROLE.to_vec()),
        ("Query", "plan", "{ plan(slug: \"matrix\") { name } }".into(), EVERY_ROLE.to_vec()),
        ("Query", "allPlans", "{ allPlans { slug } }".into(), vec![STAFF, ADMIN]),
        ("Query", "order", "{ order(id: \"{order}\") { state } }".into(), vec![CLIENT, RESELLER, STAFF, ADMIN]),
        ("Query", "orders", "{ orders { edges { node { state } } } }".into(), vec![STAFF, ADMIN]),
        ("Query", "pbxes", "{ pbxes { edges { node { state } } } }".into(), vec![STAFF, ADMIN]),
        ("Query", "unratedCalls", "{ unratedCalls { edges { node { to } } } }".into(), vec![STAFF, ADMIN]),
        ("Query", "cdrRejects", "{ cdrRejects { edges { node { reason } } } }".into(), vec![STAFF, ADMIN]),
        ("Query", "callingPlans", "{ callingPlans { name } }".into(), vec![STAFF, ADMIN]),
        ("Query", "callingPlan", "{ callingPlan(id: \"0\") { name } }".into(), vec![STAFF, ADMIN]),
        (
            "Query",
            "previewRateImport",
            "{ previewRateImport(input: { callingPlanId: \"0\", csv: \"prefix,per_minute\\n1,0.01\" }) { errorCount } }".into(),
            vec![ADMIN],
        ),
        ("Mutation", "issueCdrToken", "mutation { issueCdrToken(pbxId: \"0\") }".into(), vec![STAFF, ADMIN]),
        ("Mutation", "priceUnratedCalls", "mutation { priceUnratedCalls(pbxId: \"0\") { priced } }".into(), vec![ADMIN]),
        (
            "Mutation",
            "importCdrCsv",
            "mutation { importCdrCsv(input: { pbxId: \"0\", csv: \"\" }) { accepted } }".into(),
            vec![STAFF, ADMIN],
        ),
        (
            "Mutation",
            "setCdrSource",
            "mutation { setCdrSource(pbxId: \"0\", url: \"x\") }".into(),
            vec![ADMIN],
        ),
        ("Mutation", "pullCdrs", "mutation { pullCdrs(pbxId: \"0\") }".into(), vec![STAFF, ADMIN]),
        (
            "Mutation",
            "setDiallingRules",
            "mutation { setDiallingRules(pbxId: \"0\", rules: { countryCode: \"1\", nationalPrefix: \"1\", internationalPrefix: \"011\", outsideLine: \"\", areaCode: \"\", serviceNumbers: [], trunks: [] }) { trunks } }".into(),
            vec![ADMIN],
        ),
        ("Mutation", "createCallingPlan", "mutation { createCallingPlan(name: \"\") { id } }".into(), vec![ADMIN]),
        (
            "Mutation",
            "importRates",
            "mutation { importRates(input: { callingPlanId: \"0\", csv: \"prefix,per_minute\\n1,0.01\" }) { added } }".into(),
            vec![ADMIN],
        ),
        (
            "Mutation",
            "signUp",
            "mutation { signUp(input: { plan: \"matrix\", username: \"\", password: \"\", passwordConfirmation: \"\", contactName: \"\", email: \"\", phone: \"\", address: \"\", acceptTerms: false, checkoutToken: \"\" }) { paymentUrl } }".into(),
            EVERY_ROLE.to_vec(),
        ),
        ("Mutation", "payOrder", "mutation { payOrder(orderId: \"{order}\") }".into(), vec![CLIENT, RESELLER, STAFF, ADMIN]),
        (
            "Mutation",
            "payWithTestCard",
            "mutation { payWithTestCard(orderId: \"{order}\", cardNumber: \"4000000000000002\") { outcome } }".into(),
            vec![CLIENT, RESELLER, STAFF, ADMIN],
        ),
        ("Mutation", "retryProvisioning", "mutation { retryProvisioning(pbxId: \"1\") { state } }".into(), vec![STAFF, ADMIN]),
        (
            "Mutation",
            "createPlan",
            "mutation { createPlan(input: { slug: \"\", name: \"\", setupFee: \"0\", monthlyFee: \"0\", includedExtensions: 0 }) { id } }".into(),
            vec![ADMIN],
        ),
        (
            "Mutation",
            "updatePlan",
            "mutation { updatePlan(id: \"{plan}\", input: { slug: \"\", name: \"\", setupFee: \"0\", monthlyFee: \"0\", includedExtensions: 0 }) { id } }".into(),
            vec![ADMIN],
        ),
        (
            "Mutation",
            "adjustBalance",
            format!(
                "mutation {{ adjustBalance(input: {{ accountId: \"{account_id}\", amount: \"1\", memo: \"m\", idempotencyKey: \"matrix\" }}) {{ replayed }} }}"
            ),
            vec![ADMIN],
        ),
        (
            "Mutation",
            "changePassword",
            "mutation { changePassword(currentPassword: \"wrong-password-1\", newPassword: \"another-password-2\") }".into(),
            vec![CLIENT, RESELLER, STAFF, ADMIN],
        ),
    ]
}

async fn run(app: &TestApp, viewer: Viewer, operation: &str) -> async_graphql::Response {
    app.state
        .schema
        .execute(async_graphql::Request::new(operation).data(viewer))
        .await
}

fn refused_by_a_guard(response: &async_graphql::Response) -> bool {
    response
        .errors
        .iter()
        .any(|e| e.message == "Sign in first." || e.message == "You are not allowed to do this.")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_operation_answers_exactly_the_roles_the_matrix_allows() {
    let app = TestApp::spawn().await;
    let client_account = app
        .account("Client Co", AccountKind::Retail, None, 5_000_000)
        .await;
    let reseller_account = app
        .account("Reseller Co", AccountKind::Wholesale, None, 0)
        .await;
    let mut viewers = vec![(ANONYMOUS, Viewer::anonymous())];
    for (name, role, account) in [
        (CLIENT, Role::Client, Some(client_account)),
        (RESELLER, Role::Reseller, Some(reseller_account)),
        (STAFF, Role::Staff, None),
        (ADMIN, Role::Admin, None),
    ] {
        let (id, _) = app.user(&format!("matrix-{name}"), role, account).await;
        viewers.push((
            name,
            Viewer::signed_in(app.session_user(id).await, "127.0.0.1"),
        ));
    }
    let rows = matrix(&client_account.0.to_string());
    let (plan_id, order_id) = order_for(&app, client_account).await;

    // The matrix must name every field the schema has.
    let introspection = run(
        &app,
        Viewer::anonymous(),
        "{ __schema { queryType { fields { name } } mutationType { fields { name } } } }",
    )
    .await;
    let data = introspection.data.into_json().expect("json");
    let mut in_schema = BTreeSet::new();
    for (root, key) in [("Query", "queryType"), ("Mutation", "mutationType")] {
        for field in data["__schema"][key]["fields"].as_array().expect("fields") {
            in_schema.insert((
                root.to_owned(),
                field["name"].as_str().expect("name").to_owned(),
            ));
        }
    }
    let in_matrix: BTreeSet<(String, String)> = rows
        .iter()
        .map(|(root, field, _, _)| (root.to_string(), field.to_string()))
        .collect();
    assert_eq!(
        in_schema, in_matrix,
        "every field needs a row in the authorization matrix"
    );

    let mut wrong = Vec::new();
    for (root, field, operation, allowed) in &rows {
        for (role, viewer) in &viewers {
            let visible = if *role == RESELLER {
                reseller_account
            } else {
                client_account
            };
            let operation = operation
                .replace("{account}", &visible.0.to_string())
                .replace("{order}", &order_id)
                .replace("{plan}", &plan_id.to_string());
            let response = run(&app, viewer.clone(), &operation).await;
            let refused = refused_by_a_guard(&response);
            // Allowed means past the guard and no failure on our side; the
            // sample operations may still meet a business rule (a wrong
            // password, someone else's order, an invalid form).
            let internal = response
                .errors
                .iter()
                .any(|e| e.message.starts_with("Something went wrong"));
            let outcome_ok = if allowed.contains(role) {
                !refused && !internal
            } else {
                refused
            };
            if !outcome_ok {
                wrong.push(format!(
                    "{root}.{field} as {role}: refused={refused}, errors={:?}",
                    response.errors
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(EVERY_ROLE.len() == viewers.len());
}

/// A plan and an order of `account` awaiting payment, written directly.
async fn order_for(app: &TestApp, account: switchboard_core::AccountId) -> (i64, String) {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use switchboard_core::schema::orders;
    let mut conn = app.conn().await;
    let plan = switchboard_core::commerce::plans::create(
        &mut conn,
        &switchboard_core::commerce::plans::PlanInput {
            slug: "matrix".into(),
            name: "Matrix".into(),
            currency: "USD".into(),
            setup_fee: "1".into(),
            monthly_fee: "2".into(),
            included_extensions: "3".into(),
            active: true,
            ..Default::default()
        },
    )
    .await
    .expect("a plan");
    diesel::insert_into(orders::table)
        .values((
            orders::public_id.eq("matrixorder0000000000000000000000"),
            orders::account_id.eq(account.0),
            orders::kind.eq("signup"),
            orders::plan_id.eq(plan),
            orders::currency.eq("USD"),
            orders::total.eq(3_000_000i64),
            orders::gateway.eq("test"),
        ))
        .execute(&mut conn)
        .await
        .expect("an order");
    (plan, "matrixorder0000000000000000000000".into())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_cannot_read_another_clients_order_or_a_pbxs_error() {
    let app = TestApp::spawn().await;
    let mine = app.account("Mine", AccountKind::Retail, None, 0).await;
    let theirs = app.account("Theirs", AccountKind::Retail, None, 0).await;
    let (_, order) = order_for(&app, theirs).await;
    let (client_id, _) = app.user("orders-owner", Role::Client, Some(mine)).await;
    let client = Viewer::signed_in(app.session_user(client_id).await, "");
    for operation in [
        format!("{{ order(id: \"{order}\") {{ state }} }}"),
        format!("mutation {{ payOrder(orderId: \"{order}\") }}"),
        format!("mutation {{ payWithTestCard(orderId: \"{order}\", cardNumber: \"4242424242424242\") {{ outcome }} }}"),
    ] {
        let response = run(&app, client.clone(), &operation).await;
        assert_eq!(response.errors[0].message, "No such order.", "{operation}");
    }
    // A PBX of the client's own, whose last error is for staff only.
    {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use switchboard_core::schema::pbxes;
        let plan: i64 = switchboard_core::schema::plans::table
            .select(switchboard_core::schema::plans::id)
            .first(&mut app.conn().await)
            .await
            .expect("the plan");
        diesel::insert_into(pbxes::table)
            .values((
                pbxes::account_id.eq(mine.0),
                pbxes::plan_id.eq(plan),
                pbxes::request_id.eq("pbx-guarded"),
                pbxes::gui_password_sealed.eq("v1:x"),
                pbxes::state.eq("failed"),
                pbxes::last_error.eq("controller said 503 at http://10.9.8.7/internal"),
            ))
            .execute(&mut app.conn().await)
            .await
            .expect("a PBX");
    }
    let own = run(
        &app,
        client,
        "{ viewer { account { pbxes { state lastError } } } }",
    )
    .await;
    assert_eq!(own.errors[0].message, "You are not allowed to do this.");
    assert!(!format!("{:?}", own.data).contains("10.9.8.7"));
    let (staff_id, _) = app.user("pbx-staff", Role::Staff, None).await;
    let staff = Viewer::signed_in(app.session_user(staff_id).await, "");
    let seen = run(&app, staff, "{ pbxes { edges { node { lastError } } } }").await;
    assert!(
        format!("{:?}", seen.data).contains("10.9.8.7"),
        "staff see it"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_cannot_read_another_clients_account_and_a_reseller_reads_only_its_own() {
    let app = TestApp::spawn().await;
    let mine = app
        .account("Mine", AccountKind::Retail, None, 1_000_000)
        .await;
    let theirs = app
        .account("Theirs", AccountKind::Retail, None, 9_000_000)
        .await;
    let reseller = app
        .account("Wholesale", AccountKind::Wholesale, None, 0)
        .await;
    let sub = app
        .account("Sub", AccountKind::Retail, Some(reseller), 0)
        .await;
    let (client_id, _) = app.user("owner", Role::Client, Some(mine)).await;
    let (reseller_id, _) = app.user("resells", Role::Reseller, Some(reseller)).await;
    let (staff_id, _) = app.user("helper", Role::Staff, None).await;
    let client = Viewer::signed_in(app.session_user(client_id).await, "");
    let reseller_viewer = Viewer::signed_in(app.session_user(reseller_id).await, "");
    let staff = Viewer::signed_in(app.session_user(staff_id).await, "");
    let read = |id: i64| format!("{{ account(id: \"{id}\") {{ name balance {{ micros }} }} }}");

    let own = run(&app, client.clone(), &read(mine.0)).await;
    assert!(own.errors.is_empty(), "{:?}", own.errors);
    let other = run(&app, client.clone(), &read(theirs.0)).await;
    assert_eq!(other.errors[0].message, format!("No account {}.", theirs.0));
    assert!(!format!("{:?}", other.data).contains("9000000"));
    let missing = run(&app, client, &read(999_999)).await;
    assert_eq!(
        missing.errors[0].message, "No account 999999.",
        "unknown and foreign ids read alike"
    );

    assert!(run(&app, reseller_viewer.clone(), &read(reseller.0))
        .await
        .errors
        .is_empty());
    assert!(run(&app, reseller_viewer.clone(), &read(sub.0))
        .await
        .errors
        .is_empty());
    assert!(!run(&app, reseller_viewer, &read(theirs.0))
        .await
        .errors
        .is_empty());
    assert!(run(&app, staff, &read(theirs.0)).await.errors.is_empty());
}
