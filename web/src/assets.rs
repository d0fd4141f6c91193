//! Files served as they are.

use poem::http::{header, StatusCode};
use poem::web::Path;
use poem::{handler, IntoResponse, Response};

const STYLESHEET: &str = include_str!("../assets/switchboard.css");

/// `GET /static/switchboard.css`
#[handler]
pub fn stylesheet() -> Response {
    STYLESHEET
        .with_header(header::CONTENT_TYPE, "text/css; charset=utf-8")
        .with_header(header::CACHE_CONTROL, "public, max-age=3600")
        .into_response()
}

const RATE_IMPORT: &str = include_str!("../assets/rate-import.js");

/// `GET /static/rate-import.js`: progress for the rate import form.
#[handler]
pub fn rate_import_script() -> Response {
    RATE_IMPORT
        .with_header(header::CONTENT_TYPE, "text/javascript; charset=utf-8")
        .with_header(header::CACHE_CONTROL, "public, max-age=3600")
        .into_response()
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
        Some((_, content_type, bytes)) => bytes
            .to_vec()
            .with_header(
                header::CONTENT_TYPE,
                format!("{content_type}; charset=utf-8"),
            )
            .with_header(header::CACHE_CONTROL, "public, max-age=86400")
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
