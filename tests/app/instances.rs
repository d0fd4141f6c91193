//! Two instances on one database, as behind a load balancer: a session made
//! on one serves the other, an order paid through one is fulfilled by the
//! other's jobs, and with both running their job runners and outboxes every
//! PBX is provisioned once and every email sent once.

use std::collections::HashMap;
use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use switchboard_core::schema::{background_jobs, emails, orders, pbxes};

use crate::commerce::{pay, seed_plan, signed_up};
use crate::harness::TestApp;
use crate::smtp::SmtpServer;

#[tokio::test(flavor = "multi_thread")]
async fn a_session_made_on_one_instance_serves_the_other_and_ends_on_both() {
    let one = TestApp::spawn().await;
    let other = one.spawn_beside().await;
    let (_, username, password) = one.client("roamer", 0).await;
    // One browser: cookies are the host's, whichever instance answers.
    let http = one.signed_in(&username, &password).await;
    let home = http.get(other.url("/portal")).send().await.expect("GET");
    assert_eq!(home.status(), 200);
    assert!(home.text().await.expect("body").contains("roamer"));
    let report = http
        .get(other.url("/portal/reports"))
        .send()
        .await
        .expect("GET");
    assert_eq!(report.status(), 200);

    let token = other.csrf_token(&http, "/portal").await;
    let out = http
        .post(other.url("/sign-out"))
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .expect("POST /sign-out");
    assert_eq!(out.status(), 303);
    let after = http.get(one.url("/portal")).send().await.expect("GET");
    assert_eq!(after.status(), 303, "signed out on the first one too");
}

async fn order_state(app: &TestApp, order: &str) -> String {
    orders::table
        .filter(orders::public_id.eq(order))
        .select(orders::state)
        .first(&mut app.conn().await)
        .await
        .expect("the order")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_order_paid_through_one_instance_is_fulfilled_by_the_others_jobs() {
    let one = TestApp::spawn().await;
    let other = one.spawn_beside().await;
    seed_plan(&one).await;
    let (http, order) = signed_up(&one, "crossing").await;
    let paid = pay(&one, &http, &order, "4242 4242 4242 4242", None).await;
    assert_eq!(paid.status(), 303);
    assert_eq!(order_state(&one, &order).await, "paid");

    let pass = crate::commerce::run_jobs(&other, 5).await;
    assert_eq!(pass.succeeded, 1);
    assert_eq!(order_state(&one, &order).await, "fulfilled");
    assert_eq!(one.simulator.pbxes().len(), 1);
    let page = http
        .get(other.url(&format!("/orders/{order}")))
        .send()
        .await
        .expect("GET");
    assert_eq!(page.status(), 200);
}

/// Waits until `done` holds, up to a minute.
async fn until<F: std::future::Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
    for _ in 0..120 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("still waiting for {what} after a minute");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_running_their_jobs_and_outboxes_provision_and_send_everything_once() {
    let one = TestApp::spawn().await;
    let other = one.spawn_beside().await;
    seed_plan(&one).await;
    let smtp = SmtpServer::start().await;
    let _workers = [one.start_workers(smtp.port), other.start_workers(smtp.port)];

    // Six sign-ups, each checked out on one instance and paid on the other.
    const ORDERS: usize = 6;
    let mut orders_made = Vec::new();
    for n in 0..ORDERS {
        let (here, there) = if n % 2 == 0 {
            (&one, &other)
        } else {
            (&other, &one)
        };
        let (http, order) = signed_up(here, &format!("twin{n}")).await;
        let paid = pay(there, &http, &order, "4242 4242 4242 4242", None).await;
        assert_eq!(paid.status(), 303);
        orders_made.push(order);
    }
    until("every order fulfilled and every email sent", || async {
        let mut conn = one.conn().await;
        let fulfilled: i64 = orders::table
            .filter(orders::state.eq("fulfilled"))
            .count()
            .get_result(&mut conn)
            .await
            .expect("count");
        let unsent: i64 = emails::table
            .filter(emails::state.ne("sent"))
            .count()
            .get_result(&mut conn)
            .await
            .expect("count");
        fulfilled == ORDERS as i64 && unsent == 0
    })
    .await;

    // Every PBX made once at the controller, under its own request id.
    let made = one.simulator.pbxes();
    assert_eq!(made.len(), ORDERS, "{made:?}");
    let mut conn = one.conn().await;
    let active: i64 = pbxes::table
        .filter(pbxes::state.eq("active"))
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(active, ORDERS as i64);
    let left: i64 = background_jobs::table
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(left, 0, "no job left behind");

    // Every email stored is received once, and nothing else is.
    let stored: Vec<(String, String)> = emails::table
        .select((emails::to_address, emails::subject))
        .load(&mut conn)
        .await
        .expect("emails");
    assert!(
        stored.len() >= 2 * ORDERS,
        "a welcome and a staff notice each"
    );
    let mut received: HashMap<(String, String), usize> = HashMap::new();
    for message in smtp.messages() {
        let subject = message
            .data
            .lines()
            .find_map(|line| line.strip_prefix("Subject: "))
            .expect("a subject")
            .to_owned();
        for to in &message.to {
            let to = to.trim_matches(|c| c == '<' || c == '>').to_owned();
            *received.entry((to, subject.clone())).or_default() += 1;
        }
    }
    let mut expected: HashMap<(String, String), usize> = HashMap::new();
    for email in stored {
        *expected.entry(email).or_default() += 1;
    }
    assert_eq!(received, expected);
    for n in 0..ORDERS {
        let welcome = (
            format!("twin{n}@example.com"),
            "Your Switchboard PBX is ready".to_owned(),
        );
        assert_eq!(expected.get(&welcome), Some(&1), "{welcome:?}");
    }
}
