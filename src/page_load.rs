//! `switchboard bench --pages`: how many requests a second the busiest
//! pages answer with many visitors at once, and how long the slowest wait,
//! beside `/healthz` (the server's floor: no database, nothing rendered)
//! measured in the same run, so the shares hold on a noisy machine.
//!
//! The server runs as `serve` does, in a runtime of its own with one worker
//! thread per core, on loopback, with its database pool of `serve`'s size.
//! The visitors run in this process's runtime: each keeps one connection
//! open and sends its next request when the last is answered (as `wrk`
//! does), with as little work of its own as it can. The panel pages are
//! asked as a signed-in client whose PBX has two months of calls; the
//! public ones anonymously.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use http_body_util::BodyExt;
use switchboard_controller::traffic;
use switchboard_core::config::Settings;
use switchboard_core::domain::Email;
use switchboard_core::keys::SecretKey;
use switchboard_core::people::accounts::{self, NewAccount};
use switchboard_core::people::sessions;
use switchboard_core::people::users::{self, NewUser};
use switchboard_core::{calls, calls::calling_plans, db, metrics, AccountKind, Role, Username};
use switchboard_web::pipeline::session_cookie;
use switchboard_web::AppState;

/// The routes measured, and whether they are asked signed in.
const ROUTES: [(&str, bool); 5] = [
    ("/healthz", false),
    ("/", false),
    ("/plans", false),
    ("/portal", true),
    ("/portal/reports?month=last", true),
];

/// How a run is shaped.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Visitors at once, each on its own connection.
    pub connections: usize,
    /// How long each route is measured, after a second of warming up.
    pub seconds: u64,
}

/// Runs the measurement against the database at `url` (which it fills
/// first, when given `fill`, to that many CDRs over that many months back)
/// and prints it.
pub async fn run(
    url: &str,
    settings: Settings,
    shape: Shape,
    fill: Option<(i64, u32)>,
) -> anyhow::Result<()> {
    let pool = db::pool(url, settings.pool_size)?;
    if let Some((target, months)) = fill {
        crate::bench::fill_with_sql(&pool, target, months).await?;
    }
    let key = SecretKey::generate();
    println!("Preparing a client whose PBX has two months of calls, on a rated plan …");
    let cookie = client_with_calls(&pool, settings.https()).await?;
    let state = AppState::new(pool.clone(), key, settings)?;
    state.follow_catalogue_changes(url);

    let server = crate::server::InThread::start(state).await?;
    let base = server.base_url.clone();

    println!(
        "{} connections at once, {} s per route after 1 s of warming up:",
        shape.connections, shape.seconds
    );
    println!(
        "{:<28} {:>10} {:>9} {:>9} {:>9} {:>8}",
        "route", "requests/s", "p50 ms", "p99 ms", "max ms", "/healthz"
    );
    let mut floor = None;
    let mut breakdowns = Vec::new();
    for (route, signed_in) in ROUTES {
        let cookie = signed_in.then(|| cookie.clone());
        let pattern = route.split('?').next().unwrap_or(route);
        let before = metrics::global().work_of(pattern);
        let load = measure(&base, route, cookie, shape).await?;
        breakdowns.push((route, metrics::global().work_of(pattern).since(&before)));
        let rate = load.rate();
        let floor = *floor.get_or_insert(rate);
        println!(
            "{route:<28} {rate:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>8.2}",
            load.at(0.5),
            load.at(0.99),
            load.at(1.0),
            rate / floor
        );
    }
    println!("Where a request's time went, on average over the same run (server side):");
    println!(
        "{:<28} {:>10} {:>11} {:>9} {:>12} {:>10}",
        "route", "total ms", "statements", "db ms", "graphql ms", "other ms"
    );
    for (route, work) in breakdowns {
        let per = |x: f64| x / work.requests.max(1) as f64;
        println!(
            "{route:<28} {:>10.2} {:>11.1} {:>9.2} {:>12.2} {:>10.2}",
            per(work.seconds) * 1000.0,
            per(work.statements as f64),
            per(work.database_seconds) * 1000.0,
            per(work.graphql_seconds) * 1000.0,
            per(work.seconds - work.graphql_seconds) * 1000.0,
        );
    }
    println!(
        "(db: waiting for the database's answers, wherever sent; graphql: running the page's \
         operation, its statements included; other: the rest — the session, rendering, the pipeline)"
    );
    server.stop()?;
    Ok(())
}

/// What one route's visitors saw.
struct Load {
    took: Vec<Duration>,
    over: Duration,
}

impl Load {
    fn rate(&self) -> f64 {
        self.took.len() as f64 / self.over.as_secs_f64()
    }

    /// The latency at quantile `q`, in milliseconds.
    fn at(&self, q: f64) -> f64 {
        let n = self.took.len();
        let index = ((n as f64 * q) as usize).min(n.saturating_sub(1));
        self.took
            .get(index)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    }
}

