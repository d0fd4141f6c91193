//! The test harness: one real PostgreSQL per test run (started through the
//! same code path as zero-config serving), a template database migrated once,
//! and for each test its own database copied from the template and its own
//! server on a free port.

use std::process::ChildStdin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use diesel_async::{AsyncConnection, AsyncPgConnection};
use switchboard_controller::simulator::Simulator;
use switchboard_controller::Controller;
use switchboard_core::cluster::Cluster;
use switchboard_core::config::{Overrides, Settings};
use switchboard_core::db::{self, Pool};
use switchboard_core::domain::Email;
use switchboard_core::keys::SecretKey;
use switchboard_core::money::ledger;
use switchboard_core::people::accounts::{self, NewAccount};
use switchboard_core::people::sessions::SessionUser;
use switchboard_core::people::users::{self, NewUser};
use switchboard_core::{AccountId, AccountKind, Money, Role, UserId, Username};
use switchboard_jobs::JobContext;
use switchboard_web::AppState;

const TEMPLATE: &str = "switchboard_template";

struct TestCluster {
    cluster: Cluster,
    // Dropping this (at process exit) stops the cluster.
    _watchdog: Mutex<ChildStdin>,
}

fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<TestCluster> = OnceLock::new();
    &CLUSTER
        .get_or_init(|| {
            remove_folders_of_finished_runs();
            let dir = std::env::temp_dir().join(format!("switchboard-test-{}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("creating the test cluster's folder");
            let cluster = Cluster::new(&dir).unwrap_or_else(|e| panic!("{e:#}"));
            cluster.start().unwrap_or_else(|e| panic!("{e:#}"));
            let watchdog = cluster
                .stop_when_this_process_exits()
                .expect("starting the cluster's watchdog");
            TestCluster {
                cluster,
                _watchdog: Mutex::new(watchdog),
            }
        })
        .cluster
}

/// Earlier runs' folders, whose process is gone, are removed.
fn remove_folders_of_finished_runs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix("switchboard-test-")
            .or_else(|| name.strip_prefix("switchboard-mariadb-"));
        if let Some(pid) = pid {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// The migrated template, made once per run.
async fn template() -> &'static str {
    static TEMPLATE_READY: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    TEMPLATE_READY
        .get_or_init(|| async {
            let cluster = cluster();
            db::create_database(&cluster.database_url("postgres"), TEMPLATE, None)
                .await
                .expect("creating the template database");
            db::migrate(&cluster.database_url(TEMPLATE))
                .await
                .expect("migrating the template database");
        })
        .await;
    TEMPLATE
}

/// A fresh database copied from the template; returns its URL.
pub async fn fresh_database() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let template = template().await;
    let name = format!("test_{}", COUNTER.fetch_add(1, Ordering::SeqCst));
    let cluster = cluster();
    db::create_database(&cluster.database_url("postgres"), &name, Some(template))
        .await
        .expect("copying the template database");
    cluster.database_url(&name)
}

/// A new database with nothing in it (no schema): what a restore fills.
pub async fn empty_database() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let name = format!("empty_{}", COUNTER.fetch_add(1, Ordering::SeqCst));
    let cluster = cluster();
    db::create_database(&cluster.database_url("postgres"), &name, None)
        .await
        .expect("creating an empty database");
    cluster.database_url(&name)
}

/// A server under test with its own database and its own PBX simulator.
pub struct TestApp {
    pub base_url: String,
    pub pool: Pool,
    pub db_url: String,
    pub state: AppState,
    pub simulator: Simulator,
    /// What the job runner uses: the same key and settings as the server.
    pub jobs: JobContext,
}

/// A listener on a free loopback port, and its address.
async fn free_port() -> (impl poem::listener::Acceptor, std::net::SocketAddr) {
    switchboard::server::bind("127.0.0.1:0".parse().expect("an address"))
        .await
        .expect("binding a free port")
}

/// Settings as a test server uses them.
pub fn test_settings(base_url: &str) -> Settings {
    let mut settings = Settings::load(None, &Overrides::default()).expect("default settings");
    settings.base_url = base_url.to_owned();
    settings.pool_size = 8;
    settings
}

