//! Single sign-on for staff through an OpenID provider: the authorization
//! code flow with PKCE, the state checked against the browser and used
//! once, and the ID token's signature, issuer, audience, expiry and nonce
//! verified by the `openidconnect` crate. That crate is built on `oauth2`
//! and adds exactly what `oauth2` alone leaves to us: discovery, the
//! provider's keys and the checks of the ID token. A provider's user signs
//! in as the staff member or admin with the same verified email; nobody is
//! created.

use std::sync::Arc;
use std::time::{Duration, Instant};

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use poem::http::StatusCode;
use poem::web::{Data, Query, Redirect};
use poem::{handler, IntoResponse, Request, Response};
use serde::Deserialize;
use switchboard_core::config::SsoSettings;
use switchboard_core::db;
use switchboard_core::people::sign_in::{self, Purpose, SignInError};
use switchboard_core::people::{single_sign_on, users};

use crate::auth::{after_first_factor, safe_next};
use crate::layout::error_page;
use crate::pipeline::{append_cookie, client_address, cookie, set_cookie, sso_cookie};
use crate::{AppState, PageContext};

/// How long the provider's discovery document and keys are reused.
const METADATA_TTL: Duration = Duration::from_secs(600);

/// A configured provider, with its discovery document once read.
#[derive(Clone)]
pub struct Provider {
    settings: SsoSettings,
    redirect_url: String,
    http: openidconnect::reqwest::Client,
    metadata: Arc<tokio::sync::Mutex<Option<(Instant, CoreProviderMetadata)>>>,
}

impl Provider {
    /// The provider the settings name; `base_url` is where it sends people back.
    pub fn new(settings: &SsoSettings, base_url: &str) -> anyhow::Result<Provider> {
        let http = openidconnect::reqwest::ClientBuilder::new()
            // Following redirects would let a provider's answer send us anywhere.
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Provider {
            settings: settings.clone(),
            redirect_url: format!("{base_url}/sign-in/sso/callback"),
            http,
            metadata: Arc::default(),
        })
    }

    /// What the sign-in page's button says.
    pub fn label(&self) -> &str {
        &self.settings.label
    }

    async fn metadata(&self) -> anyhow::Result<CoreProviderMetadata> {
        let mut held = self.metadata.lock().await;
        if let Some((at, metadata)) = held.as_ref() {
            if at.elapsed() < METADATA_TTL {
                return Ok(metadata.clone());
            }
        }
        let issuer = IssuerUrl::new(self.settings.issuer_url.clone())?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| anyhow::anyhow!("discovery failed: {e}"))?;
        *held = Some((Instant::now(), metadata.clone()));
        Ok(metadata)
    }

    async fn client(
        &self,
    ) -> anyhow::Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
    > {
        let metadata = self.metadata().await?;
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            Some(ClientSecret::new(
                self.settings.client_secret.expose().to_owned(),
            )),
        )
        .set_redirect_uri(RedirectUrl::new(self.redirect_url.clone())?))
    }

    /// The email the provider vouches for, after every check of the ID token.
    async fn verified_email(
        &self,
        code: &str,
        pending: &single_sign_on::Pending,
    ) -> Result<String, String> {
        let client = self.client().await.map_err(|e| format!("{e:#}"))?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| format!("the provider has no token endpoint: {e}"))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| format!("the code was not exchanged: {e}"))?;
        let id_token = tokens.id_token().ok_or("the provider sent no ID token")?;
        let claims = id_token
            .claims(
                &client.id_token_verifier(),
                &Nonce::new(pending.nonce.clone()),
            )
            .map_err(|e| format!("the ID token was refused: {e}"))?;
        if claims.email_verified() != Some(true) {
            return Err("the provider has not verified the email".into());
        }
        claims
            .email()
            .map(|e| e.as_str().to_owned())
            .ok_or_else(|| "the ID token carries no email".into())
    }
}

#[derive(Deserialize)]
pub struct StartQuery {
    next: Option<String>,
}

