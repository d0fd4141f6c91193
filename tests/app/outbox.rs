//! The outbox against a real SMTP listener on loopback.

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use switchboard_core::config::{SmtpSecurity, SmtpSettings};
use switchboard_core::outbox::{self, Email};
use switchboard_core::schema::emails;
use switchboard_jobs::{deliver_due, Delivery, Mailer};

use crate::harness::{test_settings, TestApp};
use crate::smtp::SmtpServer;

fn smtp_mailer(port: u16) -> Mailer {
    let mut settings = test_settings("http://127.0.0.1");
    settings.email.from = "Switchboard <noreply@switchboard.test>".into();
    settings.email.smtp = Some(SmtpSettings {
        host: "127.0.0.1".into(),
        port: Some(port),
        security: SmtpSecurity::None,
        username: None,
        password: None,
        timeout_seconds: 5,
    });
    Mailer::from_settings(&settings, switchboard_core::keys::SecretKey::generate())
        .expect("a mailer")
}

fn notice(to: &str) -> Email {
    Email {
        to: to.into(),
        subject: "Your PBX is ready".into(),
        text: "Plain words".into(),
        html: "<p>Rich words</p>".into(),
    }
}

async fn make_due(app: &TestApp) {
    let mut conn = app.conn().await;
    diesel::update(emails::table)
        .set(emails::next_attempt_at.eq(Utc::now()))
        .execute(&mut conn)
        .await
        .expect("due now");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_email_queued_while_smtp_refuses_connections_is_delivered_when_it_returns() {
    let app = TestApp::spawn().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a port")
        .local_addr()
        .expect("addr")
        .port();
    let mailer = smtp_mailer(port);
    let mut conn = app.conn().await;
    assert!(
        outbox::queue(&mut conn, &notice("client@example.com"), Some("welcome:1"))
            .await
            .expect("queued")
    );
    assert!(
        !outbox::queue(&mut conn, &notice("client@example.com"), Some("welcome:1"))
            .await
            .expect("deduplicated")
    );

    let down = deliver_due(&app.pool, &mailer).await.expect("a pass");
    assert_eq!(
        down,
        Delivery {
            sent: 0,
            retrying: 1,
            failed: 0
        }
    );
    let (state, attempts, error): (String, i32, Option<String>) = emails::table
        .select((emails::state, emails::attempts, emails::last_error))
        .first(&mut conn)
        .await
        .expect("the email");
    assert_eq!((state.as_str(), attempts), ("queued", 1));
    assert!(error.is_some());
    assert_eq!(
        deliver_due(&app.pool, &mailer).await.expect("a pass"),
        Delivery::default(),
        "waits before retrying"
    );

    let server = SmtpServer::start_on(port).await;
    make_due(&app).await;
    let up = deliver_due(&app.pool, &mailer).await.expect("a pass");
    assert_eq!(
        up,
        Delivery {
            sent: 1,
            retrying: 0,
            failed: 0
        }
    );
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].to, ["<client@example.com>"]);
    assert_eq!(messages[0].from, "<noreply@switchboard.test>");
    assert!(messages[0].data.contains("Subject: Your PBX is ready"));
    assert!(messages[0].data.contains("multipart/alternative"));
    assert!(
        messages[0].data.contains("Plain words") && messages[0].data.contains("<p>Rich words</p>")
    );
    let state: String = emails::table
        .select(emails::state)
        .first(&mut conn)
        .await
        .expect("the email");
    assert_eq!(state, "sent");
    assert_eq!(
        deliver_due(&app.pool, &mailer).await.expect("a pass"),
        Delivery::default(),
        "sent once"
    );
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_address_that_can_never_work_fails_at_once_and_the_rest_still_go() {
    let app = TestApp::spawn().await;
    let server = SmtpServer::start().await;
    let mut conn = app.conn().await;
    outbox::queue(&mut conn, &notice("not an address"), None)
        .await
        .expect("queued");
    outbox::queue(&mut conn, &notice("good@example.com"), None)
        .await
        .expect("queued");
    let delivery = deliver_due(&app.pool, &smtp_mailer(server.port))
        .await
        .expect("a pass");
    assert_eq!(
        delivery,
        Delivery {
            sent: 1,
            retrying: 0,
            failed: 1
        }
    );
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_smtp_the_outbox_is_written_as_eml_files_only_its_owner_can_read() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().expect("a folder");
    let mut settings = test_settings("http://127.0.0.1");
    settings.data_dir = dir.path().to_owned();
    let mailer = Mailer::from_settings(&settings, switchboard_core::keys::SecretKey::generate())
        .expect("a mailer");
    let mut conn = app.conn().await;
    outbox::queue(&mut conn, &notice("files@example.com"), None)
        .await
        .expect("queued");
    assert_eq!(
        deliver_due(&app.pool, &mailer).await.expect("a pass").sent,
        1
    );
    let files: Vec<_> = std::fs::read_dir(dir.path().join("outbox"))
        .expect("the outbox folder")
        .flatten()
        .collect();
    assert_eq!(files.len(), 1);
    let eml = std::fs::read_to_string(files[0].path()).expect("the message");
    assert!(eml.contains("To: files@example.com") && eml.contains("Subject: Your PBX is ready"));
    // Messages carry PBX passwords: nobody but Switchboard's user reads them.
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&dir.path().join("outbox")), 0o700);
    assert_eq!(mode(&files[0].path()), 0o600);
}

