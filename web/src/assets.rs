//! Files served as they are.

use poem::http::{header, StatusCode};
use poem::web::Path;
use poem::{handler, IntoResponse, Response};

/// A file's bytes with exactly one `Content-Type` (a `String` or `&str`
/// body brings `text/plain` of its own, which a second header would not
/// replace) and how long browsers may keep it.
pub fn file(content_type: &str, max_age_seconds: u32, body: impl Into<Vec<u8>>) -> Response {
    Response::builder()
        .content_type(content_type)
        .header(
            header::CACHE_CONTROL,
            format!("public, max-age={max_age_seconds}"),
        )
        .body(body.into())
}

const STYLESHEET: &str = include_str!("../assets/switchboard.css");

/// `GET /static/switchboard.css`
#[handler]
pub fn stylesheet() -> Response {
    file("text/css; charset=utf-8", 3600, STYLESHEET)
}

const RATE_IMPORT: &str = include_str!("../assets/rate-import.js");

/// `GET /static/rate-import.js`: progress for the rate import form.
#[handler]
pub fn rate_import_script() -> Response {
    file("text/javascript; charset=utf-8", 3600, RATE_IMPORT)
}

const ORDER_PROGRESS: &str = include_str!("../assets/order-progress.js");

/// `GET /static/order-progress.js`: keeps a waiting order's page current.
#[handler]
pub fn order_progress_script() -> Response {
    file("text/javascript; charset=utf-8", 3600, ORDER_PROGRESS)
}

const CALLING_STATUS: &str = include_str!("../assets/calling-status.js");

/// `GET /static/calling-status.js`: keeps the calling status page current.
#[handler]
pub fn calling_status_script() -> Response {
    file("text/javascript; charset=utf-8", 3600, CALLING_STATUS)
}

const CART: &str = include_str!("../assets/cart.js");

/// `GET /static/cart.js`: the cart's summary follows the credit chosen.
#[handler]
pub fn cart_script() -> Response {
    file("text/javascript; charset=utf-8", 3600, CART)
}

const FAVICON: &[u8] = include_bytes!("../assets/favicon.ico");

/// `GET /favicon.ico`: the site's icon, which browsers ask for on every page.
#[handler]
pub fn favicon() -> Response {
    file("image/x-icon", 86_400, FAVICON)
}

/// GraphiQL and the React it runs on, built by their projects and kept in
/// `assets/graphiql/` so nothing is fetched from elsewhere.
const GRAPHIQL: &[(&str, &str, &[u8])] = &[
    (
        "graphiql.min.js",
        "text/javascript",
        include_bytes!("../assets/graphiql/graphiql.min.js"),
    ),
    (
        "graphiql.min.css",
        "text/css",
        include_bytes!("../assets/graphiql/graphiql.min.css"),
    ),
    (
        "react.production.min.js",
        "text/javascript",
        include_bytes!("../assets/graphiql/react.production.min.js"),
    ),
    (
        "react-dom.production.min.js",
        "text/javascript",
        include_bytes!("../assets/graphiql/react-dom.production.min.js"),
    ),
    (
        "graphiql-start.js",
        "text/javascript",
        include_bytes!("../assets/graphiql/graphiql-start.js"),
    ),
    (
        "LICENSES.txt",
        "text/plain",
        include_bytes!("../assets/graphiql/LICENSES.txt"),
    ),
];

/// `GET /static/graphiql/:file`
#[handler]
pub fn graphiql_file(Path(name): Path<String>) -> Response {
    match GRAPHIQL.iter().find(|(file, _, _)| *file == name) {
        Some((_, content_type, bytes)) => {
            file(&format!("{content_type}; charset=utf-8"), 86_400, *bytes)
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