impl TestApp {
    /// Starts a server on a free port over a fresh database.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// The same, letting the test change the settings first.
    pub async fn spawn_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
        let db_url = fresh_database().await;
        let simulator = Simulator::new().with_hang(std::time::Duration::from_secs(30));
        let (sim_acceptor, sim_address) = free_port().await;
        tokio::spawn(switchboard_controller::simulator::serve(
            sim_acceptor,
            simulator.clone(),
        ));
        let mut settings = test_settings("http://127.0.0.1");
        settings.controller.base_url = Some(format!("http://{sim_address}"));
        settings.controller.timeout_seconds = 2;
        let (acceptor, address) = free_port().await;
        settings.base_url = format!("http://{address}");
        configure(&mut settings);
        Self::serve(acceptor, db_url, SecretKey::generate(), settings, simulator)
    }

    /// Another instance beside this one, as a load balancer has them: its
    /// own server, pool and job runner over the same database, with the same
    /// key, settings and controller.
    pub async fn spawn_beside(&self) -> TestApp {
        let (acceptor, _) = free_port().await;
        Self::serve(
            acceptor,
            self.db_url.clone(),
            self.jobs.key.clone(),
            (*self.jobs.settings).clone(),
            self.simulator.clone(),
        )
    }

    fn serve(
        acceptor: impl poem::listener::Acceptor + 'static,
        db_url: String,
        key: SecretKey,
        settings: Settings,
        simulator: Simulator,
    ) -> TestApp {
        let address = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .expect("a bound address");
        let base_url = format!("http://{address}");
        let pool = db::pool(&db_url, 8).expect("building the pool");
        let controller_url = settings.controller.base_url.clone().unwrap_or_default();
        let state = AppState::new(pool.clone(), key.clone(), settings.clone())
            .expect("the application state");
        state.follow_catalogue_changes(&db_url);
        let gateway =
            switchboard_payments::Gateway::from_settings(&settings).expect("the payment gateway");
        let jobs = JobContext {
            key,
            controller: Controller::new(&settings.controller, &controller_url)
                .expect("a controller client"),
            settings: std::sync::Arc::new(settings),
            rate_tables: state.rate_tables.clone(),
            database_url: db_url.clone(),
            pg_bin_dir: switchboard_core::cluster::find_server_binaries()
                .expect("PostgreSQL's programs"),
            gateway,
            clock: switchboard_core::clock::Clock::system(),
        };
        let serving = state.clone();
        tokio::spawn(async move {
            let _ = switchboard::server::serve(acceptor, serving, std::future::pending()).await;
        });
        TestApp {
            base_url,
            pool,
            db_url,
            state,
            simulator,
            jobs,
        }
    }

    /// Runs the job runner and the outbox in the background, delivering
    /// email to `smtp_port` on loopback, as a serving instance does; they
    /// run until the returned handle is stopped or the test ends.
    pub fn start_workers(&self, smtp_port: u16) -> switchboard_jobs::Workers {
        let mut settings = (*self.jobs.settings).clone();
        settings.email.smtp = Some(switchboard_core::config::SmtpSettings {
            host: "127.0.0.1".into(),
            port: Some(smtp_port),
            security: switchboard_core::config::SmtpSecurity::None,
            username: None,
            password: None,
            timeout_seconds: 5,
        });
        let mailer = switchboard_jobs::Mailer::from_settings(&settings, self.jobs.key.clone())
            .expect("a mailer");
        switchboard_jobs::spawn_workers(self.pool.clone(), self.jobs.clone(), mailer)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub async fn conn(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.db_url)
            .await
            .expect("connecting to the test database")
    }

    /// An account of `kind` with `balance` already paid in.
    pub async fn account(
        &self,
        name: &str,
        kind: AccountKind,
        parent: Option<AccountId>,
        balance: i64,
    ) -> AccountId {
        let mut conn = self.conn().await;
        let id = accounts::create(
            &mut conn,
            &NewAccount {
                name: name.into(),
                kind,
                parent,
                currency: "USD".into(),
                contact_name: format!("{name} owner"),
                company: name.into(),
                email: format!("{}@example.com", name.to_lowercase().replace(' ', ".")),
                phone: String::new(),
                address: String::new(),
            },
        )
        .await
        .expect("creating an account");
        if balance != 0 {
            ledger::adjust(
                &mut conn,
                id,
                Money(balance),
                "opening balance",
                &format!("test:open:{}", id.0),
                None,
            )
            .await
            .expect("opening balance");
        }
        id
    }

    /// A PBX of `account` on `plan`, written directly in `state`
    /// (`active`, `failed`, …) with `request_id`; returns its id.
    pub async fn pbx(&self, account: AccountId, plan: i64, state: &str, request_id: &str) -> i64 {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use switchboard_core::schema::pbxes;
        diesel::insert_into(pbxes::table)
            .values((
                pbxes::account_id.eq(account.0),
                pbxes::plan_id.eq(plan),
                pbxes::request_id.eq(request_id),
                pbxes::gui_password_sealed.eq("v1:x"),
                pbxes::state.eq(state),
            ))
            .returning(pbxes::id)
            .get_result(&mut self.conn().await)
            .await
            .expect("a PBX")
    }

    /// Has `plan`'s PBXs' calls priced by `calling_plan`.
    pub async fn bill_with(&self, plan: i64, calling_plan: i64) {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use switchboard_core::schema::plans;
        diesel::update(plans::table.find(plan))
            .set(plans::calling_plan_id.eq(calling_plan))
            .execute(&mut self.conn().await)
            .await
            .expect("billed by it");
    }

    /// A user who can sign in; returns their id and password.
    pub async fn user(
        &self,
        username: &str,
        role: Role,
        account: Option<AccountId>,
    ) -> (UserId, String) {
        let password = format!("{username}-password-123");
        let mut conn = self.conn().await;
        let id = users::create(
            &mut conn,
            &NewUser {
                username: Username::parse(username).expect("username"),
                email: Email::parse(&format!("{username}@example.com")).expect("email"),
                password: password.clone(),
                role,
                account,
                must_change_password: false,
            },
        )
        .await
        .expect("creating a user");
        (id, password)
    }

    /// A retail client with a balance: (account, username, password).
    pub async fn client(&self, username: &str, balance: i64) -> (AccountId, String, String) {
        let account = self
            .account(
                &format!("{username} Co"),
                AccountKind::Retail,
                None,
                balance,
            )
            .await;
        let (_, password) = self.user(username, Role::Client, Some(account)).await;
        (account, username.to_owned(), password)
    }

    /// A browser-like HTTP client with its own cookie jar, not following redirects.
    pub fn browser() -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("building an HTTP client")
    }

    /// A page's text, fetched with `http` (its cookies).
    pub async fn page(&self, http: &reqwest::Client, path: &str) -> String {
        http.get(self.url(path))
            .send()
            .await
            .expect("GET")
            .text()
            .await
            .expect("body")
    }

    /// The CSRF token a page's forms carry.
    pub async fn csrf_token(&self, http: &reqwest::Client, path: &str) -> String {
        let page = self.page(http, path).await;
        csrf_in(&page).expect("the page has a form with a CSRF token")
    }

    /// Signs in through the form; returns the response to the POST.
    pub async fn sign_in(
        &self,
        http: &reqwest::Client,
        username: &str,
        password: &str,
    ) -> reqwest::Response {
        let token = self.csrf_token(http, "/sign-in").await;
        http.post(self.url("/sign-in"))
            .form(&[
                ("csrf", token.as_str()),
                ("username", username),
                ("password", password),
            ])
            .send()
            .await
            .expect("POST /sign-in")
    }

    /// Signs in again from a browser that is already signed in.
    pub async fn sign_in_again(
        &self,
        http: &reqwest::Client,
        username: &str,
        password: &str,
    ) -> reqwest::Response {
        let token = self.csrf_token(http, "/graphql/console").await;
        http.post(self.url("/sign-in"))
            .form(&[
                ("csrf", token.as_str()),
                ("username", username),
                ("password", password),
            ])
            .send()
            .await
            .expect("POST /sign-in")
    }

    /// The value a response sets for a cookie.
    pub fn set_cookie_value(response: &reqwest::Response, name: &str) -> Option<String> {
        response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(|c| {
                c[name.len() + 1..]
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .to_owned()
            })
    }

    /// A signed-in HTTP client.
    pub async fn signed_in(&self, username: &str, password: &str) -> reqwest::Client {
        let http = Self::browser();
        let response = self.sign_in(&http, username, password).await;
        assert_eq!(response.status(), 303, "signing in {username} failed");
        http
    }

    /// Runs an operation at `POST /graphql` as a signed-in browser would.
    pub async fn graphql(
        &self,
        http: &reqwest::Client,
        query: &str,
        variables: serde_json::Value,
    ) -> serde_json::Value {
        let token = self.csrf_token(http, "/graphql/console").await;
        http.post(self.url("/graphql"))
            .header("x-csrf-token", token)
            .json(&serde_json::json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("POST /graphql")
            .json()
            .await
            .expect("a JSON answer")
    }

    /// The session user for in-process schema calls.
    pub async fn session_user(&self, id: UserId) -> SessionUser {
        let mut conn = self.conn().await;
        let user = users::get(&mut conn, id)
            .await
            .expect("query")
            .expect("user exists");
        SessionUser {
            user_id: id,
            username: user.username.clone(),
            role: user.role(),
            account_id: user.account(),
            must_change_password: user.must_change_password,
            two_factor: user.totp_enabled,
            account: None,
        }
    }
}

/// Posts a form the way its page does: with the CSRF token of `page`.
pub async fn post_form(
    app: &TestApp,
    http: &reqwest::Client,
    page: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let token = app.csrf_token(http, page).await;
    let mut form: Vec<(&str, &str)> = vec![("csrf", token.as_str())];
    form.extend_from_slice(fields);
    http.post(app.url(action))
        .form(&form)
        .send()
        .await
        .expect("POST")
}

/// The value of the first `csrf` hidden field in a page.
pub fn csrf_in(page: &str) -> Option<String> {
    let start = page.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    let end = page[start..].find('"')?;
    Some(page[start..start + end].to_owned())
}
