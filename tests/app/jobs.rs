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
