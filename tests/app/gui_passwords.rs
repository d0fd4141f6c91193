//! A PBX's GUI password changed through the controller: by its client from
//! the control panel, strength checked or generated, shown once, in force
//! only once the controller confirmed it; never by another client.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use fantoccini::Locator;
use switchboard_controller::simulator::Faults;
use switchboard_core::commerce::pbxes::{self, GUI_PASSWORD};
use switchboard_core::schema::{audit_log, background_jobs, pbx_password_changes};
use switchboard_core::{AccountId, Role};

use crate::balance::{pbx_on_simulator, run_jobs_with};
use crate::browser::{browser, screenshot, sign_in};
use crate::commerce::seed_plan;
use crate::harness::TestApp;
use crate::turned_off::{click, text_of};

/// A client's PBX at the simulator whose GUI password is `password`, there
/// and as stored (sealed).
async fn running_pbx(
    app: &TestApp,
    account: AccountId,
    name: &str,
    password: &str,
) -> (i64, String) {
    let plan = seed_plan(app).await;
    let (pbx, on_controller) = pbx_on_simulator(app, account, plan, name).await;
    diesel::update(switchboard_core::schema::pbxes::table.find(pbx))
        .set(
            switchboard_core::schema::pbxes::gui_password_sealed
                .eq(app.state.key.encrypt(GUI_PASSWORD, password)),
        )
        .execute(&mut app.conn().await)
        .await
        .expect("sealed");
    app.jobs
        .controller
        .set_gui_password(&on_controller, password)
        .await
        .expect("the simulator's password");
    (pbx, on_controller)
}

/// The PBX's GUI password as Switchboard keeps it.
async fn stored_password(app: &TestApp, pbx: i64) -> String {
    let stored = pbxes::get(&mut app.conn().await, pbx)
        .await
        .expect("query")
        .expect("the PBX");
    app.state
        .key
        .decrypt(GUI_PASSWORD, &stored.gui_password_sealed)
        .expect("opens")
}

