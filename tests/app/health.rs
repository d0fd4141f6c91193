use crate::harness::TestApp;

#[tokio::test(flavor = "multi_thread")]
async fn healthz_answers_and_readyz_checks_the_database() {
    let app = TestApp::spawn().await;
    let http = TestApp::browser();
    let health = http.get(app.url("/healthz")).send().await.expect("GET");
    assert_eq!(health.status(), 200);
    let ready = http.get(app.url("/readyz")).send().await.expect("GET");
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.text().await.expect("body"), "ready");
}

/// A second server, pointed at a database that does not exist; its address.
async fn server_without_a_database(app: &TestApp) -> std::net::SocketAddr {
    let url = app.db_url.replace("dbname=test_", "dbname=missing_");
    let pool = switchboard_core::db::pool(&url, 1).expect("pool");
    let state = switchboard_web::AppState::new(
        pool,
        switchboard_core::keys::SecretKey::generate(),
        crate::harness::test_settings("http://127.0.0.1"),
    )
    .expect("the application state");
    let (acceptor, address) = switchboard::server::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    tokio::spawn(switchboard::server::serve(
        acceptor,
        state,
        std::future::pending(),
    ));
    address
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_says_so_when_the_database_is_gone() {
    let app = TestApp::spawn().await;
    let address = server_without_a_database(&app).await;
    let ready = TestApp::browser()
        .get(format!("http://{address}/readyz"))
        .send()
        .await
        .expect("GET");
    assert_eq!(ready.status(), 503);
    let health = TestApp::browser()
        .get(format!("http://{address}/healthz"))
        .send()
        .await
        .expect("GET");
    assert_eq!(health.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_home_page_and_checkout_answer_503_and_keep_the_form_while_the_database_is_down() {
    let app = TestApp::spawn().await;
    let address = server_without_a_database(&app).await;
    let http = TestApp::browser();
    let home = http
        .get(format!("http://{address}/"))
        .send()
        .await
        .expect("GET /");
    assert_eq!(home.status(), 503);
    assert!(home
        .text()
        .await
        .expect("body")
        .contains("try again in a moment"));

    let sign_in = http
        .get(format!("http://{address}/sign-in"))
        .send()
        .await
        .expect("GET /sign-in")
        .text()
        .await
        .expect("body");
    let csrf = crate::harness::csrf_in(&sign_in).expect("a CSRF token");
    let mut form = crate::commerce::good_form("nora");
    form.push(("csrf", csrf));
    let checkout = http
        .post(format!("http://{address}/checkout"))
        .form(&form)
        .send()
        .await
        .expect("POST /checkout");
    assert_eq!(checkout.status(), 503);
    let page = checkout.text().await.expect("body");
    assert!(page.contains("try again in a moment"), "{page}");
    for typed in [
        "value=\"nora\"",
        "nora@example.com",
        "Nora New",
        "New &amp; Co",
    ] {
        assert!(page.contains(typed), "{typed} is kept: {page}");
    }
    assert!(
        !page.contains("a-good-password"),
        "passwords are not sent back"
    );
    assert!(page.contains("name=\"plan\" value=\"office\""), "{page}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_address_gets_a_finished_not_found_page() {
    let app = TestApp::spawn().await;
    let response = TestApp::browser()
        .get(app.url("/no/such/page"))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 404);
    let page = response.text().await.expect("body");
    assert!(page.contains("There is no page at this address."));
    assert!(page.contains("/static/switchboard.css"));
}