#[tokio::test(flavor = "multi_thread")]
async fn changing_a_password_emails_its_owner_through_smtp() {
    let app = TestApp::spawn().await;
    let server = SmtpServer::start().await;
    let (_, username, password) = app.client("mailme", 0).await;
    let http = app.signed_in(&username, &password).await;
    let answer = app
        .graphql(
            &http,
            "mutation($c: String!) { changePassword(currentPassword: $c, newPassword: \"brand-new-password\") }",
            serde_json::json!({ "c": password }),
        )
        .await;
    assert_eq!(answer["data"]["changePassword"], true, "{answer}");
    deliver_due(&app.pool, &smtp_mailer(server.port))
        .await
        .expect("a pass");
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].to, ["<mailme@example.com>"]);
    assert!(messages[0]
        .data
        .contains("Subject: Your Switchboard password was changed"));
    assert!(
        !messages[0].data.contains("brand-new-password"),
        "never the password itself"
    );
}

/// A sender killed mid-delivery leaves its email leased: another instance
/// tries it again within two minutes, not ten.
#[tokio::test(flavor = "multi_thread")]
async fn an_email_whose_sender_died_is_tried_again_within_two_minutes() {
    let app = TestApp::spawn().await;
    // A mail server that takes the connection and never says a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let mailer = smtp_mailer(port);
    let mut conn = app.conn().await;
    outbox::queue(&mut conn, &notice("new@example.com"), None)
        .await
        .expect("queued");
    let pool = app.pool.clone();
    let sending = tokio::spawn(async move { deliver_due(&pool, &mailer).await });
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    sending.abort();
    let (state, attempts, next): (String, i32, chrono::DateTime<Utc>) = emails::table
        .select((emails::state, emails::attempts, emails::next_attempt_at))
        .first(&mut conn)
        .await
        .expect("the email");
    assert_eq!(
        (state.as_str(), attempts),
        ("queued", 1),
        "claimed, not sent"
    );
    let wait = next - Utc::now();
    assert!(
        wait > chrono::Duration::seconds(20),
        "leased for longer than a delivery may take: {wait}"
    );
    assert!(
        wait <= chrono::Duration::minutes(2),
        "tried again within two minutes: {wait}"
    );
}

/// Delivery is at least once: a message sent again (its sender died after
/// the server took it) carries the same Message-ID, so it reads as one.
#[tokio::test(flavor = "multi_thread")]
async fn an_email_sent_twice_keeps_its_message_id() {
    let app = TestApp::spawn().await;
    let smtp = SmtpServer::start().await;
    let mailer = smtp_mailer(smtp.port);
    let mut conn = app.conn().await;
    outbox::queue(&mut conn, &notice("twice@example.com"), None)
        .await
        .expect("queued");
    let id: i64 = emails::table
        .select(emails::id)
        .first(&mut conn)
        .await
        .expect("its id");
    assert_eq!(deliver_due(&app.pool, &mailer).await.expect("sent").sent, 1);
    diesel::update(emails::table)
        .set(emails::state.eq("queued"))
        .execute(&mut conn)
        .await
        .expect("as if the confirmation was lost");
    make_due(&app).await;
    assert_eq!(deliver_due(&app.pool, &mailer).await.expect("sent").sent, 1);
    let ids: Vec<String> = smtp
        .messages()
        .iter()
        .map(|m| {
            m.data
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
                .expect("a Message-ID")
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1]);
    assert!(
        ids[0].contains(&format!("<outbox-{id}@switchboard.test>")),
        "{}",
        ids[0]
    );
}