/// The PBX's GUI password as the controller has it.
fn controller_password(app: &TestApp, id: &str) -> String {
    app.simulator
        .pbxes()
        .into_iter()
        .find(|p| p.id == id)
        .expect("the simulator has it")
        .gui_password
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_changes_the_pbx_password() {
    let app = TestApp::spawn().await;
    let (account, username, password) = app.client("guico", 10_000_000).await;
    let (pbx, on_controller) = running_pbx(&app, account, "gui-1", "Old-Password-1").await;
    let browser = browser().await;
    sign_in(&browser, &app, &username, &password).await;
    click(&browser, &format!("a[href='/portal/pbxes/{pbx}/password']")).await;

    // A weak password is refused, and nothing changes.
    click(&browser, "#choice-typed").await;
    browser
        .find(Locator::Id("gui-password"))
        .await
        .expect("the field")
        .send_keys("letmein")
        .await
        .expect("type");
    click(&browser, "#gui-password-form button[type=submit]").await;
    let refused = text_of(&browser, "#gui-password-error").await;
    assert!(refused.contains("at least 12 characters"), "{refused}");

    // A generated one is shown once and is on its way.
    click(&browser, "#choice-generate").await;
    click(&browser, "#gui-password-form button[type=submit]").await;
    let new_password = text_of(&browser, "#new-gui-password").await;
    screenshot(&browser, "gui-password-shown-once").await;
    assert_eq!(
        switchboard_core::commerce::gui_passwords::check_strength(&new_password),
        Ok(())
    );
    let status = text_of(&browser, "[data-testid=password-status]").await;
    assert!(status.contains("old password stays in force"), "{status}");
    assert_eq!(stored_password(&app, pbx).await, "Old-Password-1");

    // The controller takes it: the page says when, and it is the PBX's now.
    run_jobs_with(&app, &app.jobs, 5).await;
    browser
        .find(Locator::LinkText("Check whether it took effect"))
        .await
        .expect("the link")
        .click()
        .await
        .expect("click");
    let status = text_of(&browser, "[data-testid=password-status]").await;
    screenshot(&browser, "gui-password-took-effect").await;
    assert!(status.contains("took effect at"), "{status}");
    let page = browser.source().await.expect("the page");
    assert!(!page.contains(&new_password), "shown once only");
    browser.close().await.expect("close");
    assert_eq!(controller_password(&app, &on_controller), new_password);
    assert_eq!(stored_password(&app, pbx).await, new_password);
    let audited: Vec<(String, String, String)> = audit_log::table
        .filter(audit_log::action.eq("pbx.change_gui_password"))
        .select((
            audit_log::actor,
            audit_log::subject,
            audit_log::after.assume_not_null(),
        ))
        .load(&mut app.conn().await)
        .await
        .expect("audit");
    assert_eq!(audited.len(), 1);
    assert_eq!(
        (audited[0].0.as_str(), audited[0].1.as_str()),
        ("guico", format!("pbx:{pbx}").as_str())
    );
    assert!(!audited[0].2.contains(&new_password));
}

const CHANGE: &str = r#"mutation($p: ID!, $w: String) { changePbxPassword(pbxId: $p, password: $w) { password change { state } } }"#;
const STATUS: &str =
    r#"query($p: ID!) { pbx(id: $p) { passwordChange { state tookEffectAt error } } }"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_controller_leaves_the_old_pbx_password_in_force_and_says_so() {
    let app = TestApp::spawn().await;
    let (account, username, password) = app.client("flakyco", 10_000_000).await;
    let (pbx, on_controller) = running_pbx(&app, account, "flaky-1", "Old-Password-1").await;
    let http = app.signed_in(&username, &password).await;
    let vars = |w: &str| serde_json::json!({ "p": pbx.to_string(), "w": w });

    app.simulator.arm(Faults {
        fail: 1_000,
        ..Faults::default()
    });
    let started = app.graphql(&http, CHANGE, vars("Blue-Harbour-4711")).await;
    assert_eq!(
        started["data"]["changePbxPassword"]["password"], "Blue-Harbour-4711",
        "{started}"
    );
    assert_eq!(
        started["data"]["changePbxPassword"]["change"]["state"],
        "PENDING"
    );

    // A first refusal: still pending, the complaint shown, the old one in force.
    let pass = switchboard_jobs::run_due(&app.pool, &app.jobs)
        .await
        .expect("a pass");
    assert_eq!(pass.failed, 1, "{pass:?}");
    let status = app
        .graphql(&http, STATUS, serde_json::json!({ "p": pbx.to_string() }))
        .await;
    let change = &status["data"]["pbx"]["passwordChange"];
    assert_eq!(change["state"], "PENDING", "{status}");
    assert!(
        change["error"].as_str().is_some_and(|e| e.contains("503")),
        "{status}"
    );
    assert_eq!(stored_password(&app, pbx).await, "Old-Password-1");

    // Given up: failed, and the old password is still the one in force.
    run_jobs_with(&app, &app.jobs, 12).await;
    let status = app
        .graphql(&http, STATUS, serde_json::json!({ "p": pbx.to_string() }))
        .await;
    let change = &status["data"]["pbx"]["passwordChange"];
    assert_eq!(change["state"], "FAILED", "{status}");
    assert!(change["tookEffectAt"].is_null());
    assert_eq!(stored_password(&app, pbx).await, "Old-Password-1");
    assert_eq!(controller_password(&app, &on_controller), "Old-Password-1");
    let page = app
        .page(&http, &format!("/portal/pbxes/{pbx}/password"))
        .await;
    assert!(
        page.contains("did not take effect") && page.contains("old password is still in force"),
        "{page}"
    );

    // Once the controller works again, a new try takes effect.
    app.simulator.arm(Faults::default());
    let started = app.graphql(&http, CHANGE, vars("Green-Harbour-4712")).await;
    assert_eq!(
        started["data"]["changePbxPassword"]["change"]["state"], "PENDING",
        "{started}"
    );
    run_jobs_with(&app, &app.jobs, 3).await;
    let status = app
        .graphql(&http, STATUS, serde_json::json!({ "p": pbx.to_string() }))
        .await;
    assert_eq!(
        status["data"]["pbx"]["passwordChange"]["state"], "DONE",
        "{status}"
    );
    assert_eq!(stored_password(&app, pbx).await, "Green-Harbour-4712");
    assert_eq!(
        controller_password(&app, &on_controller),
        "Green-Harbour-4712"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_cannot_change_another_clients_pbx_password() {
    let app = TestApp::spawn().await;
    let (victim, _, _) = app.client("victimco", 10_000_000).await;
    let (pbx, on_controller) = running_pbx(&app, victim, "victim-1", "Old-Password-1").await;
    let (_, username, password) = app.client("intruder", 10_000_000).await;
    let http = app.signed_in(&username, &password).await;
    let answer = app
        .graphql(
            &http,
            CHANGE,
            serde_json::json!({ "p": pbx.to_string(), "w": "Stolen-Harbour-4711" }),
        )
        .await;
    assert_eq!(
        answer["errors"][0]["message"],
        format!("No PBX {pbx}."),
        "{answer}"
    );
    assert!(answer["data"].is_null(), "{answer}");
    let page = app
        .page(&http, &format!("/portal/pbxes/{pbx}/password"))
        .await;
    assert!(page.contains(&format!("No PBX {pbx}.")), "{page}");

    // Nothing was asked for, queued or audited; the password is unchanged.
    let mut conn = app.conn().await;
    let changes: i64 = pbx_password_changes::table
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    let jobs: i64 = background_jobs::table
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    let audited: i64 = audit_log::table
        .filter(audit_log::action.eq("pbx.change_gui_password"))
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!((changes, jobs, audited), (0, 0, 0));
    run_jobs_with(&app, &app.jobs, 2).await;
    assert_eq!(stored_password(&app, pbx).await, "Old-Password-1");
    assert_eq!(controller_password(&app, &on_controller), "Old-Password-1");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_sets_a_new_pbx_gui_password_through_the_controller() {
    let app = TestApp::spawn().await;
    let (account, _, _) = app.client("adminset", 10_000_000).await;
    let (pbx, on_controller) = running_pbx(&app, account, "adminset-1", "Old-Password-1").await;
    let (_, staff_password) = app.user("sam", Role::Staff, None).await;
    let (_, admin_password) = app.user("ada", Role::Admin, None).await;
    let page = format!("/admin/pbxes/{pbx}");
    let action = format!("/admin/pbxes/{pbx}/password");

    // Staff see the PBX but may not set its password.
    let staff = app.signed_in("sam", &staff_password).await;
    let shown = app.page(&staff, &page).await;
    assert!(!shown.contains("gui-password-form"), "{shown}");
    let token = app.csrf_token(&staff, &page).await;
    let refused = staff
        .post(app.url(&action))
        .form(&[("csrf", token.as_str()), ("choice", "generate")])
        .send()
        .await
        .expect("POST");
    assert_eq!(refused.status(), 403);

    // An admin has one generated: shown once, in force once the controller took it.
    let admin = app.signed_in("ada", &admin_password).await;
    let token = app.csrf_token(&admin, &page).await;
    let answer = admin
        .post(app.url(&action))
        .form(&[("csrf", token.as_str()), ("choice", "generate")])
        .send()
        .await
        .expect("POST")
        .text()
        .await
        .expect("the page");
    let start = answer
        .find("id=\"new-gui-password\"")
        .unwrap_or_else(|| panic!("{answer}"));
    let shown_password: String = answer[start..]
        .split('>')
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the password")
        .to_owned();
    assert_eq!(stored_password(&app, pbx).await, "Old-Password-1");
    run_jobs_with(&app, &app.jobs, 3).await;
    assert_eq!(controller_password(&app, &on_controller), shown_password);
    assert_eq!(stored_password(&app, pbx).await, shown_password);
    let after = app.page(&admin, &page).await;
    assert!(
        after.contains("took effect at") && !after.contains(&shown_password),
        "{after}"
    );
    let audited: Vec<(String, String)> = audit_log::table
        .filter(audit_log::action.eq("pbx.change_gui_password"))
        .select((audit_log::actor, audit_log::detail))
        .load(&mut app.conn().await)
        .await
        .expect("audit");
    assert_eq!(audited, [("ada".to_owned(), "set by an admin".to_owned())]);
}
