//! Single sign-on for staff against an OpenID provider stand-in on
//! loopback: discovery, a JWKS endpoint, the authorization endpoint that
//! checks PKCE's challenge method and the token endpoint that checks the
//! verifier and the client's secret, and ID tokens signed with a real RSA
//! key (RS256). The stand-in can sign with another key, for another
//! audience, or already expired.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine;
use openidconnect::core::{
    CoreIdToken, CoreIdTokenClaims, CoreJwsSigningAlgorithm, CoreRsaPrivateSigningKey,
};
use openidconnect::{
    Audience, EmptyAdditionalClaims, EndUserEmail, IssuerUrl, JsonWebKeyId, Nonce,
    PrivateSigningKey, StandardClaims, SubjectIdentifier,
};
use poem::http::StatusCode;
use poem::web::{Data, Form, Json, Query, Redirect};
use poem::{get, handler, post, EndpointExt, IntoResponse, Response, Route};
use serde::Deserialize;
use sha2::Digest;
use switchboard_core::config::{Secret, SsoSettings};
use switchboard_core::Role;

use crate::harness::TestApp;

const CLIENT_ID: &str = "switchboard-staff";
const CLIENT_SECRET: &str = "stand-in-client-secret";

/// What the stand-in does wrong, if anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    /// Signs with a key the JWKS does not hold (under the same key id).
    BadSignature,
    /// Issues the token for another client.
    WrongAudience,
    /// Issues a token that expired a minute ago.
    Expired,
}

/// One RSA key per run (making one takes a moment), PKCS#1 PEM.
fn pem(which: usize) -> &'static str {
    static KEYS: OnceLock<[String; 2]> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        let make = || {
            rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048)
                .expect("an RSA key")
                .to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
                .expect("PEM")
                .to_string()
        };
        [make(), make()]
    });
    &keys[which]
}

fn signing_key(which: usize) -> CoreRsaPrivateSigningKey {
    CoreRsaPrivateSigningKey::from_pem(pem(which), Some(JsonWebKeyId::new("stand-in-1".into())))
        .expect("a signing key")
}

/// What a code handed out stands for: the nonce, the PKCE challenge and
/// the email vouched for.
type Granted = (String, String, String);

#[derive(Clone)]
struct Provider {
    issuer: String,
    fault: Arc<Mutex<Fault>>,
    /// The email the next sign-in vouches for.
    email: Arc<Mutex<String>>,
    codes: Arc<Mutex<HashMap<String, Granted>>>,
}

impl Provider {
    async fn start() -> Provider {
        let (acceptor, address) =
            switchboard::server::bind("127.0.0.1:0".parse().expect("an address"))
                .await
                .expect("a port");
        let provider = Provider {
            issuer: format!("http://{address}"),
            fault: Arc::new(Mutex::new(Fault::None)),
            email: Arc::new(Mutex::new(String::new())),
            codes: Arc::default(),
        };
        let routes = Route::new()
            .at("/.well-known/openid-configuration", get(discovery))
            .at("/jwks", get(jwks))
            .at("/authorize", get(authorize))
            .at("/token", post(token))
            .data(provider.clone());
        tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(routes));
        provider
    }

    fn settings(&self) -> SsoSettings {
        SsoSettings {
            issuer_url: self.issuer.clone(),
            client_id: CLIENT_ID.into(),
            client_secret: Secret::new(CLIENT_SECRET),
            label: "Sign in with Example SSO".into(),
        }
    }

    fn vouch_for(&self, email: &str, fault: Fault) {
        *self.email.lock().expect("lock") = email.into();
        *self.fault.lock().expect("lock") = fault;
    }
}

#[handler]
fn discovery(Data(provider): Data<&Provider>) -> Json<serde_json::Value> {
    let base = &provider.issuer;
    Json(serde_json::json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "jwks_uri": format!("{base}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "code_challenge_methods_supported": ["S256"],
    }))
}

#[handler]
fn jwks() -> Json<serde_json::Value> {
    let key = signing_key(0).as_verification_key();
    Json(serde_json::json!({ "keys": [key] }))
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    response_type: String,
    client_id: String,
    redirect_uri: String,
    scope: String,
    state: String,
    nonce: String,
    code_challenge: String,
    code_challenge_method: String,
}

