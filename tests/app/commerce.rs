//! From the cart to a running PBX, through the test gateway and the
//! simulated controller; every fault the issue lists.

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use switchboard_controller::simulator::Faults;
use switchboard_core::schema::{
    accounts, background_jobs, emails, journal_transactions, orders, pbxes, users,
};
use switchboard_core::{commerce::plans, money::ledger, AccountId};
use switchboard_jobs::run_due;

use crate::harness::{csrf_in, TestApp};

pub async fn seed_plan(app: &TestApp) -> i64 {
    let mut conn = app.conn().await;
    plans::create(
        &mut conn,
        &plans::PlanInput {
            slug: "office".into(),
            name: "Office".into(),
            description: "Fifteen desks".into(),
            currency: "USD".into(),
            setup_fee: "99".into(),
            monthly_fee: "79".into(),
            included_extensions: "15".into(),
            active: true,
            position: 0,
            calling_plan_id: None,
        },
    )
    .await
    .expect("a plan")
}

/// The checkout form filled in well, for `username`.
pub fn good_form(username: &str) -> Vec<(&'static str, String)> {
    vec![
        ("plan", "office".into()),
        ("username", username.into()),
        ("password", "a-good-password".into()),
        ("password_confirmation", "a-good-password".into()),
        ("contact_name", "Nora New".into()),
        ("company", "New & Co".into()),
        ("email", format!("{username}@example.com")),
        ("phone", "+1 555 010 0199".into()),
        ("address", "1 Main Street, Springfield".into()),
        ("accept_terms", "yes".into()),
    ]
}

