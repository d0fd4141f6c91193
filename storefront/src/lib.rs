//! The public site: what a visitor reads before signing up.
#![forbid(unsafe_code)]

use maud::html;
use poem::{handler, Request, Response};
use switchboard_web::{Nav, Page, PageContext};

/// `GET /`: what Switchboard's hosted PBX service is.
#[handler]
pub fn home(req: &Request) -> Response {
    let ctx = PageContext::of(req);
    Page {
        title: "Hosted PBX",
        nav: Nav::Storefront,
        ctx: &ctx,
    }
    .respond(html! {
        section.hero {
            h1 { "Your own phone system, hosted and looked after." }
            p {
                "A complete Asterisk PBX for your business — extensions, voicemail, "
                "ring groups and phone numbers — running in our data centre. "
                "Prepaid calling, a control panel for your balance and your calls, "
                "and people who answer when you open a ticket."
            }
            @if ctx.user().is_none() {
                p { a.button href="/sign-in" { "Sign in to your control panel" } }
            }
        }
        div.cards {
            div.card {
                h2 { "Ready in minutes" }
                p.muted { "Pick a plan and pay; your PBX is provisioned and its credentials are emailed to you." }
            }
            div.card {
                h2 { "Pay for what you use" }
                p.muted { "One prepaid balance for all your PBXs, with automatic top-ups and low-balance warnings." }
            }
            div.card {
                h2 { "See every call" }
                p.muted { "The last calls on your home page, and reports by extension for this month and the last." }
            }
        }
    })
}
