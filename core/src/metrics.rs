//! What this process has done, for `/metrics` in Prometheus' text format:
//! requests by route, jobs run, CDRs taken in, counted in memory from the
//! start of the process (as Prometheus expects of each instance it scrapes),
//! beside gauges read when scraped (jobs queued, the outbox, the pool).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use diesel::connection::{Instrumentation, InstrumentationEvent};

/// Upper bounds of the request latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Requests of one route answered with one status.
#[derive(Clone, Debug, Default)]
struct Latency {
    /// Requests at or under each bound of `BUCKETS`.
    buckets: [u64; BUCKETS.len()],
    count: u64,
    seconds: f64,
}

/// The process's counters.
#[derive(Default)]
pub struct Registry {
    /// (route, method, status) → latency of its requests.
    requests: Mutex<BTreeMap<(String, String, u16), Latency>>,
    /// (job kind, outcome) → runs.
    jobs: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// (source, outcome) → CDRs.
    cdrs: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// route → where its requests' time went.
    work: Mutex<BTreeMap<String, WorkTotals>>,
}

tokio::task_local! {
    /// The request the current task serves, for statements to count against.
    static WORK: Arc<Work>;
}

/// What one request spent beyond its own code: statements sent to the
/// database and the time until each answered, and time running GraphQL
/// operations (their statements included).
#[derive(Debug, Default)]
pub struct Work {
    statements: AtomicU64,
    database_nanos: AtomicU64,
    graphql_nanos: AtomicU64,
}

/// Runs `request`, counting against `work` every statement its task sends
/// and every GraphQL operation it runs.
pub async fn tallying<F: std::future::Future>(work: Arc<Work>, request: F) -> F::Output {
    WORK.scope(work, request).await
}

fn nanos(took: Duration) -> u64 {
    u64::try_from(took.as_nanos()).unwrap_or(u64::MAX)
}

/// Counts `took` running a GraphQL operation against the current request.
pub fn graphql_ran(took: Duration) {
    let _ = WORK.try_with(|work| work.graphql_nanos.fetch_add(nanos(took), Ordering::Relaxed));
}

/// Times each statement a connection sends, for the request whose task
/// sends it (statements sent outside a request, by jobs, are not counted).
#[derive(Debug, Default)]
pub struct StatementTimer {
    started: Option<Instant>,
}

impl Instrumentation for StatementTimer {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            InstrumentationEvent::StartQuery { .. } => self.started = Some(Instant::now()),
            InstrumentationEvent::FinishQuery { .. } => {
                if let Some(started) = self.started.take() {
                    let took = nanos(started.elapsed());
                    let _ = WORK.try_with(|work| {
                        work.statements.fetch_add(1, Ordering::Relaxed);
                        work.database_nanos.fetch_add(took, Ordering::Relaxed);
                    });
                }
            }
            _ => {}
        }
    }
}

/// Requests of a route and where their time went, summed.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WorkTotals {
    pub requests: u64,
    pub seconds: f64,
    pub statements: u64,
    pub database_seconds: f64,
    pub graphql_seconds: f64,
}

impl WorkTotals {
    /// What was added between `earlier` and this.
    pub fn since(&self, earlier: &WorkTotals) -> WorkTotals {
        WorkTotals {
            requests: self.requests - earlier.requests,
            seconds: self.seconds - earlier.seconds,
            statements: self.statements - earlier.statements,
            database_seconds: self.database_seconds - earlier.database_seconds,
            graphql_seconds: self.graphql_seconds - earlier.graphql_seconds,
        }
    }
}

/// The registry of this process.
pub fn global() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

/// How a job's run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobOutcome {
    Succeeded,
    /// Failed; it will be tried again.
    Failed,
    /// Failed for the last time.
    GivenUp,
}

impl JobOutcome {
    fn as_str(self) -> &'static str {
        match self {
            JobOutcome::Succeeded => "succeeded",
            JobOutcome::Failed => "failed",
            JobOutcome::GivenUp => "given_up",
        }
    }
}

impl Registry {
    /// Counts a request answered by `route` (its pattern, `/orders/:id`, so
    /// the series stay few) with `status` after `took`.
    pub fn request(&self, route: &str, method: &str, status: u16, took: Duration) {
        let seconds = took.as_secs_f64();
        let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        let latency = requests
            .entry((route.to_owned(), method.to_owned(), status))
            .or_default();
        latency.count += 1;
        latency.seconds += seconds;
        for (bound, bucket) in BUCKETS.iter().zip(latency.buckets.iter_mut()) {
            if seconds <= *bound {
                *bucket += 1;
            }
        }
    }

