//! What every page and file shares: headers, the icon, the footer's links.

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
        .find("<label class=\"checkbox\"")
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
