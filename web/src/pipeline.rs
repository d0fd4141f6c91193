//! The request pipeline: every request passes through `wrap`, which logs it,
//! finds its session, checks CSRF on anything that changes state, and adds
//! the security headers.

use std::sync::Arc;
use std::time::Instant;

use poem::http::{header, HeaderValue, Method, StatusCode};
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response};
use switchboard_core::keys::random_token;
use switchboard_core::sessions::{self, SessionUser};
use switchboard_core::{db, Role};
use switchboard_graphql::{SessionToken, Viewer};

use crate::AppState;

/// The session cookie.
pub const SESSION_COOKIE: &str = "sb_session";
/// The cookie CSRF tokens are bound to, for signed-in and anonymous visitors alike.
pub const CSRF_COOKIE: &str = "sb_csrf";
/// The form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf";
/// The header that carries it for JSON requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The policy of every page but GraphiQL's (see `api::graphiql`).
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// What a handler knows about the request it serves.
#[derive(Clone, Debug)]
pub struct PageContext {
    pub viewer: Viewer,
    /// The token forms must carry back.
    pub csrf_token: String,
    /// The session cookie's token, when signed in.
    pub session_token: Option<String>,
    pub path: String,
}

impl PageContext {
    /// The context `wrap` put on the request.
    pub fn of(req: &Request) -> PageContext {
        req.extensions()
            .get::<PageContext>()
            .cloned()
            .unwrap_or_else(|| PageContext {
                viewer: Viewer::anonymous(),
                csrf_token: String::new(),
                session_token: None,
                path: req.uri().path().to_owned(),
            })
    }

    pub fn user(&self) -> Option<&SessionUser> {
        self.viewer.user.as_ref()
    }

    pub fn role(&self) -> Option<Role> {
        self.viewer.role()
    }
}

/// Wraps the routes in the pipeline.
pub fn wrap(routes: impl Endpoint + 'static, state: AppState) -> impl Endpoint {
    let state = Arc::new(state);
    routes.data((*state).clone()).around(move |endpoint, req| {
        let state = state.clone();
        async move { Ok(handle(&state, endpoint.as_ref(), req).await) }
    })
}

async fn handle<E: Endpoint + ?Sized>(
    state: &AppState,
    endpoint: &E,
    mut req: Request,
) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let https = state.settings.https();

    let ip = client_address(&req);
    let session_token = cookie(&req, SESSION_COOKIE);
    let mut new_csrf_seed = None;
    let csrf_seed = match cookie(&req, CSRF_COOKIE).filter(|s| s.len() == 64) {
        Some(seed) => seed,
        None => {
            let seed = random_token();
            new_csrf_seed = Some(seed.clone());
            seed
        }
    };

    let mut response = match find_viewer(state, session_token.as_deref(), &ip).await {
        Err(error) => {
            tracing::error!(%error, "looking up the session failed");
            simple_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The database is not answering; try again in a moment.",
            )
        }
        Ok(viewer) => {
            let session_token = session_token.filter(|_| viewer.user.is_some());
            match check_csrf(state, &mut req, &csrf_seed, session_token.is_some()).await {
                Err(response) => response,
                Ok(()) => {
                    if let Some(token) = &session_token {
                        req.extensions_mut().insert(SessionToken(token.clone()));
                    }
                    req.extensions_mut().insert(PageContext {
                        viewer,
                        csrf_token: state.key.sign("csrf", csrf_seed.as_bytes()),
                        session_token,
                        path: path.clone(),
                    });
                    match endpoint.call(req).await {
                        Ok(response) => response.into_response(),
                        Err(error) => error.into_response(),
                    }
                }
            }
        }
    };

    if let Some(seed) = new_csrf_seed {
        if !response.headers().contains_key(header::SET_COOKIE) {
            append_cookie(&mut response, &set_cookie(CSRF_COOKIE, &seed, https, None));
        }
    }
    add_security_headers(&mut response);
    tracing::info!(
        target: "switchboard::request",
        "{method} {path} {} {}ms",
        response.status().as_u16(),
        started.elapsed().as_millis()
    );
    response
}

async fn find_viewer(state: &AppState, token: Option<&str>, ip: &str) -> anyhow::Result<Viewer> {
    let Some(token) = token else {
        return Ok(Viewer {
            user: None,
            ip: ip.to_owned(),
        });
    };
    let mut conn = db::conn(&state.pool).await?;
    let user = sessions::lookup(&mut conn, token, state.session_lifetime()).await?;
    Ok(Viewer {
        user,
        ip: ip.to_owned(),
    })
}

/// Refuses a state-changing request that does not carry the CSRF token bound
/// to this browser. JSON requests without cookies carry no ambient authority
/// and pass.
async fn check_csrf(
    state: &AppState,
    req: &mut Request,
    seed: &str,
    signed_in: bool,
) -> Result<(), Response> {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let is_form = content_type.starts_with("application/x-www-form-urlencoded");
    let mut token = req
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if token.is_none() && is_form {
        let body = req
            .take_body()
            .into_bytes()
            .await
            .map_err(|_| simple_page(StatusCode::BAD_REQUEST, "The form could not be read."))?;
        token = form_field(&body, CSRF_FIELD);
        req.set_body(body);
    }
    let has_cookies = req.headers().contains_key(header::COOKIE);
    match token {
        Some(token) if state.key.verify("csrf", seed.as_bytes(), &token) => Ok(()),
        None if !is_form && !signed_in && !has_cookies => Ok(()),
        _ => Err(simple_page(
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from this site. Go back, reload the page and try again.",
        )),
    }
}

fn form_field(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// The client's address as the socket reports it.
pub fn client_address(req: &Request) -> String {
    req.remote_addr()
        .as_socket_addr()
        .map(|addr| addr.ip().to_string())
        .unwrap_or_default()
}

/// One cookie's value from the `Cookie` header.
pub fn cookie(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Lax`, `Secure` over https.
/// `max_age` of `Some(0)` deletes the cookie.
pub fn set_cookie(name: &str, value: &str, secure: bool, max_age: Option<i64>) -> String {
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if secure {
        cookie.push_str("; Secure");
    }
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    cookie
}

/// Adds a `Set-Cookie` header to a response.
pub fn append_cookie(response: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

fn add_security_headers(response: &mut Response) {
    let headers = response.headers_mut();
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    let fixed = [
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// A bare page for failures that happen before any handler runs.
pub fn simple_page(status: StatusCode, message: &str) -> Response {
    crate::layout::message_page(status, "Switchboard", message)
}