    /// Adds what a request of `route` spent, taking `took` in all.
    pub fn work(&self, route: &str, took: Duration, work: &Work) {
        let mut totals = self.work.lock().unwrap_or_else(|p| p.into_inner());
        let total = totals.entry(route.to_owned()).or_default();
        let seconds = |nanos: &AtomicU64| nanos.load(Ordering::Relaxed) as f64 / 1e9;
        total.requests += 1;
        total.seconds += took.as_secs_f64();
        total.statements += work.statements.load(Ordering::Relaxed);
        total.database_seconds += seconds(&work.database_nanos);
        total.graphql_seconds += seconds(&work.graphql_nanos);
    }

    /// Where the time of `route`'s requests went, so far.
    pub fn work_of(&self, route: &str) -> WorkTotals {
        let totals = self.work.lock().unwrap_or_else(|p| p.into_inner());
        totals.get(route).copied().unwrap_or_default()
    }

    /// Counts a job's run.
    pub fn job(&self, kind: &str, outcome: JobOutcome) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        *jobs.entry((kind.to_owned(), outcome.as_str())).or_default() += 1;
    }

    /// Counts what one stored batch of CDRs from `source` did.
    pub fn cdrs(&self, source: &str, accepted: usize, duplicates: usize, rejected: usize) {
        let mut cdrs = self.cdrs.lock().unwrap_or_else(|p| p.into_inner());
        for (outcome, count) in [
            ("accepted", accepted),
            ("duplicate", duplicates),
            ("rejected", rejected),
        ] {
            *cdrs.entry((source.to_owned(), outcome)).or_default() += count as u64;
        }
    }

    /// Everything counted, and `gauges`, in Prometheus' text format.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::new();
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        family(
            &mut out,
            "switchboard_http_requests_total",
            "counter",
            "Requests answered, by route pattern, method and status.",
        );
        for ((route, method, status), latency) in &requests {
            let _ = writeln!(
                out,
                "switchboard_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {}",
                escape(route),
                latency.count
            );
        }
        family(
            &mut out,
            "switchboard_http_request_duration_seconds",
            "histogram",
            "Time from a request's arrival to its answer, by route pattern.",
        );
        let mut by_route: BTreeMap<&str, Latency> = BTreeMap::new();
        for ((route, _, _), latency) in &requests {
            let sum = by_route.entry(route).or_default();
            sum.count += latency.count;
            sum.seconds += latency.seconds;
            for (total, bucket) in sum.buckets.iter_mut().zip(latency.buckets) {
                *total += bucket;
            }
        }
        for (route, latency) in &by_route {
            let route = escape(route);
            for (bound, bucket) in BUCKETS.iter().zip(latency.buckets) {
                let _ = writeln!(
                    out,
                    "switchboard_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {bucket}"
                );
            }
            let _ = writeln!(
                out,
                "switchboard_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\n\
                 switchboard_http_request_duration_seconds_sum{{route=\"{route}\"}} {}\n\
                 switchboard_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                latency.count, latency.seconds, latency.count
            );
        }
        let work = self.work.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for (name, help, value) in [
            (
                "switchboard_http_request_db_statements_total",
                "Statements requests sent to the database, by route pattern.",
                (|w: &WorkTotals| w.statements as f64) as fn(&WorkTotals) -> f64,
            ),
            (
                "switchboard_http_request_db_seconds_total",
                "Time requests waited for the database's answers, by route pattern.",
                |w: &WorkTotals| w.database_seconds,
            ),
            (
                "switchboard_http_request_graphql_seconds_total",
                "Time requests spent running GraphQL operations, statements included, by route pattern.",
                |w: &WorkTotals| w.graphql_seconds,
            ),
        ] {
            family(&mut out, name, "counter", help);
            for (route, totals) in &work {
                let _ = writeln!(
                    out,
                    "{name}{{route=\"{}\"}} {}",
                    escape(route),
                    value(totals)
                );
            }
        }
        family(
            &mut out,
            "switchboard_job_runs_total",
            "counter",
            "Background jobs run by this instance, by kind and outcome.",
        );
        for ((kind, outcome), runs) in self.jobs.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(
                out,
                "switchboard_job_runs_total{{kind=\"{}\",outcome=\"{outcome}\"}} {runs}",
                escape(kind)
            );
        }
        family(
            &mut out,
            "switchboard_cdrs_total",
            "counter",
            "CDRs received by this instance, by source and what became of them.",
        );
        for ((source, outcome), count) in self.cdrs.lock().unwrap_or_else(|p| p.into_inner()).iter()
        {
            let _ = writeln!(
                out,
                "switchboard_cdrs_total{{source=\"{}\",outcome=\"{outcome}\"}} {count}",
                escape(source)
            );
        }
        gauges.render(&mut out);
        out
    }
}

/// What is read from the database and the pool when scraped.
#[derive(Clone, Debug, Default)]
pub struct Gauges {
    /// (job kind, rows queued, of which failed at least once and wait to be retried).
    pub jobs: Vec<(String, i64, i64)>,
    /// Emails queued and not yet sent.
    pub outbox_queued: i64,
    /// Seconds the oldest of them has waited.
    pub outbox_oldest_seconds: f64,
    /// Emails given up.
    pub outbox_failed: i64,
    pub pool_max: usize,
    pub pool_open: usize,
    pub pool_idle: usize,
    pub pool_waiting: usize,
}

