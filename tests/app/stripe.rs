//! Paying through Stripe, against the stand-in on loopback.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use switchboard_core::config::Secret;
use switchboard_core::schema::{accounts, journal_transactions, orders, payments, webhook_events};

use crate::commerce::{good_form, run_jobs, seed_plan};
use crate::harness::TestApp;
use crate::stripe_double::{
    deliver, dispute_event, refund_event, session_event, signed, FakeStripe, SECRET_KEY,
    WEBHOOK_SECRET,
};

async fn stripe_app() -> (TestApp, FakeStripe) {
    let fake = FakeStripe::start().await;
    let api = fake.url.clone();
    let app = TestApp::spawn_with(move |settings| {
        settings.payments.gateway = "stripe".into();
        settings.payments.stripe.secret_key = Some(Secret::new(SECRET_KEY));
        settings.payments.stripe.webhook_secret = Some(Secret::new(WEBHOOK_SECRET));
        settings.payments.stripe.api_base = api;
    })
    .await;
    seed_plan(&app).await;
    (app, fake)
}

/// Signs up through the storefront; returns the browser, the order and
/// where Switchboard sent the customer.
async fn sign_up(app: &TestApp, username: &str) -> (reqwest::Client, String, String) {
    let http = TestApp::browser();
    let (response, _) = crate::commerce::checkout(app, &http, &good_form(username)).await;
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"]
        .to_str()
        .expect("text")
        .to_owned();
    let mut conn = app.conn().await;
    let order: String = orders::table
        .order(orders::id.desc())
        .select(orders::public_id)
        .first(&mut conn)
        .await
        .expect("an order");
    (http, order, location)
}

async fn state_of(app: &TestApp, order: &str) -> String {
    let mut conn = app.conn().await;
    orders::table
        .filter(orders::public_id.eq(order))
        .select(orders::state)
        .first(&mut conn)
        .await
        .expect("the order")
}

/// Presses "Pay" on the order page; returns where the customer is sent.
async fn pay_again(app: &TestApp, http: &reqwest::Client, order: &str) -> String {
    let token = app.csrf_token(http, &format!("/orders/{order}")).await;
    let response = http
        .post(app.url(&format!("/orders/{order}/pay")))
        .form(&[("csrf", token)])
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 303, "{:?}", response.text().await);
    response.headers()["location"]
        .to_str()
        .expect("text")
        .to_owned()
}

async fn payment_credits(app: &TestApp) -> i64 {
    let mut conn = app.conn().await;
    journal_transactions::table
        .filter(journal_transactions::kind.eq("payment"))
        .count()
        .get_result(&mut conn)
        .await
        .expect("count")
}