/// Asks `route` from `shape.connections` visitors at once for a second
/// (not counted) and then `shape.seconds`; a request that does not answer
/// 200 stops the run, since its time would not be the page's.
///
/// Each visitor is one HTTP/1.1 connection of hyper's, sending the request
/// as it is, since these visitors share the server's two cores: a general
/// client such as reqwest parses the URL and looks for proxies and cookies
/// on every request (several hundredths of the machine in a profile of a
/// run).
async fn measure(
    base: &str,
    route: &str,
    cookie: Option<String>,
    shape: Shape,
) -> anyhow::Result<Load> {
    let host = base
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("the server is not on plain HTTP: {base}"))?
        .trim_end_matches('/')
        .to_owned();
    let counting = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut visitors = Vec::new();
    for _ in 0..shape.connections {
        let stream = tokio::net::TcpStream::connect(&host).await?;
        stream.set_nodelay(true)?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let (host, route, cookie) = (host.clone(), route.to_owned(), cookie.clone());
        let (counting, stop) = (counting.clone(), stop.clone());
        visitors.push(tokio::spawn(async move {
            let mut took = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let mut request = hyper::Request::get(route.as_str()).header("host", &host);
                if let Some(cookie) = &cookie {
                    request = request.header("cookie", cookie);
                }
                let request = request.body(http_body_util::Empty::<bytes::Bytes>::new())?;
                let started = Instant::now();
                // The connection takes the next request once it has finished
                // with the last answer.
                let response = tokio::time::timeout(Duration::from_secs(30), async {
                    sender.ready().await?;
                    sender.send_request(request).await
                })
                .await??;
                let status = response.status();
                response.into_body().collect().await?;
                let elapsed = started.elapsed();
                anyhow::ensure!(status == 200, "{route} answered {status}");
                if counting.load(Ordering::Relaxed) {
                    took.push(elapsed);
                }
            }
            anyhow::Ok(took)
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    counting.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(shape.seconds)).await;
    counting.store(false, Ordering::Relaxed);
    let over = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut took = Vec::new();
    for visitor in visitors {
        took.extend(visitor.await??);
    }
    took.sort();
    Ok(Load { took, over })
}

/// A client account on a rated plan with a PBX holding two months of
/// synthetic calls, signed in: its session cookie.
async fn client_with_calls(pool: &db::Pool, https: bool) -> anyhow::Result<String> {
    use diesel_async::RunQueryDsl;
    let mut conn = db::conn(pool).await?;
    let tag = Utc::now().timestamp_micros();
    crate::bench::sold_plan(
        &mut conn,
        &format!("pages-{tag}"),
        &format!("Pages {tag}"),
        crate::bench::RATES,
        None,
    )
    .await?;
    let account = accounts::create(
        &mut conn,
        &NewAccount {
            name: format!("Pages {tag}"),
            kind: AccountKind::Retail,
            parent: None,
            currency: "USD".into(),
            contact_name: String::new(),
            company: String::new(),
            email: format!("pages{tag}@example.com"),
            phone: String::new(),
            address: String::new(),
        },
    )
    .await?;
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
    }
    let pbx = diesel::sql_query(format!(
        "INSERT INTO pbxes (account_id, plan_id, request_id, gui_password_sealed, state) \
         SELECT {}, id, 'pages-{tag}', 'v1:x', 'active' FROM plans WHERE slug = 'pages-{tag}' RETURNING id",
        account.0
    ))
    .get_result::<Id>(&mut conn)
    .await?
    .id;
    let records = traffic::generate(tag as u64, Utc::now(), 62, 20, "15550100199");
    let rates = calling_plans::RateTables::default();
    for batch in records.chunks(2_000) {
        calls::ingest(&mut conn, &rates, pbx, "pull", batch, &[])
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    println!("  {} CDRs for its PBX", records.len());
    // As the daily job leaves them: this month's and last month's calls
    // vacuumed, so that pages read them from the index alone (calls written
    // since the job's last run are read from the table too, in service).
    calls::months::vacuum_read_months(&mut conn, Utc::now()).await?;
    let user = users::create(
        &mut conn,
        &NewUser {
            username: Username::parse(&format!("pages{tag}")).map_err(anyhow::Error::msg)?,
            email: Email::parse(&format!("pages{tag}@example.com")).map_err(anyhow::Error::msg)?,
            password: switchboard_core::people::passwords::generate(),
            role: Role::Client,
            account: Some(account),
            must_change_password: false,
        },
    )
    .await?;
    let token = sessions::create(
        &mut conn,
        user,
        chrono::Duration::hours(2),
        "127.0.0.1",
        "bench",
    )
    .await?;
    Ok(format!("{}={token}", session_cookie(https)))
}