impl Gauges {
    fn render(&self, out: &mut String) {
        family(
            out,
            "switchboard_jobs_queued",
            "gauge",
            "Background jobs waiting or running, by kind (all instances).",
        );
        for (kind, queued, _) in &self.jobs {
            let _ = writeln!(
                out,
                "switchboard_jobs_queued{{kind=\"{}\"}} {queued}",
                escape(kind)
            );
        }
        family(
            out,
            "switchboard_jobs_retrying",
            "gauge",
            "Queued background jobs whose last attempt failed, by kind (all instances).",
        );
        for (kind, _, retrying) in &self.jobs {
            let _ = writeln!(
                out,
                "switchboard_jobs_retrying{{kind=\"{}\"}} {retrying}",
                escape(kind)
            );
        }
        for (name, kind, help, value) in [
            (
                "switchboard_outbox_queued",
                "gauge",
                "Emails waiting to be sent (all instances).",
                self.outbox_queued as f64,
            ),
            (
                "switchboard_outbox_oldest_seconds",
                "gauge",
                "How long the oldest email waiting has waited.",
                self.outbox_oldest_seconds,
            ),
            (
                "switchboard_outbox_failed",
                "gauge",
                "Emails given up after every attempt failed.",
                self.outbox_failed as f64,
            ),
            (
                "switchboard_db_pool_max",
                "gauge",
                "Database connections this instance may open.",
                self.pool_max as f64,
            ),
            (
                "switchboard_db_pool_open",
                "gauge",
                "Database connections this instance holds open.",
                self.pool_open as f64,
            ),
            (
                "switchboard_db_pool_in_use",
                "gauge",
                "Database connections in use by this instance.",
                self.pool_open.saturating_sub(self.pool_idle) as f64,
            ),
            (
                "switchboard_db_pool_waiting",
                "gauge",
                "Tasks waiting for a database connection.",
                self.pool_waiting as f64,
            ),
        ] {
            family(out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
    }
}

#[derive(diesel::QueryableByName)]
struct QueuedJobs {
    #[diesel(sql_type = diesel::sql_types::Text)]
    kind: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    queued: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    retrying: i64,
}

#[derive(diesel::QueryableByName)]
struct Outbox {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    queued: i64,
    #[diesel(sql_type = diesel::sql_types::Double)]
    oldest: f64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    failed: i64,
}

/// The gauges the database holds: jobs queued and the outbox (the pool's
/// are left for the caller, who has the pool).
pub async fn database_gauges(
    conn: &mut diesel_async::AsyncPgConnection,
) -> diesel::QueryResult<Gauges> {
    use diesel_async::RunQueryDsl;
    let jobs: Vec<QueuedJobs> = diesel::sql_query(
        "SELECT job_type AS kind, count(*) AS queued, \
                count(*) FILTER (WHERE last_error IS NOT NULL) AS retrying \
         FROM background_jobs GROUP BY job_type ORDER BY job_type",
    )
    .load(conn)
    .await?;
    // Read through the index of unsent emails: sent ones are never counted.
    let outbox: Outbox = diesel::sql_query(
        "SELECT count(*) FILTER (WHERE state = 'queued') AS queued, \
                coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE state = 'queued')), 0)::float8 AS oldest, \
                count(*) FILTER (WHERE state = 'failed') AS failed \
         FROM emails WHERE state <> 'sent'",
    )
    .get_result(conn)
    .await?;
    Ok(Gauges {
        jobs: jobs
            .into_iter()
            .map(|j| (j.kind, j.queued, j.retrying))
            .collect(),
        outbox_queued: outbox.queued,
        outbox_oldest_seconds: outbox.oldest,
        outbox_failed: outbox.failed,
        ..Gauges::default()
    })
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value as the text format writes it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_route_and_bucketed_by_time() {
        let registry = Registry::default();
        registry.request("/orders/:id", "GET", 200, Duration::from_millis(3));
        registry.request("/orders/:id", "GET", 200, Duration::from_millis(30));
        registry.request("/orders/:id", "GET", 404, Duration::from_millis(1));
        let text = registry.render(&Gauges::default());
        assert!(text.contains(
            "switchboard_http_requests_total{route=\"/orders/:id\",method=\"GET\",status=\"200\"} 2"
        ));
        assert!(text.contains(
            "switchboard_http_request_duration_seconds_bucket{route=\"/orders/:id\",le=\"0.005\"} 2"
        ));
        assert!(text.contains(
            "switchboard_http_request_duration_seconds_bucket{route=\"/orders/:id\",le=\"+Inf\"} 3"
        ));
        assert!(text.contains("switchboard_db_pool_in_use 0"));
    }
}
