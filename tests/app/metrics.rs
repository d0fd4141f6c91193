//! `/metrics`: this instance's figures in Prometheus' text format, on the
//! public listener only behind the metrics token, or on a listener of its
//! own. Counters are the process's (the tests share one), so they are read
//! as growth; gauges read from the test's own database are exact.

use serde_json::json;
use switchboard_core::config::Secret;
use switchboard_core::outbox::{self, Email};
use switchboard_core::queue;

use crate::harness::TestApp;

const TOKEN: &str = "scraper-token-0123456789";

/// The value of the sample named `series` (name and labels, as written).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
}

async fn scrape(app: &TestApp) -> String {
    let response = reqwest::Client::new()
        .get(app.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    response.text().await.expect("body")
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_are_not_on_the_public_listener_without_a_token_configured() {
    let app = TestApp::spawn().await;
    let response = reqwest::get(app.url("/metrics")).await.expect("GET");
    assert_eq!(response.status(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_answer_only_the_scraper_that_holds_the_token() {
    let app =
        TestApp::spawn_with(|settings| settings.metrics.token = Some(Secret::new(TOKEN))).await;
    let http = reqwest::Client::new();
    let bare = http.get(app.url("/metrics")).send().await.expect("GET");
    assert_eq!(bare.status(), 401);
    assert_eq!(bare.headers()["www-authenticate"], "Bearer");
    let wrong = http
        .get(app.url("/metrics"))
        .bearer_auth("scraper-token-0123456780")
        .send()
        .await
        .expect("GET");
    assert_eq!(wrong.status(), 401);
    assert!(!wrong.text().await.expect("body").contains("switchboard_"));
    assert!(scrape(&app)
        .await
        .contains("# TYPE switchboard_http_requests_total counter"));
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_requests_by_route_pattern_with_their_latency() {
    let app =
        TestApp::spawn_with(|settings| settings.metrics.token = Some(Secret::new(TOKEN))).await;
    let missing =
        "switchboard_http_requests_total{route=\"/plans/:slug\",method=\"GET\",status=\"404\"}";
    let timed = "switchboard_http_request_duration_seconds_count{route=\"/plans/:slug\"}";
    let before = scrape(&app).await;
    for n in 0..3 {
        let page = reqwest::get(app.url(&format!("/plans/no-such-plan-{n}")))
            .await
            .expect("GET");
        assert_eq!(page.status(), 404);
    }
    let after = scrape(&app).await;
    let grew = |series: &str| {
        sample(&after, series).expect(series) - sample(&before, series).unwrap_or(0.0)
    };
    assert!(grew(missing) >= 3.0, "{after}");
    assert!(grew(timed) >= 3.0);
    assert!(
        !after.contains("no-such-plan"),
        "a route's pattern, not each path, makes a series"
    );
    let bucket =
        "switchboard_http_request_duration_seconds_bucket{route=\"/plans/:slug\",le=\"+Inf\"}";
    assert_eq!(sample(&after, bucket), sample(&after, timed));
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_show_jobs_queued_the_outbox_and_the_pool() {
    let app =
        TestApp::spawn_with(|settings| settings.metrics.token = Some(Secret::new(TOKEN))).await;
    let mut conn = app.conn().await;
    for pbx in ["1", "2"] {
        queue::enqueue(&mut conn, queue::PROVISION_PBX, pbx, None)
            .await
            .expect("queued");
    }
    queue::enqueue(&mut conn, queue::PULL_CDRS, "3", None)
        .await
        .expect("queued");
    for n in 0..4 {
        let email = Email {
            to: format!("someone{n}@example.com"),
            subject: "Hello".into(),
            text: "Hello".into(),
            html: "<p>Hello</p>".into(),
        };
        outbox::queue(&mut conn, &email, None)
            .await
            .expect("queued");
    }
    let text = scrape(&app).await;
    assert_eq!(
        sample(&text, "switchboard_jobs_queued{kind=\"provision_pbx\"}"),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, "switchboard_jobs_queued{kind=\"pull_cdrs\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "switchboard_jobs_retrying{kind=\"provision_pbx\"}"),
        Some(0.0)
    );
    assert_eq!(sample(&text, "switchboard_outbox_queued"), Some(4.0));
    assert_eq!(sample(&text, "switchboard_outbox_failed"), Some(0.0));
    assert_eq!(sample(&text, "switchboard_db_pool_max"), Some(8.0));
    let open = sample(&text, "switchboard_db_pool_open").expect("pool open");
    assert!(open >= 1.0, "the scrape's connection stays open");
    let in_use = sample(&text, "switchboard_db_pool_in_use").expect("pool in use");
    assert!(in_use <= open);
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_the_jobs_this_instance_ran_by_kind_and_outcome() {
    let app =
        TestApp::spawn_with(|settings| settings.metrics.token = Some(Secret::new(TOKEN))).await;
    let mut conn = app.conn().await;
    for n in 0..2 {
        queue::enqueue(&mut conn, "a_job_of_metrics_tests", &n.to_string(), None)
            .await
            .expect("queued");
    }
    let before = scrape(&app).await;
    assert_eq!(
        sample(
            &before,
            "switchboard_jobs_queued{kind=\"a_job_of_metrics_tests\"}"
        ),
        Some(2.0)
    );
    let pass = crate::commerce::run_jobs(&app, 3).await;
    assert_eq!(pass.given_up, 2, "no version knows it");
    let after = scrape(&app).await;
    assert_eq!(
        sample(
            &after,
            "switchboard_job_runs_total{kind=\"a_job_of_metrics_tests\",outcome=\"given_up\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &after,
            "switchboard_jobs_queued{kind=\"a_job_of_metrics_tests\"}"
        ),
        None,
        "nothing queued is no series"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_cdrs_taken_in_and_turned_away() {
    let app =
        TestApp::spawn_with(|settings| settings.metrics.token = Some(Secret::new(TOKEN))).await;
    let (staff, _, pbx, _) = crate::calls::pbx_with_rates(&app).await;
    let token = crate::billing::push_token(&app, &staff, pbx).await;
    let accepted = "switchboard_cdrs_total{source=\"push\",outcome=\"accepted\"}";
    let rejected = "switchboard_cdrs_total{source=\"push\",outcome=\"rejected\"}";
    let before = scrape(&app).await;
    let stored = crate::billing::push(
        &app,
        &token,
        json!([
            { "calldate": "2026-11-21T08:00:00Z", "src": "201", "dst": "15550100100",
              "dcontext": "from-internal", "channel": "PJSIP/201-00000001",
              "dstchannel": "PJSIP/voipms-00000002", "duration": 70, "billsec": 61,
              "disposition": "ANSWERED", "uniqueid": "1763712000.1" },
            { "calldate": "yesterday", "disposition": "ANSWERED" },
        ]),
    )
    .await;
    assert_eq!(stored["accepted"], 1);
    let after = scrape(&app).await;
    let grew = |series: &str| {
        sample(&after, series).expect(series) - sample(&before, series).unwrap_or(0.0)
    };
    assert!(grew(accepted) >= 1.0, "{after}");
    assert!(grew(rejected) >= 1.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_have_a_listener_of_their_own_that_needs_no_token() {
    let app = TestApp::spawn().await;
    let (acceptor, address) = switchboard::server::bind("127.0.0.1:0".parse().expect("address"))
        .await
        .expect("bind");
    tokio::spawn(switchboard::server::serve_metrics(
        acceptor,
        app.state.clone(),
    ));
    let response = reqwest::get(format!("http://{address}/metrics"))
        .await
        .expect("GET");
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("body");
    assert_eq!(sample(&text, "switchboard_outbox_queued"), Some(0.0));
    let other = reqwest::get(format!("http://{address}/portal"))
        .await
        .expect("GET");
    assert_eq!(other.status(), 404, "nothing else is served there");
}
