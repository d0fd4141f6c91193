use chrono::{Duration, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use switchboard_core::schema::{background_jobs, sessions};
use switchboard_jobs::{enqueue, run_due, Job, Pass};

use crate::harness::TestApp;

#[tokio::test(flavor = "multi_thread")]
async fn expired_sessions_are_purged_by_a_job_queued_once() {
    let app = TestApp::spawn().await;
    let (_, username, password) = app.client("jobs", 0).await;
    app.signed_in(&username, &password).await;
    app.signed_in(&username, &password).await;
    let mut conn = app.conn().await;
    let oldest: String = sessions::table
        .select(sessions::token_hash)
        .first(&mut conn)
        .await
        .expect("a session");
    diesel::update(sessions::table.find(oldest))
        .set(sessions::expires_at.eq(Utc::now() - Duration::minutes(1)))
        .execute(&mut conn)
        .await
        .expect("expiring one session");

    let name = Job::PurgeExpiredSessions.name();
    assert!(
        enqueue(&mut conn, Job::PurgeExpiredSessions, "{}", Some(name))
            .await
            .expect("queued")
    );
    assert!(
        !enqueue(&mut conn, Job::PurgeExpiredSessions, "{}", Some(name))
            .await
            .expect("deduplicated")
    );
    let pass = run_due(&app.pool, &app.jobs).await.expect("ran");
    assert_eq!(
        pass,
        Pass {
            succeeded: 1,
            failed: 0,
            given_up: 0
        }
    );
    let left: i64 = sessions::table
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(left, 1, "only the expired session is gone");
    let queued: i64 = background_jobs::table
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(queued, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_job_is_kept_with_its_error_and_retried_later() {
    let app = TestApp::spawn().await;
    let mut conn = app.conn().await;
    diesel::insert_into(background_jobs::table)
        .values((
            background_jobs::job_type.eq("provision_pbx"),
            background_jobs::data.eq("not-a-pbx"),
        ))
        .execute(&mut conn)
        .await
        .expect("queued");
    let pass = run_due(&app.pool, &app.jobs).await.expect("ran");
    assert_eq!(
        pass,
        Pass {
            succeeded: 0,
            failed: 1,
            given_up: 0
        }
    );
    let (attempts, error, run_after): (i32, Option<String>, chrono::DateTime<Utc>) =
        background_jobs::table
            .select((
                background_jobs::attempts,
                background_jobs::last_error,
                background_jobs::run_after,
            ))
            .first(&mut conn)
            .await
            .expect("still queued");
    assert_eq!(attempts, 1);
    assert!(error.expect("an error").contains("is not a PBX id"));
    assert!(run_after > Utc::now(), "the retry waits");
    assert_eq!(
        run_due(&app.pool, &app.jobs).await.expect("ran"),
        Pass::default(),
        "not due yet"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_no_version_knows_is_given_up_rather_than_retried_forever() {
    let app = TestApp::spawn().await;
    let mut conn = app.conn().await;
    diesel::insert_into(background_jobs::table)
        .values(background_jobs::job_type.eq("retired_job_name"))
        .execute(&mut conn)
        .await
        .expect("queued");
    let pass = run_due(&app.pool, &app.jobs).await.expect("ran");
    assert_eq!(pass.given_up, 1);
    let left: i64 = background_jobs::table
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(left, 0);
}

/// Connections of this test's database, other than `conn`'s own, that sit
/// inside an open transaction.
async fn open_transactions(conn: &mut diesel_async::AsyncPgConnection) -> i64 {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query(
        "SELECT count(*) AS n FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() \
           AND state LIKE 'idle in transaction%'",
    )
    .get_result::<Count>(conn)
    .await
    .expect("pg_stat_activity")
    .n
}

/// Signs `username` up and pays with the test gateway: a PBX to provision.
async fn paid_signup(app: &TestApp, username: &str) {
    use crate::commerce::{pay, seed_plan, signed_up};
    seed_plan(app).await;
    let (http, order) = signed_up(app, username).await;
    pay(app, &http, &order, "4242424242424242", None).await;
}

/// Signs `username` up and pays, then starts a job runner; returns it once
/// the controller has made the PBX and sits on its answer past the
/// client's two-second timeout.
async fn provisioning_under_way(
    app: &TestApp,
    username: &str,
) -> tokio::task::JoinHandle<anyhow::Result<Pass>> {
    use switchboard_controller::simulator::Faults;

    paid_signup(app, username).await;
    app.simulator.arm(Faults {
        lose_answer: 1,
        ..Faults::default()
    });
    let runner = {
        let (pool, jobs) = (app.pool.clone(), app.jobs.clone());
        tokio::spawn(async move { run_due(&pool, &jobs).await })
    };
    let started = std::time::Instant::now();
    while app.simulator.pbxes().is_empty() {
        assert!(
            started.elapsed().as_secs() < 10,
            "the controller was never called"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    runner
}

/// After a retry: the controller made one PBX, under the request id
/// Switchboard keeps for it, and the PBX is active.
async fn one_active_pbx_under_its_request_id(app: &TestApp) {
    use switchboard_core::schema::pbxes;
    let made = app.simulator.pbxes();
    assert_eq!(made.len(), 1, "the retry found the PBX the first call made");
    let mut conn = app.conn().await;
    let (request_id, state): (String, String) = pbxes::table
        .select((pbxes::request_id, pbxes::state))
        .first(&mut conn)
        .await
        .expect("the PBX");
    assert_eq!(
        (made[0].request_id.as_str(), state.as_str()),
        (request_id.as_str(), "active")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_database_transaction_is_open_while_the_controller_is_called_and_a_lost_answer_is_retried_with_the_same_request_id(
) {
    let app = TestApp::spawn().await;
    let runner = provisioning_under_way(&app, "patient").await;
    let mut conn = app.conn().await;
    assert_eq!(
        open_transactions(&mut conn).await,
        0,
        "the runner holds no transaction while it waits for the controller"
    );
    let claimed: Vec<i64> = diesel::sql_query("SELECT id FROM background_jobs FOR UPDATE NOWAIT")
        .load::<JobId>(&mut conn)
        .await
        .expect("no row of the queue is locked")
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(claimed.len(), 1, "the job is still queued while it runs");
    assert_eq!(
        run_due(&app.pool, &app.jobs).await.expect("ran"),
        Pass::default(),
        "another instance does not take up a job being run"
    );

    let pass = runner.await.expect("the runner").expect("a pass");
    assert_eq!(pass.failed, 1, "the answer was lost");
    let attempts: i32 = background_jobs::table
        .select(background_jobs::attempts)
        .first(&mut conn)
        .await
        .expect("kept for a retry");
    assert_eq!(attempts, 1);

    assert_eq!(crate::commerce::run_jobs(&app, 3).await.succeeded, 1);
    one_active_pbx_under_its_request_id(&app).await;
}

#[derive(QueryableByName)]
struct JobId {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provisioning_run_that_dies_during_the_controller_call_is_taken_up_again_after_its_lease_with_the_same_request_id(
) {
    let app = TestApp::spawn().await;
    let runner = provisioning_under_way(&app, "crashy").await;
    // The instance stops while the controller works.
    runner.abort();
    let _ = runner.await;

    let mut conn = app.conn().await;
    let (attempts, run_after): (i32, chrono::DateTime<Utc>) = background_jobs::table
        .select((background_jobs::attempts, background_jobs::run_after))
        .first(&mut conn)
        .await
        .expect("the job is still queued");
    assert_eq!(attempts, 1, "the interrupted attempt counts");
    assert!(
        run_after > Utc::now() + Duration::minutes(5),
        "held for its lease, as if the runner were still working"
    );
    assert_eq!(
        run_due(&app.pool, &app.jobs).await.expect("ran"),
        Pass::default()
    );

    // The lease runs out: another instance takes the job up.
    assert_eq!(crate::commerce::run_jobs(&app, 3).await.succeeded, 1);
    one_active_pbx_under_its_request_id(&app).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_whose_runner_stopped_during_every_attempt_is_given_up_without_running_again() {
    use switchboard_core::schema::{emails, pbxes};

    let app = TestApp::spawn().await;
    paid_signup(&app, "doomed").await;
    // Every attempt allowed was claimed, and no runner came back from any.
    let mut conn = app.conn().await;
    diesel::update(background_jobs::table)
        .set(background_jobs::attempts.eq(Job::ProvisionPbx.max_attempts()))
        .execute(&mut conn)
        .await
        .expect("claimed ten times");
    let pass = run_due(&app.pool, &app.jobs).await.expect("ran");
    assert_eq!(
        pass,
        Pass {
            succeeded: 0,
            failed: 0,
            given_up: 1
        }
    );
    assert!(
        app.simulator.pbxes().is_empty(),
        "the controller was not called an eleventh time"
    );
    let state: String = pbxes::table
        .select(pbxes::state)
        .first(&mut conn)
        .await
        .expect("the PBX");
    assert_eq!(state, "failed", "staff can retry it from the PBXs page");
    let told: i64 = emails::table
        .filter(emails::subject.like("Provisioning failed for%"))
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(told, 1);
    let left: i64 = background_jobs::table
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(left, 0);
}