/// Opens the cart, then posts `fields` with its CSRF and checkout tokens.
pub async fn checkout(
    app: &TestApp,
    http: &reqwest::Client,
    fields: &[(&'static str, String)],
) -> (reqwest::Response, String) {
    let cart = app.page(http, "/cart?plan=office").await;
    let token = checkout_token(&cart);
    (post_checkout(app, http, &cart, &token, fields).await, token)
}

pub fn checkout_token(page: &str) -> String {
    let start = page
        .find("name=\"checkout_token\" value=\"")
        .expect("a checkout token")
        + 29;
    page[start..start + page[start..].find('"').expect("end")].to_owned()
}

pub async fn post_checkout(
    app: &TestApp,
    http: &reqwest::Client,
    page: &str,
    token: &str,
    fields: &[(&'static str, String)],
) -> reqwest::Response {
    let mut form: Vec<(&str, String)> = fields.to_vec();
    form.push(("csrf", csrf_in(page).expect("a CSRF token")));
    form.push(("checkout_token", token.to_owned()));
    http.post(app.url("/checkout"))
        .form(&form)
        .send()
        .await
        .expect("POST /checkout")
}

async fn counts(app: &TestApp) -> (i64, i64, i64) {
    let mut conn = app.conn().await;
    let a = accounts::table
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    let u = users::table
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    let o = orders::table
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    (a, u, o)
}

/// Pays an order at the test gateway's page; returns the response.
pub async fn pay(
    app: &TestApp,
    http: &reqwest::Client,
    order: &str,
    card: &str,
    authenticated: Option<&str>,
) -> reqwest::Response {
    let page = app.page(http, &format!("/pay/test/{order}")).await;
    let mut form = vec![
        ("csrf", csrf_in(&page).expect("a CSRF token")),
        ("card_number", card.to_owned()),
    ];
    if let Some(answer) = authenticated {
        form.push(("authenticated", answer.to_owned()));
    }
    http.post(app.url(&format!("/pay/test/{order}")))
        .form(&form)
        .send()
        .await
        .expect("POST")
}

/// Runs the job queue as a serving instance would, but without waiting for
/// backoffs: every queued job is made due before each pass.
pub async fn run_jobs(app: &TestApp, passes: usize) -> switchboard_jobs::Pass {
    let mut total = switchboard_jobs::Pass::default();
    for _ in 0..passes {
        let mut conn = app.conn().await;
        diesel::update(background_jobs::table)
            .set(background_jobs::run_after.eq(Utc::now()))
            .execute(&mut conn)
            .await
            .expect("due now");
        let pass = run_due(&app.pool, &app.jobs).await.expect("a pass");
        total.succeeded += pass.succeeded;
        total.failed += pass.failed;
        total.given_up += pass.given_up;
        if pass == switchboard_jobs::Pass::default() {
            break;
        }
    }
    total
}

fn order_of(location: &str) -> String {
    location.rsplit('/').next().expect("an order id").to_owned()
}

/// Signs a new client up and returns (browser, order id).
pub async fn signed_up(app: &TestApp, username: &str) -> (reqwest::Client, String) {
    let http = TestApp::browser();
    let (response, _) = checkout(app, &http, &good_form(username)).await;
    assert_eq!(response.status(), 303, "{:?}", response.text().await);
    let location = response.headers()["location"]
        .to_str()
        .expect("text")
        .to_owned();
    assert!(location.contains("/pay/test/"), "{location}");
    (http, order_of(&location))
}

async fn order_state(app: &TestApp, order: &str) -> String {
    let mut conn = app.conn().await;
    orders::table
        .filter(orders::public_id.eq(order))
        .select(orders::state)
        .first(&mut conn)
        .await
        .expect("the order")
}

#[tokio::test(flavor = "multi_thread")]
async fn checkout_with_invalid_fields_shows_every_error_at_once_and_creates_nothing() {
    let app = TestApp::spawn().await;
    seed_plan(&app).await;
    let before = counts(&app).await;
    let http = TestApp::browser();
    let form = vec![
        ("plan", "office".to_owned()),
        ("username", "x".into()),
        ("password", "short".into()),
        ("password_confirmation", "short".into()),
        ("contact_name", "".into()),
        ("email", "not-an-email".into()),
        ("phone", "12".into()),
        ("address", "".into()),
        ("company", "Kept & Co".into()),
    ];
    let (response, _) = checkout(&app, &http, &form).await;
    assert_eq!(response.status(), 422);
    let page = response.text().await.expect("body");
    for message in [
        "Username must be at least 3 characters.",
        "Password must be at least 10 characters.",
        "Your name must be 1 to 100 characters.",
        "Email must look like name@example.com.",
        "Phone must be a phone number",
        "Postal address must be a postal address.",
        "The terms must be accepted to sign up.",
    ] {
        assert!(page.contains(message), "missing {message:?}");
    }
    assert!(
        page.contains("value=\"not-an-email\""),
        "what was typed is kept"
    );
    assert!(page.contains("value=\"Kept &amp; Co\""));
    assert!(
        !page.contains("value=\"short\""),
        "passwords are never echoed"
    );
    assert_eq!(counts(&app).await, before, "nothing was created");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_taken_username_is_said_plainly_and_a_taken_email_is_told_to_its_owner_only() {
    let app = TestApp::spawn().await;
    seed_plan(&app).await;
    let (_, taken, _) = app.client("taken", 0).await;
    let mut form = good_form(&taken);
    form[6].1 = "fresh@example.com".into();
    let (response, _) = checkout(&app, &TestApp::browser(), &form).await;
    assert_eq!(response.status(), 422);
    assert!(response
        .text()
        .await
        .expect("body")
        .contains("Username is taken: choose another, or sign in if it is yours."));
    let mut form = good_form("someone-new");
    form[6].1 = "taken@example.com".into();
    let (response, _) = checkout(&app, &TestApp::browser(), &form).await;
    let page = response.text().await.expect("body");
    assert!(page.contains("Email needs checking: look in its inbox for our message."));
    assert!(
        !page.contains("already has an account"),
        "the form does not tell a stranger who has an account"
    );
    // The owner hears of it, once however often it is tried.
    let (again, _) = checkout(&app, &TestApp::browser(), &form).await;
    assert_eq!(again.status(), 422);
    let told: Vec<String> = emails::table
        .filter(emails::to_address.eq("taken@example.com"))
        .select(emails::text_body)
        .load(&mut app.conn().await)
        .await
        .expect("emails");
    assert_eq!(told.len(), 1);
    assert!(told[0].contains("It already has an account"));
}

/// A `signUp` as an anonymous API client from `address` (a trusted proxy's
/// `X-Forwarded-For`).
async fn sign_up_from(
    app: &TestApp,
    address: &str,
    query: &str,
    input: serde_json::Value,
) -> serde_json::Value {
    reqwest::Client::new()
        .post(app.url("/graphql"))
        .header("x-forwarded-for", address)
        .json(&serde_json::json!({ "query": query, "variables": { "input": input } }))
        .send()
        .await
        .expect("POST /graphql")
        .json()
        .await
        .expect("JSON")
}

fn sign_up_input(username: &str, token: &str, password: &str) -> serde_json::Value {
    serde_json::json!({
        "plan": "office", "username": username, "password": password,
        "passwordConfirmation": password, "contactName": "Nora New",
        "email": format!("{username}@example.com"), "phone": "+1 555 010 0199",
        "address": "1 Main Street", "acceptTerms": true, "checkoutToken": token,
    })
}

const SIGN_UP: &str =
    "mutation($input: SignUpInput!) { signUp(input: $input) { userId order { id } } }";

fn first_message(answer: &serde_json::Value) -> String {
    answer["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_signs_up_once_however_many_aliases_it_sends() {
    let app =
        TestApp::spawn_with(|s| s.trusted_proxies = vec!["127.0.0.1".parse().expect("address")])
            .await;
    seed_plan(&app).await;
    let answer = sign_up_from(
        &app,
        "203.0.113.20",
        "mutation($input: SignUpInput!) { a: signUp(input: $input) { userId } b: signUp(input: $input) { userId } }",
        sign_up_input("aliased", "alias-token-0000000000", "a-good-password"),
    )
    .await;
    assert!(answer["data"].is_null(), "{answer}");
    assert!(
        first_message(&answer).contains("A request may check a password once"),
        "{answer}"
    );
    assert_eq!(counts(&app).await.1, 0, "nobody was signed up");
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_ups_are_limited_per_address() {
    let app =
        TestApp::spawn_with(|s| s.trusted_proxies = vec!["127.0.0.1".parse().expect("address")])
            .await;
    seed_plan(&app).await;
    // Probing for taken names: each answer is a field error, and each counts.
    for n in 0..20 {
        let answer = sign_up_from(
            &app,
            "203.0.113.21",
            SIGN_UP,
            sign_up_input(
                &format!("probe{n}"),
                &format!("probe-token-{n:012}"),
                "short",
            ),
        )
        .await;
        assert_eq!(
            first_message(&answer),
            "Some fields need correcting.",
            "{answer}"
        );
    }
    let refused = sign_up_from(
        &app,
        "203.0.113.21",
        SIGN_UP,
        sign_up_input("genuine", "genuine-token-000000", "a-good-password"),
    )
    .await;
    assert!(
        first_message(&refused).starts_with("Too many sign-ups from your address"),
        "{refused}"
    );
    let elsewhere = sign_up_from(
        &app,
        "198.51.100.21",
        SIGN_UP,
        sign_up_input("genuine", "genuine-token-000000", "a-good-password"),
    )
    .await;
    assert!(
        elsewhere["errors"].is_null(),
        "another address signs up: {elsewhere}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn guessing_a_password_with_a_used_checkout_token_meets_the_sign_in_limits() {
    let app =
        TestApp::spawn_with(|s| s.trusted_proxies = vec!["127.0.0.1".parse().expect("address")])
            .await;
    seed_plan(&app).await;
    let token = "stolen-token-00000000000";
    let first = sign_up_from(
        &app,
        "198.51.100.22",
        SIGN_UP,
        sign_up_input("victim", token, "the-real-password"),
    )
    .await;
    assert!(first["errors"].is_null(), "{first}");
    for n in 0..5 {
        let guess = sign_up_from(
            &app,
            "203.0.113.22",
            SIGN_UP,
            sign_up_input("victim", token, &format!("guess-number-{n}")),
        )
        .await;
        assert!(
            first_message(&guess).contains("Some fields need correcting"),
            "{guess}"
        );
    }
    let found = sign_up_from(
        &app,
        "203.0.113.22",
        SIGN_UP,
        sign_up_input("victim", token, "the-real-password"),
    )
    .await;
    assert!(
        first_message(&found).starts_with("Too many failed sign-in attempts"),
        "{found}"
    );
    assert!(found["data"].is_null());
    // The owner, from their own address, still gets their signup back.
    let owner = sign_up_from(
        &app,
        "198.51.100.22",
        SIGN_UP,
        sign_up_input("victim", token, "the-real-password"),
    )
    .await;
    assert_eq!(
        owner["data"]["signUp"]["userId"],
        first["data"]["signUp"]["userId"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn submitting_the_checkout_twice_creates_one_account_and_one_order() {
    let app = TestApp::spawn().await;
    seed_plan(&app).await;
    let before = counts(&app).await;
    let http = TestApp::browser();
    let cart = app.page(&http, "/cart?plan=office").await;
    let token = checkout_token(&cart);
    let form = good_form("twice");
    // A double click: both at once; then the back button and a third submit.
    let (first, second) = tokio::join!(
        post_checkout(&app, &http, &cart, &token, &form),
        post_checkout(&app, &http, &cart, &token, &form)
    );
    let cart_again = app.page(&http, "/cart?plan=office").await;
    let third = post_checkout(&app, &http, &cart_again, &token, &form).await;
    let locations: Vec<String> = [first, second, third]
        .iter()
        .map(|r| {
            assert_eq!(r.status(), 303);
            r.headers()["location"].to_str().expect("text").to_owned()
        })
        .collect();
    assert!(
        locations.iter().all(|l| *l == locations[0]),
        "{locations:?}"
    );
    let after = counts(&app).await;
    assert_eq!(
        (after.0 - before.0, after.1 - before.1, after.2 - before.2),
        (1, 1, 1)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn paying_credits_charges_and_provisions_exactly_one_pbx_with_a_sealed_password() {
    let app = TestApp::spawn().await;
    seed_plan(&app).await;
    let (http, order) = signed_up(&app, "payer").await;
    assert_eq!(order_state(&app, &order).await, "awaiting_payment");
    let paid = pay(&app, &http, &order, "4242 4242 4242 4242", None).await;
    assert_eq!(paid.status(), 303);
    assert_eq!(paid.headers()["location"], format!("/orders/{order}"));
    assert_eq!(order_state(&app, &order).await, "paid");

    // The payment again (a reload, a second tab) changes nothing.
    let token = app.csrf_token(&http, "/graphql/console").await;
    let again = http
        .post(app.url(&format!("/pay/test/{order}")))
        .form(&[
            ("csrf", token.as_str()),
            ("card_number", "4242424242424242"),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(again.headers()["location"], format!("/orders/{order}"));

    let pass = run_jobs(&app, 5).await;
    assert_eq!(pass.succeeded, 1);
    assert_eq!(order_state(&app, &order).await, "fulfilled");
    assert_eq!(app.simulator.pbxes().len(), 1);

    let mut conn = app.conn().await;
    let (account_id, sealed, state, hostname): (i64, String, String, Option<String>) = pbxes::table
        .select((
            pbxes::account_id,
            pbxes::gui_password_sealed,
            pbxes::state,
            pbxes::hostname,
        ))
        .first(&mut conn)
        .await
        .expect("one PBX");
    assert_eq!(state, "active");
    assert_eq!(
        hostname.as_deref(),
        Some(app.simulator.pbxes()[0].hostname.as_str())
    );
    let password = app
        .jobs
        .key
        .decrypt(switchboard_core::commerce::pbxes::GUI_PASSWORD, &sealed)
        .expect("opens");
    assert!(password.len() >= 16);
    assert!(!sealed.contains(&password));
    assert_eq!(
        app.simulator.pbxes()[0].gui_password,
        password,
        "the controller got the same password"
    );

    // Paid $178, charged $178: the balance is zero, and the books balance.
    let balance = ledger::balance(&mut conn, AccountId(account_id))
        .await
        .expect("balance");
    assert_eq!(balance.micros(), 0);
    let movements: i64 = journal_transactions::table
        .filter(journal_transactions::idempotency_key.like("order:%"))
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(movements, 2, "one payment and one charge");
    #[derive(diesel::QueryableByName)]
    struct Sum {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let credited: Sum = diesel::sql_query(
        "SELECT COALESCE(sum(e.amount), 0)::bigint AS n FROM journal_entries e \
         JOIN journal_transactions t ON t.id = e.transaction_id WHERE t.kind = 'payment' AND e.amount > 0",
    )
    .get_result(&mut conn)
    .await
    .expect("sum");
    assert_eq!(credited.n, 178_000_000);

    let welcome: (String, String) = emails::table
        .filter(emails::subject.eq("Your Switchboard PBX is ready"))
        .select((emails::to_address, emails::text_body))
        .first(&mut conn)
        .await
        .expect("a welcome email");
    assert_eq!(welcome.0, "payer@example.com");
    assert!(
        !welcome.1.contains(&password),
        "the credential is sealed at rest"
    );
    let body = app
        .jobs
        .key
        .decrypt(switchboard_core::outbox::SEALED_BODY, &welcome.1)
        .expect("opens with the key");
    assert!(body.contains(&password) && body.contains("payer"));
    assert!(
        body.starts_with("Hello Nora New,"),
        "the person is greeted by name, not by username: {body}"
    );
    assert!(
        !body.contains("a-good-password"),
        "never the portal password"
    );
    let staff: i64 = emails::table
        .filter(emails::subject.like("New signup:%"))
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(staff, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_declined_card_leaves_the_order_awaiting_payment_and_it_can_be_paid_again() {
    let app = TestApp::spawn().await;
    seed_plan(&app).await;
    let (http, order) = signed_up(&app, "decliner").await;
    let declined = pay(&app, &http, &order, "4000 0000 0000 0002", None).await;
    assert_eq!(declined.status(), 402);
    assert!(declined
        .text()
        .await
        .expect("body")
        .contains("Your card was declined."));
    assert_eq!(order_state(&app, &order).await, "awaiting_payment");
    assert_eq!(
        run_jobs(&app, 3).await,
        switchboard_jobs::Pass::default(),
        "no PBX is made"
    );
    let home = app.page(&http, "/portal").await;
    assert!(home.contains("is waiting for payment") && home.contains(&format!("/orders/{order}")));
    let paid = pay(&app, &http, &order, "4242424242424242", None).await;
    assert_eq!(paid.status(), 303);
    assert_eq!(order_state(&app, &order).await, "paid");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_card_that_asks_for_authentication_pays_only_once_authenticated() {
    let app = TestApp::spawn().await;
    seed_plan(&app).await;
    let (http, order) = signed_up(&app, "authenticator").await;
    let asked = pay(&app, &http, &order, "4000002500003155", None).await;
    assert_eq!(asked.status(), 200);
    assert!(asked
        .text()
        .await
        .expect("body")
        .contains("Complete authentication"));
    assert_eq!(order_state(&app, &order).await, "awaiting_payment");
    let failed = pay(&app, &http, &order, "4000002500003155", Some("no")).await;
    assert_eq!(failed.status(), 402);
    let said = failed.text().await.expect("body");
    assert!(said.contains("authentication failed"), "{said}");
    assert!(
        !said.contains("Your card was declined"),
        "the bank declined nothing: {said}"
    );
    assert_eq!(order_state(&app, &order).await, "awaiting_payment");
    let done = pay(&app, &http, &order, "4000002500003155", Some("yes")).await;
    assert_eq!(done.status(), 303);
    assert_eq!(order_state(&app, &order).await, "paid");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_controller_down_for_several_attempts_still_gives_exactly_one_pbx() {
    let app = TestApp::spawn().await;
    seed_plan(&app).await;
    let (http, order) = signed_up(&app, "patient").await;
    pay(&app, &http, &order, "4242424242424242", None).await;
    app.simulator.arm(Faults {
        fail: 3,
        garbage: 2,
        ..Faults::default()
    });
    let pass = run_jobs(&app, 10).await;
    assert_eq!((pass.failed, pass.succeeded, pass.given_up), (5, 1, 0));
    assert_eq!(app.simulator.pbxes().len(), 1);
    assert_eq!(order_state(&app, &order).await, "fulfilled");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_controller_losing_its_answer_still_gives_exactly_one_pbx() {
    let app = TestApp::spawn().await;
    seed_plan(&app).await;
    let (http, order) = signed_up(&app, "lost").await;
    pay(&app, &http, &order, "4242424242424242", None).await;
    app.simulator.arm(Faults {
        lose_answer: 1,
        hang: 1,
        ..Faults::default()
    });
    let pass = run_jobs(&app, 10).await;
    assert_eq!(
        (pass.failed, pass.succeeded),
        (2, 1),
        "a hang and a lost answer, then success"
    );
    assert_eq!(
        app.simulator.pbxes().len(),
        1,
        "the retry found the PBX the lost answer made"
    );
    assert_eq!(order_state(&app, &order).await, "fulfilled");
    let mut conn = app.conn().await;
    let welcomes: i64 = emails::table
        .filter(emails::subject.eq("Your Switchboard PBX is ready"))
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(welcomes, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pbx_that_cannot_be_provisioned_fails_tells_staff_and_can_be_retried() {
    let app = TestApp::spawn().await;
    seed_plan(&app).await;
    let (http, order) = signed_up(&app, "unlucky").await;
    pay(&app, &http, &order, "4242424242424242", None).await;
    app.simulator.arm(Faults {
        fail: 1000,
        ..Faults::default()
    });
    let pass = run_jobs(&app, 20).await;
    assert_eq!(
        (pass.failed, pass.given_up),
        (9, 1),
        "ten attempts, then given up"
    );
    assert_eq!(order_state(&app, &order).await, "failed");
    let mut conn = app.conn().await;
    let (pbx_id, state, error): (i64, String, Option<String>) = pbxes::table
        .select((pbxes::id, pbxes::state, pbxes::last_error))
        .first(&mut conn)
        .await
        .expect("the PBX");
    assert_eq!(state, "failed");
    assert!(error.expect("an error").contains("503"));
    let told: i64 = emails::table
        .filter(emails::subject.like("Provisioning failed for%"))
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(told, 1);

    app.simulator.arm(Faults::default());
    let (_, staff_password) = app.user("fixer", switchboard_core::Role::Staff, None).await;
    let staff = app.signed_in("fixer", &staff_password).await;
    let retried = app
        .graphql(
            &staff,
            "mutation($id: ID!) { retryProvisioning(pbxId: $id) { state } }",
            serde_json::json!({ "id": pbx_id.to_string() }),
        )
        .await;
    assert_eq!(
        retried["data"]["retryProvisioning"]["state"], "PROVISIONING",
        "{retried}"
    );
    assert_eq!(run_jobs(&app, 3).await.succeeded, 1);
    assert_eq!(app.simulator.pbxes().len(), 1);
    assert_eq!(order_state(&app, &order).await, "fulfilled");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_order_page_shows_paid_then_provisioning_then_active() {
    let app = TestApp::spawn().await;
    seed_plan(&app).await;
    let (http, order) = signed_up(&app, "watcher").await;
    let page = |http: reqwest::Client, app: &TestApp| {
        let url = app.url(&format!("/orders/{order}"));
        async move {
            http.get(url)
                .send()
                .await
                .expect("GET")
                .text()
                .await
                .expect("body")
        }
    };
    let unpaid = page(http.clone(), &app).await;
    assert!(unpaid.contains("Waiting for payment") && unpaid.contains("Pay $178.00"));
    pay(&app, &http, &order, "4242424242424242", None).await;
    let provisioning = page(http.clone(), &app).await;
    assert!(provisioning.contains("Setting up your PBX"));
    assert!(
        !provisioning.contains("http-equiv=\"refresh\""),
        "no timed reload under a reader's cursor"
    );
    assert!(
        provisioning.contains(&format!("<a href=\"/orders/{order}\">Refresh</a>")),
        "a way to look again without JavaScript"
    );
    assert!(
        provisioning.contains("aria-live=\"polite\" data-refresh-every=\"3\""),
        "with JavaScript, news arrives in a polite live region"
    );
    run_jobs(&app, 3).await;
    let active = page(http.clone(), &app).await;
    assert!(active.contains("Your PBX is ready") && active.contains(".pbx.switchboard.test"));
    assert!(!active.contains("data-refresh-every") && !active.contains(">Refresh</a>"));
    let home = app.page(&http, "/portal").await;
    let health = &home[home
        .find("data-testid=\"pbx-health\"")
        .expect("the PBX's health")..];
    assert!(
        health.contains(">up<") && health.contains("simulated"),
        "the controller's status is shown"
    );
    app.simulator.arm(Faults {
        fail: 1,
        ..Faults::default()
    });
    let cached = app.page(&http, "/portal").await;
    assert!(
        cached.contains(">up<"),
        "a status is reused for a while rather than asked again"
    );
    let other = TestApp::browser();
    let (_, user, password) = app.client("nosy", 0).await;
    let _ = app.sign_in(&other, &user, &password).await;
    let foreign = other
        .get(app.url(&format!("/orders/{order}")))
        .send()
        .await
        .expect("GET");
    assert_eq!(foreign.status(), 404, "another client's order is not found");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resubmitted_checkout_signs_in_nobody_who_lacks_the_password() {
    let app = TestApp::spawn().await;
    seed_plan(&app).await;
    let http = TestApp::browser();
    let cart = app.page(&http, "/cart?plan=office").await;
    let token = checkout_token(&cart);
    let first = post_checkout(&app, &http, &cart, &token, &good_form("shared")).await;
    assert_eq!(first.status(), 303);
    // Someone else at the same computer replays the form with the token but
    // without the password.
    let stranger = TestApp::browser();
    let page = app.page(&stranger, "/cart?plan=office").await;
    let mut form = good_form("shared");
    form[2].1 = "not-the-password".into();
    form[3].1 = "not-the-password".into();
    let replay = post_checkout(&app, &stranger, &page, &token, &form).await;
    assert_eq!(replay.status(), 422);
    assert!(replay
        .text()
        .await
        .expect("body")
        .contains("was used already: sign in to see your order"));
    assert_eq!(
        stranger
            .get(app.url("/portal"))
            .send()
            .await
            .expect("GET")
            .status(),
        303,
        "not signed in"
    );

    // Once the order is paid, even the right password gets no replay.
    let order = order_of(first.headers()["location"].to_str().expect("text"));
    pay(&app, &http, &order, "4242424242424242", None).await;
    let late = post_checkout(&app, &stranger, &page, &token, &good_form("shared")).await;
    assert_eq!(late.status(), 422);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signup_buys_starting_call_credit_only_among_the_amounts_offered() {
    let app =
        TestApp::spawn_with(|s| s.trusted_proxies = vec!["127.0.0.1".parse().expect("address")])
            .await;
    seed_plan(&app).await;
    let offered: serde_json::Value = reqwest::Client::new()
        .post(app.url("/graphql"))
        .json(&serde_json::json!({ "query": "{ plan(slug: \"office\") { startingCreditChoices { amount { micros } dueToday { formatted } suggested } } }" }))
        .send()
        .await
        .expect("POST /graphql")
        .json()
        .await
        .expect("JSON");
    let choices = offered["data"]["plan"]["startingCreditChoices"]
        .as_array()
        .unwrap_or_else(|| panic!("{offered}"))
        .iter()
        .map(|c| {
            (
                c["amount"]["micros"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                c["dueToday"]["formatted"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                c["suggested"].as_bool().unwrap_or_default(),
            )
        })
        .collect::<Vec<_>>();
    let expected = [
        ("0", "$178.00", false),
        ("10000000", "$188.00", false),
        ("25000000", "$203.00", true),
        ("50000000", "$228.00", false),
    ]
    .map(|(m, d, s)| (m.to_owned(), d.to_owned(), s));
    assert_eq!(choices, expected);

    for (n, refused) in ["30", "-10", "ten", "25.5", "1e9", "99999999999999999999"]
        .iter()
        .enumerate()
    {
        let mut input = sign_up_input(
            &format!("credit{n}"),
            &format!("credit-token-{n:012}"),
            "a-good-password",
        );
        input["startingCredit"] = serde_json::json!(refused);
        let answer = sign_up_from(&app, &format!("203.0.113.{}", 40 + n), SIGN_UP, input).await;
        let fields = answer["errors"][0]["extensions"]["fields"].to_string();
        assert!(
            fields.contains("starting_credit") && fields.contains("one of the amounts offered"),
            "{refused}: {answer}"
        );
    }
    assert_eq!(
        counts(&app).await,
        (0, 0, 0),
        "nothing made for a refused amount"
    );

    let mut input = sign_up_input("credited", "credit-token-accepted", "a-good-password");
    input["startingCredit"] = serde_json::json!("25");
    let answer = sign_up_from(&app, "203.0.113.60", SIGN_UP, input).await;
    assert!(answer["errors"].is_null(), "{answer}");
    let mut conn = app.conn().await;
    let total: i64 = orders::table
        .select(orders::total)
        .first(&mut conn)
        .await
        .expect("the order");
    assert_eq!(total, 203_000_000, "the plan's $178 and $25 of call credit");
    let lines: Vec<(String, i64)> = switchboard_core::schema::order_lines::table
        .select((
            switchboard_core::schema::order_lines::kind,
            switchboard_core::schema::order_lines::amount,
        ))
        .order(switchboard_core::schema::order_lines::id)
        .load(&mut conn)
        .await
        .expect("lines");
    assert!(
        lines.contains(&("call_credit".to_owned(), 25_000_000)),
        "{lines:?}"
    );
}
