//! The client's call reports: a month by status, direction, extension, PBX
//! and day, two charts drawn as SVG on the server, and the calls as CSV.

use maud::{html, Markup};
use poem::http::{header, StatusCode};
use poem::web::{Data, Query};
use poem::{handler, Request, Response};
use serde::Deserialize;
use switchboard_core::Role;
use switchboard_web::auth::require;
use switchboard_web::layout::error_page;
use switchboard_web::operations;
use switchboard_web::{AppState, Nav, Page};

pub const REPORT: &str = concat!(
    include_str!("../operations/report.graphql"),
    include_str!("../operations/pbx_usage.graphql")
);
const CALLS_CSV: &str = include_str!("../operations/calls_csv.graphql");

#[derive(Deserialize)]
pub struct MonthQuery {
    month: Option<String>,
}

impl MonthQuery {
    fn variable(&self) -> &'static str {
        match self.month.as_deref() {
            Some("last") => "LAST",
            _ => "CURRENT",
        }
    }
}

#[derive(Deserialize)]
struct ReportData {
    viewer: Viewer,
}

#[derive(Deserialize)]
struct Viewer {
    account: Option<Account>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Account {
    name: String,
    report: Report,
    this_month: crate::pbxes::UsageMonth,
    last_month: crate::pbxes::UsageMonth,
    inbound: Vec<NumberCalls>,
}

/// Calls that reached one of the account's phone numbers in the month.
#[derive(Deserialize)]
struct NumberCalls {
    e164: String,
    calls: i64,
    seconds: i64,
    cost: Amount,
}

/// The UTC month (`2026-11`) phone numbers' inbound calls are counted by,
/// for `CURRENT` or `LAST`.
fn numbers_month(month: &str, now: chrono::DateTime<chrono::Utc>) -> String {
    use chrono::Datelike;
    let first = now.date_naive().with_day(1).unwrap_or(now.date_naive());
    let shown = if month == "LAST" {
        first.pred_opt().unwrap_or(first)
    } else {
        first
    };
    shown.format("%Y-%m").to_string()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    month: String,
    time_zone: String,
    unrated: i32,
    total: Figures,
    by_status: Vec<Count>,
    by_direction: Vec<Figures>,
    by_extension: Vec<Figures>,
    by_pbx: Vec<Figures>,
    by_day: Vec<Count>,
}

/// A group's figures exactly as the operation returns them: a field the
/// operation forgot to ask for fails the page instead of showing as 0.
#[derive(Deserialize)]
struct Figures {
    key: String,
    calls: i32,
    answered: i32,
    minutes: f64,
    cost: Amount,
}

/// A group that the page only counts.
#[derive(Deserialize)]
struct Count {
    key: String,
    calls: i32,
}

/// An amount, summed from exact micro-units and rounded once by the API.
#[derive(Deserialize)]
struct Amount {
    formatted: String,
}

/// Minutes to the tenth, as the API rounds them: `345.0`, `2.6`.
fn minutes(value: f64) -> Tenths {
    Tenths(value)
}

/// A number written to the tenth (`12.5`, `-0.3`), half away from zero,
/// into the page as it is made. The charts write a few hundred of these; a
/// `format!("{:.1}")` each was over a tenth of the report's rendering.
struct Tenths(f64);

impl maud::Render for Tenths {
    fn render_to(&self, buffer: &mut String) {
        use std::fmt::Write;
        let tenths = (self.0 * 10.0).round();
        // Beyond what a page draws or counts; `{}` still says it rightly.
        if !tenths.is_finite() || tenths.abs() >= 1e15 {
            let _ = write!(buffer, "{:.1}", self.0);
            return;
        }
        let tenths = tenths as i64;
        if tenths < 0 {
            buffer.push('-');
        }
        let whole = tenths.unsigned_abs();
        let _ = write!(buffer, "{}.{}", whole / 10, whole % 10);
    }
}

/// `2026-11` as people write it: `November 2026`.
pub fn month_name(month: &str) -> String {
    chrono::NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
        .map(|first| first.format("%B %Y").to_string())
        .unwrap_or_else(|_| month.to_owned())
}

/// Calls on each day of a `YYYY-MM` month, days without calls included.
fn every_day(month: &str, days: &[Count]) -> Vec<(String, f64)> {
    let first = chrono::NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").ok();
    let count = first
        .and_then(|f| {
            f.checked_add_months(chrono::Months::new(1))
                .map(|next| (next - f).num_days())
        })
        .unwrap_or(31);
    (1..=count)
        .map(|day| {
            let key = format!("{month}-{day:02}");
            let calls = days
                .iter()
                .find(|d| d.key == key)
                .map(|d| f64::from(d.calls))
                .unwrap_or(0.0);
            (day.to_string(), calls)
        })
        .collect()
}

/// Vertical bars, one a label: calls per day.
fn column_chart(title: &str, points: &[(String, f64)]) -> Markup {
    let (width, height, bottom) = (640.0, 200.0, 24.0);
    let max = points.iter().map(|(_, v)| *v).fold(1.0, f64::max);
    let slot = width / points.len().max(1) as f64;
    html! {
        figure.chart {
            svg viewBox={ "0 0 " (width) " " (height) } role="img" aria-label=(title) {
                title { (title) }
                line x1="0" y1=(height - bottom) x2=(width) y2=(height - bottom) stroke="#c4cad6" {}
                @for (i, (label, value)) in points.iter().enumerate() {
                    @let bar = (height - bottom - 16.0) * value / max;
                    @let x = i as f64 * slot + slot * 0.15;
                    rect x=(Tenths(x)) y=(Tenths(height - bottom - bar)) width=(Tenths(slot * 0.7)) height=(Tenths(bar)) fill="#1f5fbf" {
                        title { (label) ": " (value) }
                    }
                    text x=(Tenths(x + slot * 0.35)) y=(Tenths(height - 8.0)) text-anchor="middle" font-size="10" fill="#5b6475" { (label) }
                }
            }
            figcaption { (title) }
        }
    }
}

/// Horizontal bars, one a label: minutes per extension.
fn bar_chart(title: &str, points: &[(String, f64)]) -> Markup {
    let (width, row, left) = (640.0, 22.0, 70.0);
    let height = row * points.len().max(1) as f64 + 8.0;
    let max = points.iter().map(|(_, v)| *v).fold(1.0, f64::max);
    html! {
        figure.chart {
            svg viewBox={ "0 0 " (width) " " (height) } role="img" aria-label=(title) {
                title { (title) }
                @for (i, (label, value)) in points.iter().enumerate() {
                    @let y = i as f64 * row + 4.0;
                    @let bar = (width - left - 60.0) * value / max;
                    text x=(Tenths(left - 8.0)) y=(Tenths(y + 14.0)) text-anchor="end" font-size="12" fill="#1d2433" { (label) }
                    rect x=(left) y=(Tenths(y)) width=(Tenths(bar)) height=(Tenths(row - 6.0)) fill="#1d7a46" {
                        title { (label) ": " (value) " min" }
                    }
                    text x=(Tenths(left + bar + 6.0)) y=(Tenths(y + 14.0)) font-size="12" fill="#5b6475" { (value) }
                }
            }
            figcaption { (title) }
        }
    }
}

/// One row per group, and a footer with the month's total: the API sums
/// exact amounts and rounds once, so the footer is the summary's figure
/// even where the rows, each rounded on its own, add up to a cent more or less.
fn totals_table(id: &str, first: &str, rows: &[Figures], total: &Figures) -> Markup {
    html! {
        div.table-wrap {
            table.stackable id=(id) {
                thead { tr { th scope="col" { (first) } th.num scope="col" { "Calls" } th.num scope="col" { "Answered" } th.num scope="col" { "Minutes" } th.num scope="col" { "Cost" } } }
                tbody {
                    @for t in rows {
                        tr { th scope="row" { (t.key.replace('_', " ")) } td.num data-label="Calls" { (t.calls) } td.num data-label="Answered" { (t.answered) } td.num data-label="Minutes" { (minutes(t.minutes)) } td.num data-label="Cost" { (t.cost.formatted) } }
                    }
                }
                tfoot {
                    tr.total { th scope="row" { "All calls" } td.num data-label="Calls" { (total.calls) } td.num data-label="Answered" { (total.answered) } td.num data-label="Minutes" { (minutes(total.minutes)) } td.num data-label="Cost" { (total.cost.formatted) } }
                }
            }
        }
    }
}

/// `GET /portal/reports?month=current|last`
#[handler]
pub async fn reports(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(query): Query<MonthQuery>,
) -> Response {
    let ctx = match require(req, &[Role::Client, Role::Reseller]) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let month = query.variable();
    let variables = serde_json::json!({
        "month": month,
        "numbersMonth": numbers_month(month, chrono::Utc::now()),
    });
    let data: ReportData = match operations::run(state, &ctx, REPORT, variables).await {
        Ok(data) => data,
        Err(error) => return error_page(&ctx, StatusCode::INTERNAL_SERVER_ERROR, &error.message()),
    };
    let Some(account) = data.viewer.account else {
        return error_page(
            &ctx,
            StatusCode::NOT_FOUND,
            "Your user belongs to no account.",
        );
    };
    let r = &account.report;
    let per_day = every_day(&r.month, &r.by_day);
    let per_extension: Vec<(String, f64)> = r
        .by_extension
        .iter()
        .map(|e| (e.key.clone(), e.minutes))
        .collect();
    let query_month = if month == "LAST" { "last" } else { "current" };
    let month_name = month_name(&r.month);
    let title = format!("Calls in {month_name}");
    Page {
        title: &title,
        nav: Nav::ClientReports,
        ctx: &ctx,
    }
    .respond(html! {
        h1 { (title) }
        nav.tabs aria-label="Month" {
            a href="/portal/reports?month=current" aria-current=[(month == "CURRENT").then_some("page")] { "This month" }
            a href="/portal/reports?month=last" aria-current=[(month == "LAST").then_some("page")] { "Last month" }
            @if r.total.calls > 0 {
                a href={ "/portal/reports/calls.csv?month=" (query_month) } download { "Download the calls (CSV)" }
            }
        }
        p.muted { (account.name) " · times in " (r.time_zone) }
        @if r.total.calls == 0 {
            div.card data-testid="no-calls" {
                p {
                    @if month == "CURRENT" { "No calls in " (month_name) " yet. Calls appear here within minutes of being made." }
                    @else { "No calls in " (month_name) "." }
                }
            }
        } @else {
            @if r.unrated > 0 {
                div.alert.info role="status" { (r.unrated) " calls matched no rate yet; staff are pricing them." }
            }
            div.cards {
                div.card.figure { div.label { "Calls" } div.value data-testid="total-calls" { (r.total.calls) } }
                div.card.figure { div.label { "Answered" } div.value data-testid="total-answered" { (r.total.answered) } }
                div.card.figure { div.label { "Minutes" } div.value data-testid="total-minutes" { (minutes(r.total.minutes)) } }
                div.card.figure { div.label { "Spent" } div.value data-testid="total-cost" { (r.total.cost.formatted) } }
            }
            (column_chart("Calls per day", &per_day))
            h2 { "By extension" }
            (bar_chart("Minutes per extension", &per_extension))
            (totals_table("by-extension", "Extension", &r.by_extension, &r.total))
            h2 { "Inbound and outbound" }
            (totals_table("by-direction", "Direction", &r.by_direction, &r.total))
            h2 { "By status" }
            div.table-wrap {
                table #by-status {
                    thead { tr { th scope="col" { "Status" } th.num scope="col" { "Calls" } } }
                    tbody {
                        @for s in &r.by_status { tr { th scope="row" { (s.key.replace('_', " ")) } td.num { (s.calls) } } }
                    }
                    tfoot { tr.total { th scope="row" { "All calls" } td.num { (r.total.calls) } } }
                }
            }
            @if r.by_pbx.len() > 1 {
                h2 { "By PBX" }
                (totals_table("by-pbx", "PBX", &r.by_pbx, &r.total))
            }
            @if !account.inbound.is_empty() {
                h2 { "Inbound calls per number" }
                div.table-wrap {
                    table #inbound-per-number {
                        caption.muted { "Calls that reached each of your phone numbers, by the month in UTC." }
                        thead { tr { th scope="col" { "Number" } th.num scope="col" { "Calls" } th.num scope="col" { "Minutes" } th.num scope="col" { "Cost" } } }
                        tbody {
                            @for n in &account.inbound {
                                tr {
                                    th scope="row" data-label="Number" { (n.e164) }
                                    td.num data-label="Calls" { (n.calls) }
                                    td.num data-label="Minutes" { (minutes(n.seconds as f64 / 60.0)) }
                                    td.num data-label="Cost" { (n.cost.formatted) }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Calls and charges per PBX" }
            (crate::pbxes::usage_table("usage-per-pbx", &[&account.this_month, &account.last_month]))
            p.muted.note {
                "Every amount is summed exactly and rounded to the cent once, so a table's rows, "
                "each rounded on its own, may add up to a cent more or less than its total."
            }
        }
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CsvData {
    viewer: CsvViewer,
}

#[derive(Deserialize)]
struct CsvViewer {
    account: Option<CsvAccount>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CsvAccount {
    calls_csv: String,
}

/// `GET /portal/reports/calls.csv?month=current|last`
#[handler]
pub async fn calls_csv(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(query): Query<MonthQuery>,
) -> Response {
    let ctx = match require(req, &[Role::Client, Role::Reseller]) {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let month = query.variable();
    match operations::run::<CsvData>(
        state,
        &ctx,
        CALLS_CSV,
        serde_json::json!({ "month": month }),
    )
    .await
    {
        Ok(CsvData {
            viewer: CsvViewer {
                account: Some(account),
            },
        }) => Response::builder()
            .content_type("text/csv; charset=utf-8")
            .header(
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"calls-{}.csv\"",
                    month.to_lowercase()
                ),
            )
            .body(account.calls_csv),
        Ok(_) => error_page(
            &ctx,
            StatusCode::NOT_FOUND,
            "Your user belongs to no account.",
        ),
        Err(error) => error_page(&ctx, StatusCode::INTERNAL_SERVER_ERROR, &error.message()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_counted_by_this_or_last_utc_month() {
        let at = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().expect("a time");
        assert_eq!(
            numbers_month("CURRENT", at("2026-12-01T00:05:00Z")),
            "2026-12"
        );
        assert_eq!(numbers_month("LAST", at("2026-12-01T00:05:00Z")), "2026-11");
        assert_eq!(numbers_month("LAST", at("2026-01-31T23:59:59Z")), "2025-12");
    }

    #[test]
    fn a_chart_number_is_written_to_the_tenth() {
        use maud::Render;
        let written = |v: f64| Tenths(v).render().into_string();
        for (value, text) in [
            (0.0, "0.0"),
            (2.6, "2.6"),
            (345.0, "345.0"),
            (12.34, "12.3"),
            (12.36, "12.4"),
            (0.05, "0.1"),
            (-0.04, "0.0"),
            (-0.3, "-0.3"),
            (-12.26, "-12.3"),
            (176.0 - 16.0, "160.0"),
            (640.0 / 31.0 * 0.7, "14.5"),
        ] {
            assert_eq!(written(value), text, "{value}");
        }
        assert_eq!(written(1e20), format!("{:.1}", 1e20));
        assert_eq!(written(f64::NAN), "NaN");
    }
}
