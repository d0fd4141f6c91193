//! The one layout: top bar with the navigation for the viewer's role, the
//! page, a footer.

use maud::{html, Markup, DOCTYPE};
use poem::http::StatusCode;
use poem::web::Html;
use poem::{IntoResponse, Response};
use switchboard_core::Role;

use crate::pipeline::{PageContext, CSRF_FIELD};

/// Where in the site a page is, so the navigation can say so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nav {
    Storefront,
    SignIn,
    ClientHome,
    ClientReports,
    ClientFunds,
    ClientStatements,
    ClientProfile,
    ClientSupport,
    ClientServices,
    ClientNumbers,
    StaffAccounts,
    StaffOutbox,
    StaffTickets,
    StaffPlans,
    StaffServices,
    StaffServiceOrders,
    StaffPbxes,
    StaffNumbers,
    StaffRates,
    StaffCallRecords,
    StaffCalling,
    StaffTeam,
    StaffAudit,
    Api,
    Password,
    TwoFactor,
    None,
}

/// A link of the top bar: one page, or a group of pages that share it and
/// show their own links under the bar (so the bar fits a laptop's width).
struct Link {
    nav: Nav,
    href: &'static str,
    label: &'static str,
    /// The group's pages, none for a single page.
    group: &'static [(Nav, &'static str, &'static str)],
}

impl Link {
    const fn page(nav: Nav, href: &'static str, label: &'static str) -> Link {
        Link {
            nav,
            href,
            label,
            group: &[],
        }
    }

    fn holds(&self, nav: Nav) -> bool {
        self.nav == nav || self.group.iter().any(|(n, _, _)| *n == nav)
    }
}

const CALLS: Link = Link {
    nav: Nav::StaffCalling,
    href: "/admin/calling",
    label: "Calls",
    group: &[
        (Nav::StaffCalling, "/admin/calling", "Calling status"),
        (Nav::StaffCallRecords, "/admin/calls", "Call records"),
    ],
};

const PBXES: Link = Link {
    nav: Nav::StaffPbxes,
    href: "/admin/pbxes",
    label: "PBXs",
    group: &[
        (Nav::StaffPbxes, "/admin/pbxes", "PBXs"),
        (Nav::StaffNumbers, "/admin/numbers", "Phone numbers"),
    ],
};

const CATALOGUE: Link = Link {
    nav: Nav::StaffPlans,
    href: "/admin/plans",
    label: "Catalogue",
    group: &[
        (Nav::StaffPlans, "/admin/plans", "Plans"),
        (Nav::StaffRates, "/admin/calling-plans", "Calling plans"),
        (Nav::StaffServices, "/admin/services", "Services"),
        (
            Nav::StaffServiceOrders,
            "/admin/service-orders",
            "Service orders",
        ),
    ],
};

const TEAM: Link = Link {
    nav: Nav::StaffTeam,
    href: "/admin/staff",
    label: "Team",
    group: &[
        (Nav::StaffTeam, "/admin/staff", "Staff"),
        (Nav::StaffAudit, "/admin/audit", "Audit log"),
    ],
};

const YOU: Link = Link {
    nav: Nav::Password,
    href: "/account/password",
    label: "Password",
    group: &[
        (Nav::Password, "/account/password", "Password"),
        (Nav::TwoFactor, "/account/two-factor", "Two-factor sign-in"),
    ],
};

/// The same for clients and resellers, with their profile first.
const CLIENT_YOU: Link = Link {
    nav: Nav::ClientProfile,
    href: "/portal/profile",
    label: "Profile",
    group: &[
        (Nav::ClientProfile, "/portal/profile", "Profile"),
        (Nav::Password, "/account/password", "Password"),
        (Nav::TwoFactor, "/account/two-factor", "Two-factor sign-in"),
    ],
};

/// A page to draw inside the layout.
pub struct Page<'a> {
    pub title: &'a str,
    pub nav: Nav,
    pub ctx: &'a PageContext,
}

impl Page<'_> {
    /// The whole document around `content`.
    pub fn render(&self, content: Markup) -> Markup {
        self.document(html! {}, None, content, html! {})
    }

    /// A document for a page that is an application of its own (GraphiQL):
    /// extra head elements, a class on the body, and scripts at the end.
    pub fn render_app(&self, head: Markup, content: Markup, scripts: Markup) -> Markup {
        self.document(head, Some("app"), content, scripts)
    }

    /// A normal page with extra head elements (a refresh, say).
    pub fn render_app_like(&self, head: Markup, content: Markup) -> Markup {
        self.document(head, None, content, html! {})
    }

    fn document(
        &self,
        head: Markup,
        body_class: Option<&str>,
        content: Markup,
        scripts: Markup,
    ) -> Markup {
        let links = nav_links(self.ctx.role());
        // A group of several pages shows its own links under the bar.
        let section = links
            .iter()
            .find(|l| !l.group.is_empty() && l.holds(self.nav));
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (self.title) " · Switchboard" }
                    (head)
                    link rel="icon" href="/favicon.ico" sizes="16x16 32x32";
                    link rel="stylesheet" href="/static/switchboard.css";
                }
                body class=[body_class] {
                    header.topbar {
                        div.inner {
                            a.brand href="/" { "Switch" span { "board" } }
                            nav.main aria-label="Main" {
                                @for link in &links {
                                    @if link.holds(self.nav) {
                                        a href=(link.href) aria-current="page" { (link.label) }
                                    } @else {
                                        a href=(link.href) { (link.label) }
                                    }
                                }
                            }
                            @if let Some(user) = self.ctx.user() {
                                div.who {
                                    span { "Signed in as " strong { (user.username) } }
                                    form method="post" action="/sign-out" {
                                        (csrf_field(self.ctx))
                                        button type="submit" { "Sign out" }
                                    }
                                }
                            }
                        }
                    }
                    main {
                        @if let Some(group) = section {
                            nav.tabs aria-label="In this section" {
                                @for (nav, href, label) in group.group {
                                    @if *nav == self.nav {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                        }
                        (content)
                    }
                    footer {
                        "Switchboard · hosted PBX service · "
                        a href="/terms" { "Terms of service" } " · "
                        a href="/privacy" { "Privacy" }
                    }
                    (scripts)
                }
            }
        }
    }

    /// The page as an HTTP 200 response.
    pub fn respond(&self, content: Markup) -> Response {
        html_response(StatusCode::OK, self.render(content))
    }
}