/// `GET /sign-in/sso`: sends the browser to the provider, remembering the
/// state, nonce and PKCE verifier it must come back with.
#[handler]
pub async fn start(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(query): Query<StartQuery>,
) -> Response {
    let ctx = PageContext::of(req);
    let Some(provider) = &state.sso else {
        return error_page(
            &ctx,
            StatusCode::NOT_FOUND,
            "Single sign-on is not set up here.",
        );
    };
    let client = match provider.client().await {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(error = %format!("{error:#}"), "the OpenID provider is not answering");
            return error_page(
                &ctx,
                StatusCode::BAD_GATEWAY,
                "The sign-in provider is not answering; try again in a moment, or sign in with your password.",
            );
        }
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    let pending = single_sign_on::Pending {
        nonce: nonce.secret().clone(),
        pkce_verifier: verifier.secret().clone(),
        next: safe_next(query.next.as_deref()).map(str::to_owned),
        started_at: chrono::Utc::now(),
    };
    let remembered = match db::conn(&state.pool).await {
        Ok(mut conn) => single_sign_on::remember(&mut conn, csrf.secret(), &pending)
            .await
            .map_err(anyhow::Error::from),
        Err(error) => Err(error),
    };
    if let Err(error) = remembered {
        tracing::error!(%error, "could not remember a single sign-on");
        return error_page(
            &ctx,
            StatusCode::SERVICE_UNAVAILABLE,
            "Signing in is not possible right now; try again in a moment.",
        );
    }
    let https = state.settings.https();
    let mut response = Redirect::see_other(url.to_string()).into_response();
    let max_age = single_sign_on::LIFETIME_MINUTES * 60;
    append_cookie(
        &mut response,
        &set_cookie(&sso_cookie(https), csrf.secret(), https, Some(max_age)),
    );
    response
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /sign-in/sso/callback`: the provider sends the browser back here.
/// The attempt counts against the sign-in limits of the address; the state
/// must be the browser's and is used once.
#[handler]
pub async fn callback(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let ctx = PageContext::of(req);
    let Some(provider) = &state.sso else {
        return error_page(
            &ctx,
            StatusCode::NOT_FOUND,
            "Single sign-on is not set up here.",
        );
    };
    let ip = client_address(req, &state.settings.trusted_proxies);
    let refuse = |status: StatusCode, why: &str| {
        let mut response = error_page(
            &ctx,
            status,
            &format!("Signing in through the provider did not work: {why}. Start again from the sign-in page."),
        );
        let https = state.settings.https();
        append_cookie(
            &mut response,
            &set_cookie(&sso_cookie(https), "", https, Some(0)),
        );
        response
    };
    let attempt =
        match sign_in::begin(&state.pool, &format!("sso@{ip}"), &ip, state.sign_in_limits).await {
            Ok(attempt) => attempt,
            Err(throttled @ SignInError::Throttled { .. }) => {
                return refuse(StatusCode::TOO_MANY_REQUESTS, &throttled.to_string())
            }
            Err(error) => {
                tracing::error!(%error, "single sign-on could not be counted");
                return refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the database is not answering",
                );
            }
        };
    if let Some(error) = &query.error {
        tracing::info!(%error, "the OpenID provider refused a sign-in");
        return refuse(StatusCode::FORBIDDEN, "the provider did not sign you in");
    }
    let (Some(code), Some(returned_state)) = (&query.code, &query.state) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "the provider's answer is incomplete",
        );
    };
    let https = state.settings.https();
    // The state must be this browser's: another's, sent in a link, signs
    // nobody in here.
    if cookie(req, &sso_cookie(https)).as_deref() != Some(returned_state.as_str()) {
        return refuse(
            StatusCode::FORBIDDEN,
            "this browser did not start that sign-in",
        );
    }
    let pending = match db::conn(&state.pool).await {
        Ok(mut conn) => single_sign_on::take(&mut conn, returned_state).await,
        Err(error) => {
            tracing::error!(%error, "single sign-on without a database");
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "the database is not answering",
            );
        }
    };
    let pending = match pending {
        Ok(Some(pending)) => pending,
        Ok(None) => return refuse(StatusCode::FORBIDDEN, "it expired or was used already"),
        Err(error) => {
            tracing::error!(%error, "reading a single sign-on failed");
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "the database is not answering",
            );
        }
    };
    let email = match provider.verified_email(code, &pending).await {
        Ok(email) => email,
        Err(why) => {
            tracing::warn!(%why, %ip, "single sign-on refused");
            return refuse(
                StatusCode::FORBIDDEN,
                "the provider's answer could not be verified",
            );
        }
    };
    let user = match db::conn(&state.pool).await {
        Ok(mut conn) => users::company_user_by_email(&mut conn, &email).await,
        Err(error) => {
            tracing::error!(%error, "single sign-on without a database");
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "the database is not answering",
            );
        }
    };
    let user = match user {
        Ok(Some(user)) if !user.disabled => user,
        Ok(_) => {
            tracing::warn!(%email, %ip, "single sign-on for nobody on the staff");
            return refuse(StatusCode::FORBIDDEN, "no staff member has that email here");
        }
        Err(error) => {
            tracing::error!(%error, "finding a staff member failed");
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "the database is not answering",
            );
        }
    };
    if let Err(error) = attempt.succeed(&state.pool, Purpose::SignIn).await {
        tracing::error!(%error, "recording a single sign-on failed");
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "the database is not answering",
        );
    }
    let mut response = after_first_factor(
        state,
        req,
        &ctx,
        &user,
        pending.next.as_deref(),
        "single sign-on",
    )
    .await;
    append_cookie(
        &mut response,
        &set_cookie(&sso_cookie(https), "", https, Some(0)),
    );
    response
}