#[handler]
fn authorize(Data(provider): Data<&Provider>, Query(q): Query<AuthorizeQuery>) -> Response {
    if q.response_type != "code"
        || q.client_id != CLIENT_ID
        || q.code_challenge_method != "S256"
        || !q.scope.split(' ').any(|s| s == "openid")
    {
        return StatusCode::BAD_REQUEST.into_response();
    }
    let code = switchboard_core::keys::random_token();
    let email = provider.email.lock().expect("lock").clone();
    provider
        .codes
        .lock()
        .expect("lock")
        .insert(code.clone(), (q.nonce, q.code_challenge, email));
    let to = format!(
        "{}?{}",
        q.redirect_uri,
        serde_urlencoded::to_string([("code", code.as_str()), ("state", q.state.as_str())])
            .expect("a query")
    );
    Redirect::see_other(to).into_response()
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: String,
    code: String,
    code_verifier: String,
}

#[handler]
fn token(
    Data(provider): Data<&Provider>,
    req: &poem::Request,
    Form(form): Form<TokenForm>,
) -> Response {
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    if req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        != Some(basic.as_str())
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({ "error": "invalid_client" })),
        )
            .into_response();
    }
    let Some((nonce, challenge, email)) = provider.codes.lock().expect("lock").remove(&form.code)
    else {
        return (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({ "error": "invalid_grant" })),
        )
            .into_response();
    };
    let verified = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(form.code_verifier.as_bytes()));
    if form.grant_type != "authorization_code" || verified != challenge {
        return (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({ "error": "invalid_grant" })),
        )
            .into_response();
    }
    let fault = *provider.fault.lock().expect("lock");
    let now = chrono::Utc::now();
    let (issued, expires) = match fault {
        Fault::Expired => (
            now - chrono::Duration::minutes(10),
            now - chrono::Duration::minutes(1),
        ),
        _ => (now, now + chrono::Duration::minutes(5)),
    };
    let audience = if fault == Fault::WrongAudience {
        "someone-else"
    } else {
        CLIENT_ID
    };
    let claims = CoreIdTokenClaims::new(
        IssuerUrl::new(provider.issuer.clone()).expect("an issuer"),
        vec![Audience::new(audience.into())],
        expires,
        issued,
        StandardClaims::new(SubjectIdentifier::new(format!("sub-{email}")))
            .set_email(Some(EndUserEmail::new(email)))
            .set_email_verified(Some(true)),
        EmptyAdditionalClaims {},
    )
    .set_nonce(Some(Nonce::new(nonce)));
    let key = signing_key(if fault == Fault::BadSignature { 1 } else { 0 });
    let id_token = CoreIdToken::new(
        claims,
        &key,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        None,
        None,
    )
    .expect("a signed token");
    Json(serde_json::json!({
        "access_token": "stand-in-access-token",
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": id_token,
    }))
    .into_response()
}

/// Follows a sign-in through the provider as a browser does: our start,
/// the provider's authorization, back to our callback. Returns the
/// callback's answer and its address.
async fn through_the_provider(
    app: &TestApp,
    http: &reqwest::Client,
) -> (reqwest::Response, String) {
    let start = http
        .get(app.url("/sign-in/sso"))
        .send()
        .await
        .expect("start");
    assert_eq!(start.status(), 303, "{:?}", start.text().await);
    let to_provider = start.headers()["location"]
        .to_str()
        .expect("text")
        .to_owned();
    let back = http.get(&to_provider).send().await.expect("the provider");
    assert_eq!(back.status(), 303);
    let callback = back.headers()["location"]
        .to_str()
        .expect("text")
        .to_owned();
    assert!(
        callback.starts_with(&app.url("/sign-in/sso/callback?")),
        "{callback}"
    );
    let answer = http.get(&callback).send().await.expect("the callback");
    (answer, callback)
}

async fn app_with_provider() -> (TestApp, Provider) {
    let provider = Provider::start().await;
    let settings = provider.settings();
    let app = TestApp::spawn_with(move |s| s.sso = Some(settings)).await;
    (app, provider)
}