fn nav_links(role: Option<Role>) -> Vec<Link> {
    match role {
        None => vec![
            Link::page(Nav::Storefront, "/plans", "Plans"),
            Link::page(Nav::SignIn, "/sign-in", "Sign in"),
        ],
        Some(Role::Client | Role::Reseller) => vec![
            Link::page(Nav::ClientHome, "/portal", "Home"),
            Link::page(Nav::ClientReports, "/portal/reports", "Reports"),
            Link::page(Nav::ClientNumbers, "/portal/numbers", "Numbers"),
            Link::page(Nav::ClientFunds, "/portal/funds", "Funds"),
            Link::page(Nav::ClientStatements, "/portal/statements", "Statements"),
            Link::page(Nav::ClientServices, "/portal/services", "Services"),
            Link::page(Nav::ClientSupport, "/portal/tickets", "Support"),
            CLIENT_YOU,
            Link::page(Nav::Api, "/graphql", "API"),
        ],
        Some(role @ (Role::Staff | Role::Admin)) => {
            let mut links = vec![
                Link::page(Nav::StaffAccounts, "/admin", "Accounts"),
                Link::page(Nav::StaffTickets, "/admin/tickets", "Tickets"),
                CALLS,
                PBXES,
                CATALOGUE,
                Link::page(Nav::StaffOutbox, "/admin/outbox", "Outbox"),
            ];
            if role == Role::Admin {
                links.push(TEAM);
            }
            links.push(YOU);
            links.push(Link::page(Nav::Api, "/graphql", "API"));
            links
        }
    }
}

/// The hidden field every form posts back.
pub fn csrf_field(ctx: &PageContext) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(ctx.csrf_token); }
}

/// An HTML response with a status.
pub fn html_response(status: StatusCode, markup: Markup) -> Response {
    Html(markup.into_string())
        .with_status(status)
        .into_response()
}

/// A page that only says something: an error, a refusal, a notice.
pub fn message_page(status: StatusCode, title: &str, message: &str) -> Response {
    let ctx = PageContext {
        viewer: Default::default(),
        csrf_token: String::new(),
        session_token: None,
        path: String::new(),
    };
    let page = Page {
        title,
        nav: Nav::None,
        ctx: &ctx,
    };
    html_response(
        status,
        page.render(html! {
            div.card.narrow {
                h1 { (title) }
                p { (message) }
                p { a href="/" { "Back to the start" } }
            }
        }),
    )
}

/// The same, inside the layout of a signed-in viewer.
pub fn error_page(ctx: &PageContext, status: StatusCode, message: &str) -> Response {
    let title = match status {
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Not found",
        _ => "Something went wrong",
    };
    let page = Page {
        title,
        nav: Nav::None,
        ctx,
    };
    html_response(
        status,
        page.render(html! {
            div.card.narrow {
                h1 { (title) }
                p { (message) }
            }
        }),
    )
}

/// One labelled input with its error, keeping what was typed.
pub struct Field<'a> {
    pub name: &'a str,
    pub label: &'a str,
    pub kind: &'a str,
    pub value: &'a str,
    pub autocomplete: &'a str,
    pub hint: Option<&'a str>,
}

impl Field<'_> {
    /// The label, the input (marked invalid and described by its error when
    /// it has one) and the error itself.
    pub fn render(&self, errors: &[(String, String)]) -> Markup {
        let error = errors
            .iter()
            .find(|(f, _)| f == self.name)
            .map(|(_, m)| m.as_str());
        let error_id = format!("{}-error", self.name);
        html! {
            label for=(self.name) {
                (self.label)
                @if let Some(hint) = self.hint { " " span.hint { (hint) } }
            }
            @if self.kind == "textarea" {
                textarea id=(self.name) name=(self.name) rows="3" autocomplete=(self.autocomplete)
                    aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| error_id.as_str())] { (self.value) }
            } @else {
                input id=(self.name) name=(self.name) type=(self.kind) value=(self.value) autocomplete=(self.autocomplete)
                    aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| error_id.as_str())];
            }
            @if let Some(error) = error {
                div.field-error id=(error_id) { (self.label) " " (error) "." }
            }
        }
    }
}