#[tokio::test(flavor = "multi_thread")]
async fn stripe_checkout_opens_a_session_and_only_a_signed_webhook_fulfils_the_order() {
    let (app, fake) = stripe_app().await;
    let (http, order, location) = sign_up(&app, "stripey").await;
    assert_eq!(location, "https://checkout.stripe.test/c/pay/cs_test_1");
    let sent = &fake.sessions()[0];
    let field = |name: &str| {
        sent.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(field("mode"), Some("payment"));
    assert_eq!(
        field("payment_intent_data[setup_future_usage]"),
        Some("off_session")
    );
    assert_eq!(field("client_reference_id"), Some(order.as_str()));
    assert_eq!(
        field("line_items[0][price_data][unit_amount]"),
        Some("17800")
    );
    assert_eq!(field("line_items[0][price_data][currency]"), Some("usd"));
    assert_eq!(field("customer_email"), Some("stripey@example.com"));
    let success = field("success_url").expect("a success URL");
    assert!(
        success.ends_with(&format!("/orders/{order}?from=stripe")),
        "{success}"
    );

    // Coming back from Stripe shows progress but pays nothing.
    let back = http
        .get(success)
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("body");
    assert!(
        back.contains("Confirming your payment") && !back.contains("Pay $178.00"),
        "no second payment offered"
    );
    assert_eq!(state_of(&app, &order).await, "awaiting_payment");

    let event = session_event(
        "evt_1",
        "checkout.session.completed",
        &order,
        17_800,
        "paid",
    );
    assert_eq!(deliver(&app.base_url, &event, signed(&event)).await, 200);
    assert_eq!(state_of(&app, &order).await, "paid");
    let mut conn = app.conn().await;
    let saved: (Option<String>, Option<String>) = accounts::table
        .inner_join(orders::table)
        .filter(orders::public_id.eq(&order))
        .select((
            accounts::stripe_customer_id,
            accounts::stripe_payment_method_id,
        ))
        .first(&mut conn)
        .await
        .expect("the account");
    assert_eq!(
        saved,
        (Some("cus_test_1".into()), Some("pm_card_visa".into())),
        "the card is kept for top-ups"
    );
    assert_eq!(run_jobs(&app, 3).await.succeeded, 1);
    assert_eq!(state_of(&app, &order).await, "fulfilled");
    assert_eq!(app.simulator.pbxes().len(), 1);

    // The test gateway is not open when Stripe takes the payments.
    let refused = app
        .graphql(&http, "mutation($o: ID!) { payWithTestCard(orderId: $o, cardNumber: \"4242424242424242\") { outcome } }", serde_json::json!({ "o": order }))
        .await;
    assert_eq!(
        refused["errors"][0]["message"],
        "The test gateway is not in use here."
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_webhook_twenty_times_and_out_of_order_with_a_later_event_credit_once() {
    let (app, _fake) = stripe_app().await;
    let (_, order, _) = sign_up(&app, "repeated").await;
    let later = session_event(
        "evt_2",
        "checkout.session.async_payment_succeeded",
        &order,
        17_800,
        "paid",
    );
    assert_eq!(deliver(&app.base_url, &later, signed(&later)).await, 200);
    let completed = session_event(
        "evt_1",
        "checkout.session.completed",
        &order,
        17_800,
        "paid",
    );
    for _ in 0..20 {
        assert_eq!(
            deliver(&app.base_url, &completed, signed(&completed)).await,
            200
        );
    }
    assert_eq!(payment_credits(&app).await, 1);
    let mut conn = app.conn().await;
    let events: i64 = webhook_events::table
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(events, 2);
    let recorded: i64 = payments::table
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(recorded, 1, "one payment, reported twice");
    assert_eq!(run_jobs(&app, 3).await.succeeded, 1);
    assert_eq!(app.simulator.pbxes().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_unsigned_and_stale_webhooks_get_400_and_change_nothing() {
    let (app, _fake) = stripe_app().await;
    let (_, order, _) = sign_up(&app, "forged").await;
    let event = session_event(
        "evt_1",
        "checkout.session.completed",
        &order,
        17_800,
        "paid",
    );
    let now = chrono::Utc::now().timestamp();
    let forged = Some(switchboard_payments::webhook::sign(
        event.as_bytes(),
        "whsec_not_ours",
        now,
    ));
    let stale = Some(switchboard_payments::webhook::sign(
        event.as_bytes(),
        WEBHOOK_SECRET,
        now - 301,
    ));
    let tampered_body = event.replace("17800", "1");
    for (payload, signature) in [
        (event.as_str(), None),
        (event.as_str(), forged),
        (event.as_str(), stale),
        (event.as_str(), Some("t=abc,v1=zz".into())),
        (tampered_body.as_str(), signed(&event)),
    ] {
        assert_eq!(deliver(&app.base_url, payload, signature).await, 400);
    }
    assert_eq!(state_of(&app, &order).await, "awaiting_payment");
    assert_eq!(payment_credits(&app).await, 0);
    let mut conn = app.conn().await;
    let events: i64 = webhook_events::table
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(
        events, 0,
        "a refused event is not remembered, so Stripe's real one still counts"
    );
    assert_eq!(deliver(&app.base_url, &event, signed(&event)).await, 200);
    assert_eq!(state_of(&app, &order).await, "paid");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_declined_stripe_payment_leaves_the_order_awaiting_payment_with_a_way_to_pay_again() {
    let (app, fake) = stripe_app().await;
    let (http, order, _) = sign_up(&app, "declined").await;
    // A bank debit: the session completes unpaid, then the debit fails.
    let unpaid = fake.complete("cs_test_1", false, "evt_1");
    assert_eq!(deliver(&app.base_url, &unpaid, signed(&unpaid)).await, 200);
    assert_eq!(
        pay_again(&app, &http, &order).await,
        app.url(&format!("/orders/{order}?from=stripe")),
        "while the debit may still succeed, nothing else is offered"
    );
    let failed = fake.event(
        "cs_test_1",
        "evt_2",
        "checkout.session.async_payment_failed",
    );
    assert_eq!(deliver(&app.base_url, &failed, signed(&failed)).await, 200);
    assert_eq!(state_of(&app, &order).await, "awaiting_payment");
    assert_eq!(payment_credits(&app).await, 0);
    assert_eq!(
        run_jobs(&app, 3).await,
        switchboard_jobs::Pass::default(),
        "no PBX"
    );

    assert_eq!(
        pay_again(&app, &http, &order).await,
        "https://checkout.stripe.test/c/pay/cs_test_2"
    );
    assert_eq!(fake.sessions().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn stripe_being_down_at_checkout_keeps_the_order_and_says_so() {
    let (app, fake) = stripe_app().await;
    fake.fail_next(1);
    // Stripe keeps its 500 under the key it was sent with, so paying again
    // must not send that key again.
    assert_eq!(
        signup_answered_503_then_paid_again(&app, "patient-payer").await,
        "https://checkout.stripe.test/c/pay/cs_test_1"
    );
    let keys = idempotency_keys(&fake);
    assert_eq!(keys.len(), 2);
    assert_ne!(keys[0], keys[1]);
}

/// Signs `username` up, checks the customer was told Stripe did not answer
/// and that the order was kept, signs in and pays again; returns where the
/// customer was sent.
async fn signup_answered_503_then_paid_again(app: &TestApp, username: &str) -> String {
    let http = TestApp::browser();
    let (response, _) = crate::commerce::checkout(app, &http, &good_form(username)).await;
    assert_eq!(response.status(), 503);
    assert!(response
        .text()
        .await
        .expect("body")
        .contains("your order is saved"));
    let mut conn = app.conn().await;
    let order: String = orders::table
        .select(orders::public_id)
        .first(&mut conn)
        .await
        .expect("the order is kept");
    let http = app.signed_in(username, "a-good-password").await;
    pay_again(app, &http, &order).await
}

fn idempotency_keys(fake: &FakeStripe) -> Vec<Option<String>> {
    fake.posts()
        .into_iter()
        .map(|p| p.idempotency_key)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_payment_for_a_paid_order_is_kept_as_credit_and_staff_are_told() {
    let (app, _fake) = stripe_app().await;
    let (_, order, _) = sign_up(&app, "twicepaid").await;
    let first = session_event(
        "evt_1",
        "checkout.session.completed",
        &order,
        17_800,
        "paid",
    );
    assert_eq!(deliver(&app.base_url, &first, signed(&first)).await, 200);
    let second = session_event(
        "evt_9",
        "checkout.session.completed",
        &order,
        17_800,
        "paid",
    )
    .replace("pi_test_1", "pi_test_2");
    assert_eq!(deliver(&app.base_url, &second, signed(&second)).await, 200);
    assert_eq!(
        payment_credits(&app).await,
        2,
        "both payments are in the ledger"
    );
    let mut conn = app.conn().await;
    let balance: i64 = switchboard_core::schema::ledger_accounts::table
        .inner_join(accounts::table.inner_join(orders::table))
        .filter(orders::public_id.eq(&order))
        .select(switchboard_core::schema::ledger_accounts::balance)
        .first(&mut conn)
        .await
        .expect("the balance");
    assert_eq!(
        balance, 178_000_000,
        "the second payment is the customer's credit"
    );
    let told: i64 = switchboard_core::schema::emails::table
        .filter(switchboard_core::schema::emails::subject.like("Payment to check%"))
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(told, 1);
    assert_eq!(run_jobs(&app, 3).await.succeeded, 1);
    assert_eq!(app.simulator.pbxes().len(), 1, "still one PBX");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_payment_of_the_wrong_amount_fulfils_nothing_and_is_kept_as_credit() {
    let (app, _fake) = stripe_app().await;
    let (_, order, _) = sign_up(&app, "shortpaid").await;
    let short = session_event("evt_1", "checkout.session.completed", &order, 100, "paid");
    assert_eq!(deliver(&app.base_url, &short, signed(&short)).await, 200);
    assert_eq!(state_of(&app, &order).await, "awaiting_payment");
    assert_eq!(payment_credits(&app).await, 1);
    assert_eq!(
        run_jobs(&app, 3).await,
        switchboard_jobs::Pass::default(),
        "no PBX"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn paying_again_while_the_checkout_is_open_sends_the_customer_back_to_it() {
    let (app, fake) = stripe_app().await;
    let (http, order, location) = sign_up(&app, "clicker").await;
    for _ in 0..3 {
        assert_eq!(pay_again(&app, &http, &order).await, location);
    }
    assert_eq!(fake.sessions().len(), 1, "one session for one order");
    assert_eq!(fake.open_sessions(), ["cs_test_1"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signup_form_submitted_twice_at_once_opens_one_checkout_session() {
    let (app, fake) = stripe_app().await;
    let http = TestApp::browser();
    let cart = app.page(&http, "/cart?plan=office").await;
    let token = crate::commerce::checkout_token(&cart);
    let form = good_form("doubleclick");
    let (first, second) = tokio::join!(
        crate::commerce::post_checkout(&app, &http, &cart, &token, &form),
        crate::commerce::post_checkout(&app, &http, &cart, &token, &form),
    );
    for response in [&first, &second] {
        assert_eq!(response.status(), 303);
        assert_eq!(
            response.headers()["location"],
            "https://checkout.stripe.test/c/pay/cs_test_1"
        );
    }
    assert_eq!(fake.sessions().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_checkout_whose_answer_was_lost_is_asked_for_again_with_the_same_key_and_not_opened_twice(
) {
    let (app, fake) = stripe_app().await;
    fake.lose_next_answers(1);
    assert_eq!(
        signup_answered_503_then_paid_again(&app, "unlucky-net").await,
        "https://checkout.stripe.test/c/pay/cs_test_1",
        "the retry is answered with the session the lost answer named"
    );
    assert_eq!(fake.sessions().len(), 1);
    let keys = idempotency_keys(&fake);
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], keys[1]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_checkout_that_ran_out_is_replaced_and_one_about_to_run_out_is_expired_first() {
    let (app, fake) = stripe_app().await;
    let (http, order, _) = sign_up(&app, "slowpayer").await;
    fake.time_out("cs_test_1");
    assert_eq!(
        pay_again(&app, &http, &order).await,
        "https://checkout.stripe.test/c/pay/cs_test_2"
    );
    assert_eq!(fake.open_sessions(), ["cs_test_2"]);

    // Five minutes left is too little to type a card: that session is
    // closed at Stripe before another is opened.
    fake.set_expires_at("cs_test_2", chrono::Utc::now().timestamp() + 300);
    assert_eq!(
        pay_again(&app, &http, &order).await,
        "https://checkout.stripe.test/c/pay/cs_test_3"
    );
    assert_eq!(fake.session("cs_test_2").status, "expired");
    assert_eq!(
        fake.open_sessions(),
        ["cs_test_3"],
        "never two open at once"
    );
    let paths: Vec<String> = fake.posts().into_iter().map(|p| p.path).collect();
    assert_eq!(
        paths,
        [
            "/v1/checkout/sessions",
            "/v1/checkout/sessions",
            "/v1/checkout/sessions/cs_test_2/expire",
            "/v1/checkout/sessions",
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_checkout_paid_but_not_yet_confirmed_is_not_offered_again() {
    let (app, fake) = stripe_app().await;
    let (http, order, _) = sign_up(&app, "quickpayer").await;
    let completed = fake.complete("cs_test_1", true, "evt_1");
    // Stripe's webhook is still on its way.
    assert_eq!(
        pay_again(&app, &http, &order).await,
        app.url(&format!("/orders/{order}?from=stripe"))
    );
    assert_eq!(fake.sessions().len(), 1);
    assert_eq!(
        deliver(&app.base_url, &completed, signed(&completed)).await,
        200
    );
    assert_eq!(state_of(&app, &order).await, "paid");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_post_to_stripe_carries_an_idempotency_key_made_from_its_cause() {
    let (app, fake) = stripe_app().await;
    let (http, order, _) = sign_up(&app, "keyholder").await;
    fake.set_expires_at("cs_test_1", chrono::Utc::now().timestamp() + 60);
    pay_again(&app, &http, &order).await;
    let posts = fake.posts();
    assert_eq!(posts.len(), 3);
    let keys: Vec<String> = posts
        .iter()
        .map(|p| p.idempotency_key.clone().expect("every POST has a key"))
        .collect();
    assert_eq!(
        keys,
        [
            format!("checkout:{order}:0"),
            "checkout-expire:cs_test_1".to_owned(),
            format!("checkout:{order}:1"),
        ]
    );
}

/// Signs up and pays through the stand-in; returns the order.
async fn paid_order(app: &TestApp, fake: &FakeStripe, username: &str) -> String {
    let (_, order, _) = sign_up(app, username).await;
    let completed = fake.complete("cs_test_1", true, &format!("evt_paid_{username}"));
    assert_eq!(
        deliver(&app.base_url, &completed, signed(&completed)).await,
        200
    );
    assert_eq!(state_of(app, &order).await, "paid");
    order
}

async fn balance_of_order(app: &TestApp, order: &str) -> i64 {
    let mut conn = app.conn().await;
    let account: i64 = orders::table
        .filter(orders::public_id.eq(order))
        .select(orders::account_id)
        .first(&mut conn)
        .await
        .expect("the order");
    switchboard_core::money::ledger::balance(&mut conn, switchboard_core::AccountId(account))
        .await
        .expect("the balance")
        .micros()
}

async fn transactions_of_kind(app: &TestApp, kind: &str) -> i64 {
    let mut conn = app.conn().await;
    journal_transactions::table
        .filter(journal_transactions::kind.eq(kind))
        .count()
        .get_result(&mut conn)
        .await
        .expect("count")
}

async fn staff_emails(app: &TestApp, subject: &str) -> i64 {
    let mut conn = app.conn().await;
    switchboard_core::schema::emails::table
        .filter(switchboard_core::schema::emails::subject.like(format!("{subject}%")))
        .filter(
            switchboard_core::schema::emails::to_address.eq(&app.jobs.settings.email.staff_address),
        )
        .count()
        .get_result(&mut conn)
        .await
        .expect("count")
}

#[tokio::test(flavor = "multi_thread")]
async fn partial_refunds_replayed_and_out_of_order_take_exactly_the_refunded_amount_from_the_balance(
) {
    let (app, fake) = stripe_app().await;
    let order = paid_order(&app, &fake, "refunded").await;
    assert_eq!(balance_of_order(&app, &order).await, 0, "paid and charged");

    let twenty = refund_event("evt_r1", "pi_test_1", 17_800, 2_000);
    let fifty = refund_event("evt_r2", "pi_test_1", 17_800, 5_000);
    let fifty_again = refund_event("evt_r2b", "pi_test_1", 17_800, 5_000);
    let all = refund_event("evt_r3", "pi_test_1", 17_800, 17_800);
    // The later refund arrives first; the earlier one, already included in
    // it, changes nothing; replays (same event, or another event saying the
    // same) change nothing.
    for event in [&fifty, &twenty, &fifty, &fifty_again] {
        assert_eq!(deliver(&app.base_url, event, signed(event)).await, 200);
    }
    assert_eq!(balance_of_order(&app, &order).await, -50_000_000);
    assert_eq!(transactions_of_kind(&app, "refund").await, 1);
    for _ in 0..2 {
        assert_eq!(deliver(&app.base_url, &all, signed(&all)).await, 200);
    }
    assert_eq!(
        balance_of_order(&app, &order).await,
        -178_000_000,
        "everything refunded has left the balance, once"
    );
    assert_eq!(transactions_of_kind(&app, "refund").await, 2);
    assert_eq!(staff_emails(&app, "Refund").await, 2, "staff hear of each");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dispute_takes_the_disputed_amount_from_the_balance_once_and_staff_are_told() {
    let (app, fake) = stripe_app().await;
    let order = paid_order(&app, &fake, "disputed").await;
    let dispute = dispute_event("evt_d1", "dp_test_1", "pi_test_1", 17_800);
    let same_dispute = dispute_event("evt_d2", "dp_test_1", "pi_test_1", 17_800);
    for event in [&dispute, &dispute, &same_dispute] {
        assert_eq!(deliver(&app.base_url, event, signed(event)).await, 200);
    }
    assert_eq!(balance_of_order(&app, &order).await, -178_000_000);
    assert_eq!(transactions_of_kind(&app, "dispute").await, 1);
    assert_eq!(staff_emails(&app, "Dispute").await, 1);
    let mut conn = app.conn().await;
    let disputes_book = switchboard_core::money::ledger::book_balance(
        &mut conn,
        switchboard_core::money::ledger::Book::Disputes,
        "USD",
    )
    .await
    .expect("the disputes book");
    assert_eq!(
        disputes_book.micros(),
        178_000_000,
        "the money at stake is in its own book"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refund_or_dispute_before_its_payment_is_recorded_is_asked_for_again_and_one_of_a_charge_not_ours_is_ignored(
) {
    let (app, fake) = stripe_app().await;
    let (_, order, _) = sign_up(&app, "early").await;
    let completed = fake.complete("cs_test_1", true, "evt_1");
    let refund = refund_event("evt_r1", "pi_test_1", 17_800, 5_000);
    let dispute = dispute_event("evt_d1", "dp_test_1", "pi_test_1", 12_800);
    for early in [&refund, &dispute] {
        assert_eq!(
            deliver(&app.base_url, early, signed(early)).await,
            500,
            "Stripe will send it again once the payment is recorded"
        );
    }
    assert_eq!(
        deliver(&app.base_url, &completed, signed(&completed)).await,
        200
    );
    for again in [&refund, &dispute] {
        assert_eq!(deliver(&app.base_url, again, signed(again)).await, 200);
    }
    assert_eq!(balance_of_order(&app, &order).await, -178_000_000);

    let foreign = refund_event("evt_r9", "pi_elsewhere", 5_000, 5_000);
    let foreign_dispute = dispute_event("evt_d9", "dp_elsewhere", "pi_elsewhere", 5_000);
    for event in [&foreign, &foreign_dispute] {
        assert_eq!(deliver(&app.base_url, event, signed(event)).await, 200);
    }
    assert_eq!(transactions_of_kind(&app, "refund").await, 1);
    assert_eq!(transactions_of_kind(&app, "dispute").await, 1);
}

/// An account below its threshold with automatic top-ups on and `method`
/// saved at Stripe; returns it and the job context on a clock of its own.
async fn low_account_with_card(
    app: &TestApp,
    name: &str,
    method: &str,
) -> (switchboard_core::AccountId, switchboard_jobs::JobContext) {
    let account = app
        .account(name, switchboard_core::AccountKind::Retail, None, 1_000_000)
        .await;
    diesel::update(accounts::table.find(account.0))
        .set((
            accounts::auto_replenish.eq(true),
            accounts::replenish_amount.eq(25_000_000i64),
            accounts::stripe_customer_id.eq("cus_test_1"),
            accounts::stripe_payment_method_id.eq(method),
            accounts::card_last4.eq("4242"),
        ))
        .execute(&mut app.conn().await)
        .await
        .expect("a card on file");
    let ctx = crate::balance::on_clock(app, crate::balance::at("2027-06-10T08:00:00Z"));
    (account, ctx)
}

async fn review_and_run(app: &TestApp, ctx: &switchboard_jobs::JobContext) {
    switchboard_jobs::enqueue(
        &mut app.conn().await,
        switchboard_jobs::Job::ReviewStanding,
        "",
        Some("review_standing"),
    )
    .await
    .expect("queued");
    crate::balance::run_jobs_with(app, ctx, 5).await;
}

async fn balance_of(app: &TestApp, account: switchboard_core::AccountId) -> i64 {
    switchboard_core::money::ledger::balance(&mut app.conn().await, account)
        .await
        .expect("balance")
        .micros()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_automatic_top_up_charges_the_saved_card_off_session_once_whatever_is_replayed() {
    let (app, fake) = stripe_app().await;
    let (account, ctx) = low_account_with_card(&app, "Topped", "pm_card_visa").await;
    // The first answer is lost on its way back: the job cannot tell whether
    // the card was charged.
    fake.lose_next_answers(1);
    switchboard_jobs::enqueue(
        &mut app.conn().await,
        switchboard_jobs::Job::ReviewStanding,
        "",
        Some("review_standing"),
    )
    .await
    .expect("queued");
    let pass = switchboard_jobs::run_due(&app.pool, &ctx)
        .await
        .expect("a pass");
    assert!(pass.failed >= 1, "{pass:?}");
    assert_eq!(balance_of(&app, account).await, 1_000_000);
    let intents = fake.intents();
    assert_eq!(intents.len(), 1);
    let (intent, form) = &intents[0];
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(field("off_session"), Some("true"));
    assert_eq!(field("confirm"), Some("true"));
    assert_eq!(field("amount"), Some("2500"));
    assert_eq!(field("payment_method"), Some("pm_card_visa"));
    assert_eq!(field("customer"), Some("cus_test_1"));

    // Its webhook arrives first, twenty times: one credit.
    let event = fake.intent_event("evt_pi_ok", "payment_intent.succeeded", intent);
    for _ in 0..20 {
        assert_eq!(deliver(&app.base_url, &event, signed(&event)).await, 200);
    }
    let again = fake.intent_event("evt_pi_ok_2", "payment_intent.succeeded", intent);
    assert_eq!(deliver(&app.base_url, &again, signed(&again)).await, 200);
    assert_eq!(balance_of(&app, account).await, 26_000_000);

    // Then the job's retry finds the attempt settled and charges nothing;
    // a second runner finds nothing to do either.
    crate::balance::run_jobs_with(&app, &ctx, 5).await;
    review_and_run(&app, &ctx).await;
    let keys: Vec<Option<String>> = fake
        .posts()
        .into_iter()
        .filter(|p| p.path == "/v1/payment_intents")
        .map(|p| p.idempotency_key)
        .collect();
    assert_eq!(keys, vec![Some(format!("replenish:{}:1:1", account.0))]);
    assert_eq!(fake.intents().len(), 1, "one charge");
    assert_eq!(balance_of(&app, account).await, 26_000_000);
    let credits: i64 = journal_transactions::table
        .filter(journal_transactions::idempotency_key.eq(format!("payment:stripe:{intent}")))
        .count()
        .get_result(&mut app.conn().await)
        .await
        .expect("count");
    assert_eq!(credits, 1);
    assert_eq!(
        crate::balance::emails_to(
            &app,
            "topped@example.com",
            "Receipt: $25.00 added to your balance"
        )
        .await,
        1
    );

    // The other order: the answer credits, its webhook (twenty times) does not.
    let (other, _) = low_account_with_card(&app, "Answered", "pm_card_visa").await;
    review_and_run(&app, &ctx).await;
    assert_eq!(balance_of(&app, other).await, 26_000_000);
    let (intent, _) = fake.intents()[1].clone();
    let event = fake.intent_event("evt_pi_answered", "payment_intent.succeeded", &intent);
    for _ in 0..20 {
        assert_eq!(deliver(&app.base_url, &event, signed(&event)).await, 200);
    }
    assert_eq!(balance_of(&app, other).await, 26_000_000);
    assert_eq!(fake.intents().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_declined_or_unauthenticated_top_up_tells_the_client_and_waits_a_day() {
    let (app, fake) = stripe_app().await;
    let (declined, ctx) = low_account_with_card(&app, "Declined", "pm_card_chargeDeclined").await;
    let (unauthenticated, _) =
        low_account_with_card(&app, "Unsure", "pm_card_authenticationRequired").await;
    review_and_run(&app, &ctx).await;
    assert_eq!(fake.intents().len(), 2);
    assert_eq!(balance_of(&app, declined).await, 1_000_000);
    assert_eq!(balance_of(&app, unauthenticated).await, 1_000_000);
    assert_eq!(
        crate::balance::emails_to(
            &app,
            "declined@example.com",
            "Your automatic top-up was declined"
        )
        .await,
        1
    );
    assert_eq!(
        crate::balance::emails_to(
            &app,
            "unsure@example.com",
            "Your bank asks you to confirm a top-up"
        )
        .await,
        1
    );
    let link: String = switchboard_core::schema::emails::table
        .filter(switchboard_core::schema::emails::to_address.eq("unsure@example.com"))
        .filter(
            switchboard_core::schema::emails::subject.eq("Your bank asks you to confirm a top-up"),
        )
        .select(switchboard_core::schema::emails::text_body)
        .first(&mut app.conn().await)
        .await
        .expect("the email");
    assert!(link.contains("/portal/funds?amount=25.000000"), "{link}");
    // A failed payment's webhook changes nothing more.
    let (intent, _) = fake.intents()[0].clone();
    let failed = fake.intent_event("evt_pi_failed", "payment_intent.payment_failed", &intent);
    assert_eq!(deliver(&app.base_url, &failed, signed(&failed)).await, 200);

    // Within the day, no second attempt however often the job runs.
    ctx.clock.advance(chrono::Duration::hours(23));
    review_and_run(&app, &ctx).await;
    assert_eq!(fake.intents().len(), 2);
    // A day on, one more attempt each, with a key of its own.
    ctx.clock.advance(chrono::Duration::hours(1));
    review_and_run(&app, &ctx).await;
    review_and_run(&app, &ctx).await;
    assert_eq!(fake.intents().len(), 4);
    let keys: Vec<String> = fake
        .posts()
        .into_iter()
        .filter(|p| p.path == "/v1/payment_intents")
        .filter_map(|p| p.idempotency_key)
        .collect();
    assert!(
        keys.contains(&format!("replenish:{}:1:2", declined.0)),
        "{keys:?}"
    );
    assert_eq!(balance_of(&app, declined).await, 1_000_000);
}

/// The card page's form: its CSRF token and its one-time request key.
async fn card_form(app: &TestApp, http: &reqwest::Client) -> [(&'static str, String); 2] {
    let page = app.page(http, "/portal/funds/card").await;
    let key = page
        .split("name=\"request_key\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no request key: {page}"))
        .to_owned();
    [
        (
            "csrf",
            crate::harness::csrf_in(&page).expect("a CSRF token"),
        ),
        ("request_key", key),
    ]
}

/// Presses "Give a new card" on `form`; returns the response.
async fn press_replace_card(
    app: &TestApp,
    http: &reqwest::Client,
    form: &[(&'static str, String); 2],
) -> reqwest::Response {
    http.post(app.url("/portal/funds/card/replace"))
        .form(form)
        .send()
        .await
        .expect("POST")
}

async fn card_of_user(
    app: &TestApp,
    username: &str,
) -> (Option<String>, Option<String>, Option<String>) {
    let mut conn = app.conn().await;
    accounts::table
        .inner_join(switchboard_core::schema::users::table)
        .filter(switchboard_core::schema::users::username.eq(username))
        .select((
            accounts::stripe_customer_id,
            accounts::stripe_payment_method_id,
            accounts::card_last4,
        ))
        .first(&mut conn)
        .await
        .expect("the account")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_replaces_the_saved_card_through_a_setup_session_kept_only_by_the_signed_webhook()
{
    let (app, fake) = stripe_app().await;
    let (http, _order, _) = sign_up(&app, "carla").await;
    let paid = fake.complete("cs_test_1", true, "evt_paid_carla");
    assert_eq!(deliver(&app.base_url, &paid, signed(&paid)).await, 200);
    let visa = (
        Some("cus_test_1".to_owned()),
        Some("pm_card_visa".to_owned()),
        Some("4242".to_owned()),
    );
    assert_eq!(card_of_user(&app, "carla").await, visa);

    let form = card_form(&app, &http).await;
    let response = press_replace_card(&app, &http, &form).await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        "https://checkout.stripe.test/c/pay/cs_test_2"
    );
    let sent = fake.session("cs_test_2").form;
    let field = |name: &str| {
        sent.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let account: i64 = {
        let mut conn = app.conn().await;
        switchboard_core::schema::users::table
            .filter(switchboard_core::schema::users::username.eq("carla"))
            .select(switchboard_core::schema::users::account_id)
            .first::<Option<i64>>(&mut conn)
            .await
            .expect("the user")
            .expect("a client")
    };
    assert_eq!(field("mode"), Some("setup"));
    assert_eq!(
        field("customer"),
        Some("cus_test_1"),
        "the card's own customer"
    );
    assert_eq!(field("currency"), Some("usd"));
    assert_eq!(field("payment_method_types[0]"), Some("card"));
    assert_eq!(
        field("metadata[account]"),
        Some(account.to_string().as_str())
    );
    assert!(
        sent.iter().all(|(k, _)| !k.starts_with("line_items")),
        "{sent:?}"
    );
    assert!(
        field("success_url").is_some_and(|u| u.ends_with("/portal/funds/card?from=stripe")),
        "{sent:?}"
    );
    let key = fake
        .posts()
        .into_iter()
        .rfind(|p| p.path == "/v1/checkout/sessions")
        .and_then(|p| p.idempotency_key)
        .expect("a key");
    assert_eq!(key, format!("card-setup:{account}:{}", form[1].1));
    let refused = app
        .graphql(
            &http,
            r#"mutation { replaceCard(requestKey: "short") { setupUrl } }"#,
            serde_json::json!({}),
        )
        .await;
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("requestKey must be")),
        "{refused}"
    );

    // A second press of the same form gets the same session; nothing
    // changes before Stripe confirms the new card.
    let again = press_replace_card(&app, &http, &form).await;
    assert_eq!(
        again.headers()["location"],
        "https://checkout.stripe.test/c/pay/cs_test_2"
    );
    assert_eq!(fake.sessions().len(), 2);
    let back = app.page(&http, "/portal/funds/card?from=stripe").await;
    assert!(back.contains("Stripe has your new card"), "{back}");
    assert_eq!(card_of_user(&app, "carla").await, visa);

    // The client gives a Mastercard. A forged event changes nothing; the
    // signed one, delivered three times, keeps the new card once.
    let completed = fake.complete_setup("cs_test_2", "pm_card_mastercard", "evt_setup_1");
    assert_eq!(deliver(&app.base_url, &completed, None).await, 400);
    assert_eq!(card_of_user(&app, "carla").await, visa);
    for _ in 0..3 {
        assert_eq!(
            deliver(&app.base_url, &completed, signed(&completed)).await,
            200
        );
    }
    assert_eq!(
        card_of_user(&app, "carla").await,
        (
            Some("cus_test_1".to_owned()),
            Some("pm_card_mastercard".to_owned()),
            Some("4444".to_owned()),
        )
    );
    let funds = app.page(&http, "/portal/funds").await;
    assert!(funds.contains("MASTERCARD ending 4444"), "{funds}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_card_for_an_account_without_a_stripe_customer_makes_one_and_stripe_down_changes_nothing()
{
    let (app, fake) = stripe_app().await;
    let (http, _order, _) = sign_up(&app, "dora").await;
    assert_eq!(card_of_user(&app, "dora").await, (None, None, None));

    // Stripe fails the session and keeps that answer under its key: the
    // page that says so carries a new key, so trying again works.
    fake.fail_next(1);
    let down = press_replace_card(&app, &http, &card_form(&app, &http).await).await;
    assert_eq!(down.status(), 503);
    let page = down.text().await.expect("body");
    assert!(page.contains("your card is unchanged"), "{page}");
    assert_eq!(card_of_user(&app, "dora").await, (None, None, None));

    let response = press_replace_card(&app, &http, &card_form(&app, &http).await).await;
    assert_eq!(response.status(), 303);
    let customers = fake.customers();
    assert_eq!(customers.len(), 1, "one customer, whatever was retried");
    let (customer, form) = &customers[0];
    assert!(
        form.contains(&("email".to_owned(), "dora@example.com".to_owned())),
        "{form:?}"
    );
    let session = fake.sessions().len();
    let sent = fake.session(&format!("cs_test_{session}")).form;
    assert!(
        sent.contains(&("customer".to_owned(), customer.clone())),
        "{sent:?}"
    );
    let completed = fake.complete_setup(
        &format!("cs_test_{session}"),
        "pm_card_visa",
        "evt_setup_dora",
    );
    assert_eq!(
        deliver(&app.base_url, &completed, signed(&completed)).await,
        200
    );
    assert_eq!(
        card_of_user(&app, "dora").await,
        (
            Some(customer.clone()),
            Some("pm_card_visa".to_owned()),
            Some("4242".to_owned()),
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_amount_to_add_that_is_zero_negative_too_large_or_not_a_number_is_refused_and_nothing_charged(
) {
    let (app, fake) = stripe_app().await;
    let (_, username, password) = app.client("amy", 5_000_000).await;
    let http = TestApp::browser();
    app.sign_in(&http, &username, &password).await;
    let orders_now = || async {
        orders::table
            .count()
            .get_result::<i64>(&mut app.conn().await)
            .await
            .expect("count")
    };
    let before = orders_now().await;
    for (amount, said) in [
        ("0", "between $10.00 and $1,000.00"),
        ("-25", "between $10.00 and $1,000.00"),
        ("1000.01", "between $10.00 and $1,000.00"),
        ("9.99", "between $10.00 and $1,000.00"),
        ("ten", "not a number"),
        ("", "not a number"),
        ("25.005", "whole cents"),
        ("1e3", "not a number"),
    ] {
        let answer = app
            .graphql(
                &http,
                "mutation($a: String!) { addFunds(amount: $a) { paymentUrl } }",
                serde_json::json!({ "a": amount }),
            )
            .await;
        let message = answer["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains(said), "{amount:?}: {answer}");
    }
    assert_eq!(orders_now().await, before, "no order for a refused amount");
    assert!(fake.sessions().is_empty(), "nothing sent to Stripe");

    let answer = app
        .graphql(
            &http,
            "mutation($a: String!) { addFunds(amount: $a) { paymentUrl } }",
            serde_json::json!({ "a": "25.50" }),
        )
        .await;
    assert!(answer["errors"].is_null(), "{answer}");
    let sent = &fake.sessions()[0];
    assert!(
        sent.contains(&(
            "line_items[0][price_data][unit_amount]".to_owned(),
            "2550".to_owned()
        )),
        "{sent:?}"
    );
}
