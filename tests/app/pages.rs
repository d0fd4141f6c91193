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
