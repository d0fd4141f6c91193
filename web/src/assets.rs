//! Files served as they are.

use poem::http::header;
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
