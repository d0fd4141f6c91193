//! The request pipeline: every request passes through `wrap`, which logs it,
//! finds its session, checks CSRF on anything that changes state, and adds
//! the security headers.

use std::sync::Arc;
use std::time::Instant;

use poem::http::{header, HeaderValue, Method, StatusCode};
use poem::{Endpoint, EndpointExt, IntoResponse, PathPattern, Request, Response};
use switchboard_core::keys::random_token;
use switchboard_core::people::sessions::{self, SessionUser};
use switchboard_core::{db, metrics, Role};
use switchboard_graphql::{SessionToken, Viewer};

use crate::AppState;

/// The session cookie. Over https it carries the `__Host-` prefix, so no
/// other host (a PBX's subdomain, say) can plant one.
pub fn session_cookie(https: bool) -> String {
    cookie_name("sb_session", https)
}

/// The cookie an anonymous visitor's CSRF tokens are bound to; a signed-in
/// visitor's tokens are bound to the session itself.
pub fn csrf_cookie(https: bool) -> String {
    cookie_name("sb_csrf", https)
}

/// The cookie that carries a sign-in waiting for its second factor.
pub fn challenge_cookie(https: bool) -> String {
    cookie_name("sb_second_factor", https)
}

/// The cookie that binds a single sign-on's state to the browser that
/// started it.
pub fn sso_cookie(https: bool) -> String {
    cookie_name("sb_sso", https)
}

fn cookie_name(name: &str, https: bool) -> String {
    if https {
        format!("__Host-{name}")
    } else {
        name.to_owned()
    }
}
/// The form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf";
/// The header that carries it for JSON requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// The largest body accepted from signed-in staff, who send whole price
/// lists and CDR files (100k rates are about 4 MiB).
pub const MAX_STAFF_BODY_BYTES: usize = 32 * 1024 * 1024;

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

    let ip = client_address(&req, &state.settings.trusted_proxies);
    req.extensions_mut().insert(ClientAddress(ip.clone()));
    let session_token = cookie(&req, &session_cookie(https));
    let mut new_csrf_seed = None;
    let anonymous_seed = match cookie(&req, &csrf_cookie(https)).filter(|s| s.len() == 64) {
        Some(seed) => seed,
        None => {
            let seed = random_token();
            new_csrf_seed = Some(seed.clone());
            seed
        }
    };

    let work = Arc::new(metrics::Work::default());
    let mut response = metrics::tallying(work.clone(), async {
        // A read (which passes without a CSRF token, so changes nothing)
        // gets the viewer's account with the session, in one statement.
        let reads = matches!(*req.method(), Method::GET | Method::HEAD);
        match find_viewer(state, session_token.as_deref(), &ip, reads).await {
            Err(error) => {
                tracing::error!(%error, "looking up the session failed");
                simple_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The database is not answering; try again in a moment.",
                )
            }
            Ok(ref viewer) if !read_body(&mut req, body_limit(viewer)).await => simple_page(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The request is larger than Switchboard accepts.",
            ),
            Ok(viewer) => {
                let session_token = session_token.filter(|_| viewer.user.is_some());
                let csrf_seed = session_token
                    .as_deref()
                    .unwrap_or(&anonymous_seed)
                    .to_owned();
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
                            Err(error) => {
                                let route = error.data::<PathPattern>().cloned();
                                let mut response = error.into_response();
                                if let Some(route) = route {
                                    response.set_data(route);
                                }
                                response
                            }
                        }
                    }
                }
            }
        }
    })
    .await;

    if let Some(seed) = new_csrf_seed {
        if !response.headers().contains_key(header::SET_COOKIE) {
            append_cookie(
                &mut response,
                &set_cookie(&csrf_cookie(https), &seed, https, None),
            );
        }
    }
    add_security_headers(&mut response, https);
    let took = started.elapsed();
    // By the route's pattern (`/orders/:id`), so the series stay few.
    let route = response.data::<PathPattern>().map(|p| p.0.clone());
    let route = route.as_deref().unwrap_or("unmatched");
    metrics::global().request(route, method.as_str(), response.status().as_u16(), took);
    metrics::global().work(route, took, &work);
    tracing::info!(
        target: "switchboard::request",
        "{method} {path} {} {}ms",
        response.status().as_u16(),
        took.as_millis()
    );
    response
}

