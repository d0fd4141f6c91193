//! The one GraphQL schema: every read and change of data goes through it,
//! whether it comes from a dashboard page (run in-process with the viewer's
//! identity) or from an API client.
#![forbid(unsafe_code)]

use async_graphql::{EmptySubscription, MergedObject, Schema};
use switchboard_core::db::Pool;

pub mod audit;
pub mod billing;
pub mod calls;
pub mod commerce;
pub mod guards;
pub mod gui_passwords;
pub mod limits;
mod mutation;
pub mod numbers;
mod overview;
pub mod pbxes;
pub mod people;
pub mod profile;
mod query;
pub mod rates;
pub mod services;
pub mod support;
pub mod types;

pub use commerce::Commerce;
pub use guards::Viewer;
pub use mutation::{Mutation, SessionToken};
pub use query::Query;

/// Every read.
#[derive(MergedObject, Default)]
pub struct QueryRoot(
    Query,
    commerce::CommerceQuery,
    rates::RatesQuery,
    calls::CallsQuery,
    people::PeopleQuery,
    audit::AuditQuery,
    support::SupportQuery,
    services::ServicesQuery,
    numbers::NumbersQuery,
);

/// Every change.
#[derive(MergedObject, Default)]
pub struct MutationRoot(
    Mutation,
    commerce::CommerceMutation,
    billing::BillingMutation,
    rates::RatesMutation,
    calls::CallsMutation,
    people::PeopleMutation,
    profile::ProfileMutation,
    support::SupportMutation,
    gui_passwords::GuiPasswordMutation,
    pbxes::PbxesMutation,
    services::ServicesMutation,
    numbers::NumbersMutation,
);

/// The schema type. Requests from outside go through [`execute`], which
/// applies the request limits.
pub type SwitchboardSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

pub use limits::{MAX_COMPLEXITY, MAX_DEPTH};

/// Builds the schema over a database pool, with the limits that apply
/// whenever a password is checked and what the storefront needs.
pub fn schema(
    pool: Pool,
    limits: switchboard_core::people::sign_in::Limits,
    commerce: Commerce,
) -> SwitchboardSchema {
    with_data(builder(), pool, limits, commerce)
}

/// The same schema, over the same data, for operation texts [`schema`]
/// has already accepted: before running one it checks only what the
/// schema's limits need (depth, complexity, fragment cycles), not every
/// rule of the specification again. Pages run a few fixed query texts,
/// and checking the client home's against every rule on each request was
/// about a tenth of the server's own work for that page.
///
/// Only texts written in Switchboard belong here: the pages' (see web's
/// `operations`), each once the strict schema ran it without an error. An
/// API client's text always goes through [`schema`]. The arguments a text
/// is run with are still checked as the resolvers read them, so a value of
/// the wrong type is refused here too, as an error of that field.
pub fn schema_for_accepted_texts(
    pool: Pool,
    limits: switchboard_core::people::sign_in::Limits,
    commerce: Commerce,
) -> SwitchboardSchema {
    let fast = builder().validation_mode(async_graphql::ValidationMode::Fast);
    with_data(fast, pool, limits, commerce)
}

/// `builder` over what every resolver may ask the context for.
fn with_data(
    builder: async_graphql::SchemaBuilder<QueryRoot, MutationRoot, EmptySubscription>,
    pool: Pool,
    limits: switchboard_core::people::sign_in::Limits,
    commerce: Commerce,
) -> SwitchboardSchema {
    builder.data(pool).data(limits).data(commerce).finish()
}

/// Runs `request` on `schema`: what the API, the console and every page
/// call. The request is first held to [`limits`] (size, shape, NUL bytes;
/// refused whole, before anything runs), and the answer carries at most
/// [`limits::MAX_ERRORS`] errors. Only this applies those limits: anything
/// that takes requests from outside runs them here, never with
/// `Schema::execute` directly.
///
/// Boxed, and not generic, so that the schema's execution (every resolver
/// and everything it awaits, down to Stripe's client) is compiled once, in
/// this crate. An optimised build shares no generic code between crates,
/// and an `async` body counts as generic: a future awaited in another crate
/// is compiled again there, so each crate that awaited `Schema::execute`
/// used to compile the whole schema again.
pub fn execute(
    schema: &SwitchboardSchema,
    mut request: async_graphql::Request,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = async_graphql::Response> + Send + '_>> {
    Box::pin(async move {
        if let Err(refusal) = limits::admit(&mut request) {
            return async_graphql::Response::from_errors(vec![refusal]);
        }
        let mut response = schema.execute(request).await;
        limits::cap_errors(&mut response.errors);
        response
    })
}

/// The schema in SDL, as `schema.graphql` holds it.
pub fn sdl() -> String {
    builder().finish().sdl()
}

fn builder() -> async_graphql::SchemaBuilder<QueryRoot, MutationRoot, EmptySubscription> {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        EmptySubscription,
    )
    .limit_depth(MAX_DEPTH)
    .limit_complexity(MAX_COMPLEXITY)
    .limit_directives(limits::MAX_DIRECTIVES)
}

fn pool<'a>(ctx: &async_graphql::Context<'a>) -> async_graphql::Result<&'a Pool> {
    ctx.data::<Pool>()
}

/// Logs an unexpected failure with its detail and tells the client only that
/// something went wrong.
fn internal(error: impl std::fmt::Display) -> async_graphql::Error {
    tracing::error!(%error, "GraphQL operation failed");
    async_graphql::Error::new("Something went wrong on our side; it has been logged.")
}