#[tokio::test(flavor = "multi_thread")]
async fn staff_sign_in_through_openid_connect() {
    let (app, provider) = app_with_provider().await;
    app.user("sam", Role::Staff, None).await;
    let http = TestApp::browser();
    let page = app.page(&http, "/sign-in").await;
    assert!(
        page.contains("Sign in with Example SSO"),
        "the sign-in page offers it"
    );
    provider.vouch_for("SAM@example.com", Fault::None);
    let (answer, callback) = through_the_provider(&app, &http).await;
    assert_eq!(answer.status(), 303, "{:?}", answer.text().await);
    assert_eq!(answer.headers()["location"], "/admin");
    assert!(app
        .page(&http, "/admin")
        .await
        .contains("Signed in as <strong>sam</strong>"));

    // The state is good once: the same answer again signs nobody in.
    let replay = TestApp::browser();
    let replayed = replay.get(&callback).send().await.expect("again");
    assert_eq!(replayed.status(), 403, "another browser");
    let again = http.get(&callback).send().await.expect("again");
    assert_eq!(again.status(), 403, "the same browser, the state used up");

    // A provider's user is never made a user here.
    provider.vouch_for("stranger@example.com", Fault::None);
    let (answer, _) = through_the_provider(&app, &TestApp::browser()).await;
    assert_eq!(answer.status(), 403);
    assert!(answer
        .text()
        .await
        .expect("text")
        .contains("no staff member has that email here"));
    let users: i64 = diesel_async::RunQueryDsl::get_result(
        diesel::QueryDsl::count(switchboard_core::schema::users::table),
        &mut app.conn().await,
    )
    .await
    .expect("a count");
    assert_eq!(users, 1);
    // Nor does it sign in a client with that email.
    let (_, client, _) = app.client("clientsso", 0).await;
    provider.vouch_for(&format!("{client}@example.com"), Fault::None);
    let (answer, _) = through_the_provider(&app, &TestApp::browser()).await;
    assert_eq!(answer.status(), 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn id_tokens_with_a_bad_signature_another_audience_or_expired_are_refused() {
    let (app, provider) = app_with_provider().await;
    app.user("sam", Role::Staff, None).await;
    for fault in [Fault::BadSignature, Fault::WrongAudience, Fault::Expired] {
        provider.vouch_for("sam@example.com", fault);
        let http = TestApp::browser();
        let (answer, _) = through_the_provider(&app, &http).await;
        assert_eq!(answer.status(), 403, "{fault:?}");
        assert!(
            answer
                .text()
                .await
                .expect("text")
                .contains("could not be verified"),
            "{fault:?}"
        );
        assert_eq!(
            http.get(app.url("/admin"))
                .send()
                .await
                .expect("GET")
                .status(),
            303,
            "{fault:?}: signed out"
        );
    }
    // A good one still works after them.
    provider.vouch_for("sam@example.com", Fault::None);
    let (answer, _) = through_the_provider(&app, &TestApp::browser()).await;
    assert_eq!(answer.status(), 303);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_callback_this_browser_did_not_start_is_refused() {
    let (app, provider) = app_with_provider().await;
    app.user("sam", Role::Staff, None).await;
    provider.vouch_for("sam@example.com", Fault::None);
    // The victim is sent the attacker's half-finished sign-in.
    let attacker = TestApp::browser();
    let start = attacker
        .get(app.url("/sign-in/sso"))
        .send()
        .await
        .expect("start");
    let at_provider = attacker
        .get(start.headers()["location"].to_str().expect("text"))
        .send()
        .await
        .expect("the provider");
    let callback = at_provider.headers()["location"]
        .to_str()
        .expect("text")
        .to_owned();
    let victim = TestApp::browser();
    let answer = victim.get(&callback).send().await.expect("the callback");
    assert_eq!(answer.status(), 403);
    assert!(answer
        .text()
        .await
        .expect("text")
        .contains("this browser did not start that sign-in"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_staff_member_with_two_factor_gives_the_code_after_the_provider() {
    let (app, provider) = app_with_provider().await;
    let (sam, _) = app.user("sam", Role::Staff, None).await;
    crate::authorization::turn_on_two_factor(&app, sam).await;
    provider.vouch_for("sam@example.com", Fault::None);
    let http = TestApp::browser();
    let (answer, _) = through_the_provider(&app, &http).await;
    assert_eq!(answer.status(), 303);
    assert_eq!(answer.headers()["location"], "/sign-in/code");
    assert_eq!(
        http.get(app.url("/admin"))
            .send()
            .await
            .expect("GET")
            .status(),
        303,
        "no session yet"
    );
}
