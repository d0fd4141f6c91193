//! What every page and file shares: headers, the icon, the footer's links.

use diesel_async::RunQueryDsl;
use switchboard_core::Role;

use crate::harness::TestApp;

#[tokio::test(flavor = "multi_thread")]
async fn pages_files_and_the_schema_carry_exactly_one_content_type() {
    let app = TestApp::spawn().await;
    let http = TestApp::browser();
    for (path, expected) in [
        ("/graphql/schema", "text/plain; charset=utf-8"),
        ("/static/switchboard.css", "text/css; charset=utf-8"),
        ("/static/rate-import.js", "text/javascript; charset=utf-8"),
        (
            "/static/graphiql/graphiql.min.js",
            "text/javascript; charset=utf-8",
        ),
        ("/favicon.ico", "image/x-icon"),
        ("/", "text/html; charset=utf-8"),
        ("/plans", "text/html; charset=utf-8"),
    ] {
        let response = http.get(app.url(path)).send().await.expect("GET");
        assert_eq!(response.status(), 200, "{path}");
        let types: Vec<&str> = response
            .headers()
            .get_all("content-type")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        assert_eq!(types, [expected], "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_page_names_an_icon_that_is_there() {
    let app = TestApp::spawn().await;
    let http = TestApp::browser();
    for path in ["/", "/sign-in", "/no/such/page"] {
        let page = app.page(&http, path).await;
        assert!(
            page.contains(r#"<link rel="icon" href="/favicon.ico""#),
            "{path}: {page}"
        );
    }
    let icon = http.get(app.url("/favicon.ico")).send().await.expect("GET");
    assert_eq!(icon.status(), 200);
    let bytes = icon.bytes().await.expect("body");
    assert_eq!(&bytes[..4], &[0, 0, 1, 0], "an ICO file");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_terms_accepted_at_checkout_and_the_privacy_notice_can_be_read() {
    let data = tempfile::tempdir().expect("a data folder");
    let folder = data.path().to_owned();
    let app = TestApp::spawn_with(|settings| settings.data_dir = folder).await;
    crate::commerce::seed_plan(&app).await;
    let http = TestApp::browser();
    let cart = app.page(&http, "/cart?plan=office").await;
    let label = &cart[cart
        .find("<label class=\"checkbox\" for=\"accept_terms\"")
        .expect("the terms box")..];
    let label = &label[..label.find("</label>").expect("closed")];
    assert!(label.contains("href=\"/terms\""), "{label}");
    assert!(cart.contains("href=\"/privacy\""));

    let terms = app.page(&http, "/terms").await;
    assert!(terms.contains("<h1>Terms of service</h1>"), "{terms}");
    assert!(terms.contains("Emergency calls"));
    let privacy = app.page(&http, "/privacy").await;
    assert!(privacy.contains("<h1>Privacy notice</h1>"), "{privacy}");

    // The company's own text, from the data folder, shown as soon as it is there.
    std::fs::write(
        data.path().join("terms.md"),
        "# Terms of Acme Voice\n\nCalls to **premium** numbers are barred.\n",
    )
    .expect("writing the terms");
    let terms = app.page(&http, "/terms").await;
    assert!(terms.contains("<h1>Terms of Acme Voice</h1>"), "{terms}");
    assert!(terms.contains("Calls to <strong>premium</strong> numbers are barred."));
    assert!(!terms.contains("Emergency calls"));
    // Every page leads to both.
    let home = app.page(&http, "/").await;
    assert!(home.contains("<a href=\"/terms\">") && home.contains("<a href=\"/privacy\">"));
}

#[tokio::test(flavor = "multi_thread")]
async fn staff_lists_open_the_account_the_pbx_and_the_message_they_list() {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use switchboard_core::outbox::{self, Email};
    use switchboard_core::schema::{audit_log, emails, pbxes};
    let app = TestApp::spawn().await;
    let plan = crate::commerce::seed_plan(&app).await;
    let (account, _, _) = app.client("listed", 7_000_000).await;
    let mut conn = app.conn().await;
    let pbx = app.pbx(account, plan, "active", "pbx-listed").await;
    diesel::update(pbxes::table.find(pbx))
        .set(pbxes::hostname.eq("listed.pbx.switchboard.test"))
        .execute(&mut conn)
        .await
        .expect("its address");
    let email = |subject: &str, text: &str| Email {
        to: "listed@example.com".into(),
        subject: subject.into(),
        text: text.into(),
        html: format!("<p>{text}</p>"),
    };
    outbox::queue(
        &mut conn,
        &email("Low balance", "Your balance is low."),
        None,
    )
    .await
    .expect("queued");
    outbox::queue_sealed(
        &mut conn,
        &app.state.key,
        &email(
            "Your Switchboard PBX is ready",
            "PBX administrator password: s3cret-pbx",
        ),
        None,
    )
    .await
    .expect("queued sealed");
    let id_of = |subject: &'static str| {
        emails::table
            .filter(emails::subject.eq(subject))
            .select(emails::id)
    };
    let plain: i64 = id_of("Low balance").first(&mut conn).await.expect("id");
    let sealed: i64 = id_of("Your Switchboard PBX is ready")
        .first(&mut conn)
        .await
        .expect("id");

    let (_, staff_password) = app.user("lister", Role::Staff, None).await;
    let staff = app.signed_in("lister", &staff_password).await;
    let accounts = app.page(&staff, "/admin").await;
    assert!(accounts.contains(&format!("href=\"/admin/accounts/{}\"", account.0)));
    let page = app
        .page(&staff, &format!("/admin/accounts/{}", account.0))
        .await;
    assert!(
        page.contains("<h1>listed Co</h1>") && page.contains("listed Co owner"),
        "{page}"
    );
    assert!(page.contains("$7.00") && page.contains("opening balance"));
    assert!(page.contains(&format!("href=\"/admin/pbxes/{pbx}\"")));

    let list = app.page(&staff, "/admin/pbxes").await;
    assert!(
        list.contains(&format!(
            "<a href=\"/admin/accounts/{}\">listed Co</a>",
            account.0
        )),
        "the account by name, not number: {list}"
    );
    assert!(list.contains(&format!("href=\"/admin/pbxes/{pbx}\"")));
    let page = app.page(&staff, &format!("/admin/pbxes/{pbx}")).await;
    assert!(page.contains(&format!("<h1>PBX #{pbx}")), "{page}");
    assert!(page.contains("Office") && page.contains("listed.pbx.switchboard.test"));

    let outbox = app.page(&staff, "/admin/outbox").await;
    assert!(outbox.contains(&format!("href=\"/admin/outbox/{plain}\"")));
    assert!(outbox.contains(&format!("href=\"/admin/outbox/{sealed}\"")));
    let message = app.page(&staff, &format!("/admin/outbox/{plain}")).await;
    assert!(message.contains("Your balance is low."), "{message}");
    for path in [
        format!("/admin/outbox/{sealed}"),
        format!("/admin/outbox/{sealed}?open=sealed"),
    ] {
        let message = app.page(&staff, &path).await;
        assert!(!message.contains("s3cret-pbx"), "sealed to staff: {path}");
        assert!(message.contains("Only admins can open it."), "{message}");
    }
    let asked = app
        .graphql(
            &staff,
            "query($id: ID!) { email(id: $id) { text(openSealed: true) } }",
            serde_json::json!({ "id": sealed.to_string() }),
        )
        .await;
    assert_eq!(
        asked["errors"][0]["message"],
        "Only admins can open a sealed message."
    );
    assert!(!asked.to_string().contains("s3cret-pbx"));

    let (_, admin_password) = app.user("opener", Role::Admin, None).await;
    let admin = app.signed_in("opener", &admin_password).await;
    let closed = app.page(&admin, &format!("/admin/outbox/{sealed}")).await;
    assert!(!closed.contains("s3cret-pbx") && closed.contains("Open the sealed message"));
    let opened = app
        .page(&admin, &format!("/admin/outbox/{sealed}?open=sealed"))
        .await;
    assert!(
        opened.contains("PBX administrator password: s3cret-pbx"),
        "{opened}"
    );
    let audited: Vec<(String, String)> = audit_log::table
        .filter(audit_log::action.eq("email.open_sealed"))
        .select((audit_log::actor, audit_log::subject))
        .load(&mut conn)
        .await
        .expect("the audit log");
    assert_eq!(audited, [("opener".to_owned(), format!("email:{sealed}"))]);

    // A client reads their own PBX and no one else's.
    let (other, other_user, other_password) = app.client("elsewhere", 0).await;
    let _ = other;
    let client = app.signed_in(&other_user, &other_password).await;
    let foreign = app
        .graphql(
            &client,
            "query($id: ID!) { pbx(id: $id) { hostname } }",
            serde_json::json!({ "id": pbx.to_string() }),
        )
        .await;
    assert_eq!(foreign["errors"][0]["message"], format!("No PBX {pbx}."));
}

/// The storefront reads the plans from memory while it hears the
/// database announce changes to them: a change slipped past the
/// announcement is not read on a visit, an announced one (made by hand or
/// through another instance) shows within moments, and one made through
/// this instance on the next page.
#[tokio::test(flavor = "multi_thread")]
async fn the_storefront_keeps_the_plans_in_memory_and_every_instance_sees_a_change() {
    let app = TestApp::spawn().await;
    let beside = app.spawn_beside().await;
    let plan = crate::commerce::seed_plan(&app).await;
    let visitor = TestApp::browser();
    let shows = async |app: &TestApp, price: &str| {
        for _ in 0..100 {
            if app.page(&visitor, "/plans").await.contains(price) {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        false
    };
    for app in [&app, &beside] {
        assert!(shows(app, "$79.00").await);
        for _ in 0..100 {
            app.page(&visitor, "/plans").await;
            if app.state.catalogue.fresh().is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(app.state.catalogue.fresh().is_some(), "kept in memory");
    }

    let mut conn = app.conn().await;
    let sql = async |conn: &mut diesel_async::AsyncPgConnection, statement: &str| {
        diesel::sql_query(statement)
            .execute(conn)
            .await
            .expect(statement);
    };
    sql(
        &mut conn,
        "ALTER TABLE plans DISABLE TRIGGER plans_announce_change",
    )
    .await;
    sql(&mut conn, "UPDATE plans SET monthly_fee = 81000000").await;
    sql(
        &mut conn,
        "ALTER TABLE plans ENABLE TRIGGER plans_announce_change",
    )
    .await;
    for path in ["/", "/plans", "/plans/office"] {
        let page = app.page(&visitor, path).await;
        assert!(
            page.contains("$79.00") && !page.contains("$81.00"),
            "{path} served from memory: {page}"
        );
    }

    sql(&mut conn, "UPDATE plans SET monthly_fee = 83000000").await;
    assert!(shows(&app, "$83.00").await, "a change by hand is heard");
    assert!(shows(&beside, "$83.00").await, "by every instance");

    let (_, password) = app.user("catalogue-admin", Role::Admin, None).await;
    let admin = app.signed_in("catalogue-admin", &password).await;
    let change = async |fee: &str| {
        let changed = app
            .graphql(
                &admin,
                r#"mutation($id: ID!, $fee: String!) { updatePlan(id: $id, input: { slug: "office", name: "Office", setupFee: "99", monthlyFee: $fee, includedExtensions: 15 }) { id } }"#,
                serde_json::json!({ "id": plan.to_string(), "fee": fee }),
            )
            .await;
        assert!(changed.get("errors").is_none(), "{changed}");
    };
    change("85").await;
    for path in ["/", "/plans", "/plans/office"] {
        let page = app.page(&visitor, path).await;
        assert!(
            page.contains("$85.00"),
            "at once where it was made: {path}: {page}"
        );
    }
    assert!(
        shows(&beside, "$85.00").await,
        "and soon on the other instance"
    );
}

/// The home and the plans, as a visitor who is not signed in sees them,
/// are kept with the catalogue and answered as kept; a signed-in visitor's
/// are made for them (their bar names them), and never kept for others.
#[tokio::test(flavor = "multi_thread")]
async fn the_storefront_keeps_its_pages_for_visitors_not_signed_in_only() {
    let app = TestApp::spawn().await;
    crate::commerce::seed_plan(&app).await;
    let (_, _, password) = app.client("keeper", 0).await;
    let client = app.signed_in("keeper", &password).await;
    let visitor = TestApp::browser();
    // Kept once the catalogue's changes are heard.
    for _ in 0..100 {
        app.page(&visitor, "/").await;
        app.page(&visitor, "/plans").await;
        if app.state.catalogue.page("home").is_some() && app.state.catalogue.page("plans").is_some()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let kept = app.state.catalogue.page("home").expect("the home kept");
    assert!(
        kept.contains("$79.00") && kept.contains("Sign in"),
        "{kept}"
    );
    for path in ["/", "/plans"] {
        let theirs = app.page(&client, path).await;
        assert!(
            theirs.contains("Signed in as")
                && theirs.contains("keeper")
                && theirs.contains("$79.00"),
            "{path} for the client: {theirs}"
        );
        let anyone = app.page(&visitor, path).await;
        assert!(
            !anyone.contains("keeper")
                && !anyone.contains("Signed in as")
                && anyone.contains("$79.00"),
            "{path} for a visitor: {anyone}"
        );
    }
    let home = app.state.catalogue.page("home").expect("still kept");
    assert!(!home.contains("keeper"), "{home}");
    assert_eq!(app.page(&visitor, "/").await, *home, "answered as kept");
    // A change empties them.
    app.state.catalogue.forget();
    assert!(app.state.catalogue.page("home").is_none());
    assert!(app.state.catalogue.page("plans").is_none());
}

/// `bench --pages` asks every route it reports as the visitor it names (a
/// signed-in client for the panel) and stops on any answer but 200, so a
/// short run passing means its figures are the pages' own. Asked to, it
/// first fills the tables with other customers' calls over two years, or
/// over as few months as it is told.
#[tokio::test(flavor = "multi_thread")]
async fn the_page_benchmark_gets_every_route_it_reports_answered() {
    use diesel_async::RunQueryDsl;
    let url = crate::harness::fresh_database().await;
    let settings = crate::harness::test_settings("http://127.0.0.1");
    switchboard::page_load::run(
        &url,
        settings,
        switchboard::page_load::Shape {
            connections: 4,
            seconds: 1,
        },
        Some((20_000, 24)),
    )
    .await
    .expect("every route answered 200 under load");

    #[derive(diesel::QueryableByName)]
    struct Held {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        cdrs: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        calls: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        months: i64,
    }
    // One connection for the counts, one for the second fill.
    let pool = switchboard_core::db::pool(&url, 2).expect("a pool");
    let mut conn = switchboard_core::db::conn(&pool)
        .await
        .expect("a connection");
    let held = diesel::sql_query(
        "SELECT (SELECT count(*) FROM cdrs WHERE record_key LIKE 'fill.%') AS cdrs, \
                (SELECT count(*) FROM calls WHERE call_key LIKE 'fill.%') AS calls, \
                (SELECT count(DISTINCT tableoid) FROM cdrs WHERE record_key LIKE 'fill.%') AS months",
    )
    .get_result::<Held>(&mut conn)
    .await
    .expect("counts");
    assert!(held.cdrs >= 19_000, "{} CDRs", held.cdrs);
    assert_eq!(held.calls * 2, held.cdrs, "two legs a call");
    assert!(held.months >= 24, "over two years: {} months", held.months);

    #[derive(diesel::QueryableByName)]
    struct Filled {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        all: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        recent: i64,
    }
    let filled = async |conn: &mut diesel_async::AsyncPgConnection| {
        diesel::sql_query(
            "SELECT count(*) AS all, \
                    count(*) FILTER (WHERE calldate > now() - interval '32 days') AS recent \
             FROM cdrs WHERE record_key LIKE 'fill.%'",
        )
        .get_result::<Filled>(conn)
        .await
        .expect("counts")
    };
    let before = filled(&mut conn).await;
    switchboard::bench::fill_with_sql(&pool, 30_000, 1)
        .await
        .expect("filled over a month");
    let after = filled(&mut conn).await;
    assert!(after.all > before.all + 5_000, "filled again");
    assert_eq!(
        after.recent - before.recent,
        after.all - before.all,
        "a fill over one month puts all its calls in the last month"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_query_accepted_once_answers_alike_and_still_refuses_bad_arguments() {
    use serde_json::{json, Value};
    use switchboard_web::operations::{self, OperationError};
    let app = TestApp::spawn().await;
    crate::commerce::seed_plan(&app).await;
    let ctx = switchboard_web::PageContext {
        viewer: switchboard_graphql::Viewer::anonymous(),
        csrf_token: String::new(),
        session_token: None,
        path: "/".into(),
    };
    const TEXT: &str =
        "query AcceptedOncePlan($slug: String!) { plan(slug: $slug) { slug name } plans { slug } }";
    let run = |variables: Value| operations::run::<Value>(&app.state, &ctx, TEXT, variables);
    let refused = |result: Result<Value, OperationError>| matches!(result, Err(OperationError::Refused(ref messages)) if !messages.is_empty());

    // Before it is accepted: the strict schema refuses bad arguments.
    assert!(refused(run(json!({ "slug": 5 })).await));
    assert!(refused(run(json!({})).await));
    assert!(!operations::is_accepted(TEXT));

    let first = run(json!({ "slug": "office" })).await.expect("answers");
    assert!(
        operations::is_accepted(TEXT),
        "accepted once run without an error"
    );
    let again = run(json!({ "slug": "office" })).await.expect("answers");
    assert_eq!(first, again);
    assert!(!first["plans"].as_array().expect("a list").is_empty());
    let other = run(json!({ "slug": "no-such-plan" }))
        .await
        .expect("answers");
    assert_eq!(other["plan"], Value::Null);

    // Once accepted, arguments are still checked as they are read.
    assert!(refused(run(json!({ "slug": 5 })).await));
    assert!(refused(run(json!({ "slug": null })).await));
    assert!(refused(run(json!({})).await));
}
