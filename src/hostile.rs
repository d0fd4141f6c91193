//! `switchboard bench --hostile`: how fast `/healthz` answers while the
//! server is sent hostile GraphQL, next to how fast it answers alone.
//!
//! The server runs as `serve` does, in a runtime of its own with one worker
//! thread per core, on loopback. Senders post, as fast as they are
//! answered, a 30-level fragment bomb (about 1.2 KB that expands to 2^31
//! selections) anonymously, and a signed-in client's `callsCsv` under 4,900
//! aliases; meanwhile `/healthz` is asked one request after another.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_core::config::Settings;
use switchboard_core::domain::Email;
use switchboard_core::keys::SecretKey;
use switchboard_core::people::accounts::{self, NewAccount};
use switchboard_core::people::sessions;
use switchboard_core::people::users::{self, NewUser};
use switchboard_core::{db, AccountKind, Role, Username};
use switchboard_graphql::limits::fragment_bomb;
use switchboard_web::pipeline::{session_cookie, CSRF_HEADER};
use switchboard_web::AppState;

/// `/healthz` requests measured alone, and again under the hostile load.
const PROBES: usize = 400;
/// Senders of each hostile request at once.
const SENDERS: usize = 2;
/// The longest any one request is waited for.
const TIMEOUT: Duration = Duration::from_secs(20);

/// A month of calls as CSV under `count` aliases.
pub fn aliased_calls_csv(count: usize) -> String {
    let aliases: String = (0..count).map(|n| format!("a{n}: callsCsv ")).collect();
    format!("{{ viewer {{ account {{ {aliases}}} }} }}")
}

/// Runs the measurement against the database at `url` and prints it.
pub async fn run(url: &str, settings: Settings) -> anyhow::Result<()> {
    let pool = db::pool(url, 8)?;
    let key = SecretKey::generate();
    let state = AppState::new(pool.clone(), key.clone(), settings.clone())?;
    let cookie = client_session(&pool, &key, settings.https()).await?;

    let server = crate::server::InThread::start(state).await?;
    let base = server.base_url.clone();
    let http = reqwest::Client::builder().timeout(TIMEOUT).build()?;

    println!("Measuring /healthz alone ({PROBES} requests, one after another) …");
    let alone = probe(&http, &base).await;
    println!(
        "Sending a 30-level fragment bomb ({} bytes) and callsCsv under 4,900 aliases ({} bytes), {SENDERS} senders each, while measuring /healthz …",
        fragment_bomb(30).len(),
        aliased_calls_csv(4_900).len()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let mut senders = Vec::new();
    let mut tallies = Vec::new();
    for (name, body, cookie) in [
        ("fragment bomb", fragment_bomb(30), None),
        (
            "aliased callsCsv",
            aliased_calls_csv(4_900),
            Some(cookie.clone()),
        ),
    ] {
        let tally = Arc::new(Tally::default());
        for _ in 0..SENDERS {
            senders.push(tokio::spawn(send_until(
                http.clone(),
                format!("{base}/graphql"),
                body.clone(),
                cookie.clone(),
                Arc::clone(&stop),
                Arc::clone(&tally),
            )));
        }
        tallies.push((name, tally));
    }
    // Let the senders get going before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let loaded = probe(&http, &base).await;
    stop.store(true, Ordering::SeqCst);
    for sender in senders {
        let _ = sender.await;
    }
    server.stop()?;

    println!("{}", line("/healthz alone        ", &alone));
    println!("{}", line("/healthz under attack ", &loaded));
    for (name, tally) in tallies {
        println!(
            "  {name:<17} {:>6} sent, {:>6} refused before running, slowest answer {:.1} ms; the server said: {}",
            tally.sent.load(Ordering::SeqCst),
            tally.refused.load(Ordering::SeqCst),
            tally.slowest_micros.load(Ordering::SeqCst) as f64 / 1000.0,
            tally.said.lock().expect("said").as_deref().unwrap_or("nothing")
        );
    }
    Ok(())
}

/// What the senders of one hostile request saw.
#[derive(Default)]
struct Tally {
    sent: AtomicUsize,
    refused: AtomicUsize,
    slowest_micros: AtomicUsize,
    said: std::sync::Mutex<Option<String>>,
}

/// Posts `body` again and again until told to stop.
async fn send_until(
    http: reqwest::Client,
    url: String,
    query: String,
    cookie: Option<(String, String)>,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) {
    let body = serde_json::json!({ "query": query });
    while !stop.load(Ordering::SeqCst) {
        let mut request = http.post(&url).json(&body);
        if let Some((cookie, csrf)) = &cookie {
            request = request.header("cookie", cookie).header(CSRF_HEADER, csrf);
        }
        let started = Instant::now();
        let answer = match request.send().await {
            Ok(response) => response.json::<serde_json::Value>().await.ok(),
            Err(_) => None,
        };
        let took = started.elapsed().as_micros() as usize;
        tally.sent.fetch_add(1, Ordering::SeqCst);
        tally.slowest_micros.fetch_max(took, Ordering::SeqCst);
        if let Some(answer) = answer {
            if answer["data"].is_null() && answer["errors"].is_array() {
                tally.refused.fetch_add(1, Ordering::SeqCst);
                let said = answer["errors"][0]["message"].as_str().map(str::to_owned);
                *tally.said.lock().expect("said") = said;
            }
        }
    }
}

/// `/healthz` asked `PROBES` times, one after another; a request that fails
/// or times out counts as the whole timeout.
async fn probe(http: &reqwest::Client, base: &str) -> Vec<Duration> {
    let mut took = Vec::with_capacity(PROBES);
    for _ in 0..PROBES {
        let started = Instant::now();
        let ok = matches!(http.get(format!("{base}/healthz")).send().await, Ok(r) if r.status().is_success());
        took.push(if ok { started.elapsed() } else { TIMEOUT });
    }
    took.sort();
    took
}

fn line(label: &str, sorted: &[Duration]) -> String {
    let at = |q: f64| sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "{label} p50 {:>8.2} ms, p99 {:>8.2} ms, max {:>8.2} ms",
        ms(at(0.5)),
        ms(at(0.99)),
        ms(sorted[sorted.len() - 1])
    )
}

/// A client account with a signed-in session: the session cookie and the
/// CSRF token its JSON requests carry.
async fn client_session(
    pool: &db::Pool,
    key: &SecretKey,
    https: bool,
) -> anyhow::Result<(String, String)> {
    let mut conn = db::conn(pool).await?;
    let tag = chrono::Utc::now().timestamp_micros();
    let account = accounts::create(
        &mut conn,
        &NewAccount {
            name: format!("Hostile {tag}"),
            kind: AccountKind::Retail,
            parent: None,
            currency: "USD".into(),
            contact_name: String::new(),
            company: String::new(),
            email: format!("hostile{tag}@example.com"),
            phone: String::new(),
            address: String::new(),
        },
    )
    .await?;
    let user = users::create(
        &mut conn,
        &NewUser {
            username: Username::parse(&format!("hostile{tag}")).map_err(anyhow::Error::msg)?,
            email: Email::parse(&format!("hostile{tag}@example.com"))
                .map_err(anyhow::Error::msg)?,
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
        chrono::Duration::hours(1),
        "127.0.0.1",
        "bench",
    )
    .await?;
    Ok((
        format!("{}={token}", session_cookie(https)),
        key.sign("csrf", token.as_bytes()),
    ))
}