/// How large a body `viewer` may send: the session is known before the
/// body is read, so only staff get the larger allowance.
fn body_limit(viewer: &Viewer) -> usize {
    match viewer.user.as_ref().map(|u| u.role) {
        Some(Role::Staff | Role::Admin) => MAX_STAFF_BODY_BYTES,
        _ => MAX_BODY_BYTES,
    }
}

/// Reads the body into memory, refusing more than `limit` bytes; returns
/// false when it was too large or could not be read.
async fn read_body(req: &mut Request, limit: usize) -> bool {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return true;
    }
    match req.take_body().into_bytes_limit(limit).await {
        Ok(body) => {
            req.set_body(body);
            true
        }
        Err(_) => false,
    }
}

async fn find_viewer(
    state: &AppState,
    token: Option<&str>,
    ip: &str,
    with_account: bool,
) -> anyhow::Result<Viewer> {
    let Some(token) = token else {
        return Ok(Viewer {
            user: None,
            ip: ip.to_owned(),
        });
    };
    let mut conn = db::conn(&state.pool).await?;
    let user = sessions::lookup(&mut conn, token, state.session_max_age(), with_account).await?;
    drop(conn);
    if user.is_some() && state.session_activity.used(token) {
        extend_sessions_soon(state);
    }
    Ok(Viewer {
        user,
        ip: ip.to_owned(),
    })
}

/// Extends the sessions used on this instance a minute from now: a read
/// writes nothing, and a busy minute costs one write. (Sessions last hours,
/// so a minute's use forgotten by an instance that stops is harmless.)
fn extend_sessions_soon(state: &AppState) {
    let state = state.clone();
    tokio::spawn(async move {
        tokio::time::sleep(sessions::EXTEND_AFTER).await;
        if let Err(error) = extend_sessions_in_use(&state).await {
            tracing::warn!(error = %format!("{error:#}"), "could not extend the sessions in use");
        }
    });
}

/// Extends, by the session lifetime from now, every session used on this
/// instance since the last time; returns how many were extended.
pub async fn extend_sessions_in_use(state: &AppState) -> anyhow::Result<usize> {
    let used = state.session_activity.take();
    if used.is_empty() {
        return Ok(0);
    }
    let mut conn = db::conn(&state.pool).await?;
    Ok(sessions::extend(&mut conn, &used, state.session_lifetime()).await?)
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

/// The client's address, as `wrap` worked it out.
#[derive(Clone, Debug)]
pub struct ClientAddress(pub String);

/// The client's address: the socket's peer, or, when the peer is a trusted
/// proxy, the nearest address in `X-Forwarded-For` that is not one.
pub fn client_address(req: &Request, trusted_proxies: &[std::net::IpAddr]) -> String {
    if let Some(ClientAddress(address)) = req.extensions().get::<ClientAddress>() {
        return address.clone();
    }
    let Some(peer) = req.remote_addr().as_socket_addr().map(|a| a.ip()) else {
        return String::new();
    };
    if !trusted_proxies.contains(&peer) {
        return peer.to_string();
    }
    let forwarded: Vec<std::net::IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|a| !trusted_proxies.contains(a))
        .unwrap_or(peer)
        .to_string()
}

/// One cookie's value from the `Cookie` header. A name sent twice is
/// ambiguous (one may have been planted for a narrower path) and reads as
/// absent.
pub fn cookie(req: &Request, name: &str) -> Option<String> {
    let mut found = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned());
    let first = found.next();
    match found.next() {
        Some(_) => None,
        None => first,
    }
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

fn add_security_headers(response: &mut Response, https: bool) {
    let headers = response.headers_mut();
    if https {
        // Served over https: browsers should never try plain http again.
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
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
