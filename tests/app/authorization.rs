//! The authorization matrix: every field of the roots and of the objects that
//! reach into the database, with the roles allowed to use it, checked for
//! every role (also with a one-time password still to replace, and for a
//! reseller acting on a sub-account). An allowed role must get a full
//! answer; any other must be turned away by a guard. And every change staff
//! or admins make must leave an audit record.
//!
//! To add a field: add a [`Row`] to [`matrix`] with an operation that
//! succeeds for every allowed role (placeholders in braces are filled per
//! viewer by [`World::fill`]), or, for a plain value read with its parent, add
//! it to [`READ_WITH_PARENT`].

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use diesel::{ExpressionMethods, QueryDsl};
use switchboard_core::people::two_factor;
use switchboard_core::schema::{audit_log, orders, pbxes};
use switchboard_core::{AccountId, AccountKind, Role};
use switchboard_graphql::Viewer;

use crate::harness::TestApp;

const ANONYMOUS: &str = "anonymous";
const CLIENT: &str = "client";
const RESELLER: &str = "reseller";
const STAFF: &str = "staff";
const ADMIN: &str = "admin";

const ANYONE: &[&str] = &[ANONYMOUS, CLIENT, RESELLER, STAFF, ADMIN];
const SIGNED_IN: &[&str] = &[CLIENT, RESELLER, STAFF, ADMIN];
const CUSTOMERS: &[&str] = &[CLIENT, RESELLER];
const COMPANY: &[&str] = &[STAFF, ADMIN];
const ADMINS: &[&str] = &[ADMIN];

/// Besides the roots, the objects whose every field is in the matrix or read
/// with its parent.
const CHECKED_TYPES: [&str; 9] = [
    "Account",
    "Order",
    "Pbx",
    "CallingPlan",
    "Plan",
    "User",
    "Ticket",
    "ServiceOrder",
    "PhoneNumber",
];

/// Fields that are plain values of their parent: whoever may read the parent
/// may read them, and they do no work of their own.
const READ_WITH_PARENT: &[&str] = &[
    "Account.id",
    "Account.name",
    "Account.kind",
    "Account.currency",
    "Account.standing",
    "Account.turnedOff",
    "Account.turnedOffReason",
    "Account.turnedOffAt",
    "Account.balance",
    "Account.lowBalanceThreshold",
    "Account.creditLimit",
    "Account.timeZone",
    "Account.contact",
    "Account.parentId",
    "Account.createdAt",
    "Account.standingSince",
    "Account.savedCard",
    "Account.autoReplenish",
    "Account.topUpLimits",
    "Order.id",
    "Order.kind",
    "Order.state",
    "Order.total",
    "Order.gateway",
    "Order.accountId",
    "Order.createdAt",
    "Order.paidAt",
    "Pbx.id",
    "Pbx.state",
    "Pbx.hostname",
    "Pbx.label",
    "Pbx.accountId",
    "Pbx.createdAt",
    "Pbx.activatedAt",
    "CallingPlan.id",
    "CallingPlan.name",
    "CallingPlan.currency",
    "CallingPlan.inboundPerMinute",
    "CallingPlan.createdAt",
    "Plan.id",
    "Plan.slug",
    "Plan.name",
    "Plan.description",
    "Plan.setupFee",
    "Plan.monthlyFee",
    "Plan.firstPayment",
    "Plan.startingCreditChoices",
    "Plan.includedExtensions",
    "Plan.active",
    "Plan.position",
    "User.id",
    "User.username",
    "User.role",
    "User.mustChangePassword",
    "User.email",
    "User.pendingEmail",
    "Ticket.id",
    "Ticket.subject",
    "Ticket.category",
    "Ticket.state",
    "Ticket.accountId",
    "Ticket.pbxId",
    "Ticket.openedBy",
    "Ticket.createdAt",
    "Ticket.updatedAt",
    "Ticket.closedAt",
    "ServiceOrder.id",
    "ServiceOrder.name",
    "ServiceOrder.serviceId",
    "ServiceOrder.accountId",
    "ServiceOrder.pbxId",
    "ServiceOrder.oneTimeFee",
    "ServiceOrder.monthlyFee",
    "ServiceOrder.state",
    "ServiceOrder.orderedAt",
    "ServiceOrder.completedAt",
    "ServiceOrder.cancelledAt",
    "ServiceOrder.endsAt",
    "ServiceOrder.nextChargeAt",
    "PhoneNumber.id",
    "PhoneNumber.e164",
    "PhoneNumber.npa",
    "PhoneNumber.nxx",
    "PhoneNumber.rateCenter",
    "PhoneNumber.state",
    "PhoneNumber.city",
    "PhoneNumber.lata",
    "PhoneNumber.carrier",
    "PhoneNumber.tier",
    "PhoneNumber.setupFee",
    "PhoneNumber.monthlyFee",
    "PhoneNumber.status",
    "PhoneNumber.pbxId",
    "PhoneNumber.orderedAt",
    "PhoneNumber.activatedAt",
    "PhoneNumber.quarantinedUntil",
];

/// Fields open to a user who must still replace a one-time password: what
/// they need to replace it.
const BEFORE_PASSWORD_CHANGE: &[&str] = &["Query.viewer", "Mutation.changePassword"];

/// One field, an operation that uses it, and who may.
struct Row {
    /// `Type.field`, as the schema names it.
    field: &'static str,
    operation: &'static str,
    allowed: &'static [&'static str],
}

const fn row(
    field: &'static str,
    operation: &'static str,
    allowed: &'static [&'static str],
) -> Row {
    Row {
        field,
        operation,
        allowed,
    }
}

/// `{account}` is an account the viewer may see (their own, a reseller's
/// sub-account, any for staff), `{ticket}` a ticket of that account,
/// `{order}` an order of the viewer's own awaiting payment (a client's for
/// staff), `{pbx}` a PBX of a client with a CDR source, `{failed_pbx}` a new
/// failed PBX each time, `{unique}` a new word each time, `{password}` the
/// viewer's password, `{spare_account}` a new account each time,
/// `{off_account}` a new account turned off; the services' placeholders
/// are `crate::services::fill_placeholders`'s.
fn matrix() -> Vec<Row> {
    vec![
        row(
            "Query.viewer",
            "{ viewer { user { username } } }",
            SIGNED_IN,
        ),
        row(
            "Query.account",
            r#"{ account(id: "{account}") { name } }"#,
            SIGNED_IN,
        ),
        row(
            "Query.accounts",
            "{ accounts { edges { node { name } } } }",
            COMPANY,
        ),
        row(
            "Query.emails",
            "{ emails { edges { node { subject } } } }",
            COMPANY,
        ),
        row("Query.plans", "{ plans { slug } }", ANYONE),
        row("Query.plan", r#"{ plan(slug: "matrix") { name } }"#, ANYONE),
        row("Query.allPlans", "{ allPlans { slug } }", COMPANY),
        row(
            "Query.order",
            r#"{ order(id: "{order}") { state } }"#,
            SIGNED_IN,
        ),
        row(
            "Query.orders",
            "{ orders { edges { node { state } } } }",
            COMPANY,
        ),
        row(
            "Query.pbxes",
            "{ pbxes { edges { node { state } } } }",
            COMPANY,
        ),
        row(
            "Query.unratedCalls",
            "{ unratedCalls { edges { node { to } } } }",
            COMPANY,
        ),
        row(
            "Query.cdrRejects",
            "{ cdrRejects { edges { node { reason } } } }",
            COMPANY,
        ),
        row("Query.callingPlans", "{ callingPlans { name } }", COMPANY),
        row(
            "Query.callingPlan",
            r#"{ callingPlan(id: "{calling_plan}") { name } }"#,
            COMPANY,
        ),
        row(
            "Query.previewRateImport",
            r#"{ previewRateImport(input: { callingPlanId: "{calling_plan}", csv: "prefix,per_minute\n1,0.01" }) { errorCount } }"#,
            ADMINS,
        ),
        row(
            "Account.recentEntries",
            r#"{ account(id: "{account}") { recentEntries { kind } } }"#,
            SIGNED_IN,
        ),
        row(
            "Account.orders",
            r#"{ account(id: "{account}") { orders { state } } }"#,
            SIGNED_IN,
        ),
        row(
            "Account.recentCalls",
            r#"{ account(id: "{account}") { recentCalls { to } } }"#,
            SIGNED_IN,
        ),
        row(
            "Account.standingHistory",
            r#"{ account(id: "{account}") { standingHistory { cause } } }"#,
            SIGNED_IN,
        ),
        row(
            "Account.replenishments",
            r#"{ account(id: "{account}") { replenishments { state } } }"#,
            SIGNED_IN,
        ),
        row(
            "Account.recurringCharges",
            r#"{ account(id: "{account}") { recurringCharges { description } } }"#,
            SIGNED_IN,
        ),
        row(
            "Account.statement",
            r#"{ account(id: "{account}") { statement { month } } }"#,
            SIGNED_IN,
        ),
        row(
            "Account.report",
            r#"{ account(id: "{account}") { report { month } } }"#,
            SIGNED_IN,
        ),
        row(
            "Account.callsCsv",
            r#"{ account(id: "{account}") { callsCsv } }"#,
            SIGNED_IN,
        ),
        row(
            "Account.pbxes",
            r#"{ account(id: "{account}") { pbxes { state } } }"#,
            SIGNED_IN,
        ),
        row(
            "Order.lines",
            r#"{ order(id: "{order}") { lines { description } } }"#,
            SIGNED_IN,
        ),
        row(
            "Order.pbx",
            r#"{ order(id: "{order}") { pbx { state } } }"#,
            SIGNED_IN,
        ),
        row(
            "Plan.callingPlanId",
            "{ allPlans { callingPlanId } plans { callingPlanId } }",
            COMPANY,
        ),
        row(
            "Query.pbx",
            r#"{ pbx(id: "{own_pbx}") { state } }"#,
            SIGNED_IN,
        ),
        row(
            "Query.email",
            r#"{ email(id: "{email}") { subject } }"#,
            COMPANY,
        ),
        row(
            "Pbx.account",
            r#"{ account(id: "{account}") { pbxes { account { name } } } }"#,
            SIGNED_IN,
        ),
        row(
            "Pbx.plan",
            r#"{ account(id: "{account}") { pbxes { plan { name } } } }"#,
            SIGNED_IN,
        ),
        row(
            "Pbx.diallingRules",
            r#"{ account(id: "{account}") { pbxes { diallingRules { countryCode trunks } } } }"#,
            COMPANY,
        ),
        row(
            "Account.calls",
            r#"{ account(id: "{account}") { calls(first: 5) { edges { node { cost { micros } billedSeconds } } } } }"#,
            SIGNED_IN,
        ),
        row(
            "Pbx.health",
            r#"{ account(id: "{account}") { pbxes { health { state } } } }"#,
            SIGNED_IN,
        ),
        row(
            "Pbx.lastError",
            r#"{ account(id: "{account}") { pbxes { lastError } } }"#,
            COMPANY,
        ),
        row(
            "CallingPlan.rates",
            r#"{ callingPlan(id: "{calling_plan}") { rates { prefix } } }"#,
            COMPANY,
        ),
        row(
            "CallingPlan.rateCount",
            r#"{ callingPlan(id: "{calling_plan}") { rateCount } }"#,
            COMPANY,
        ),
        row(
            "CallingPlan.history",
            r#"{ callingPlan(id: "{calling_plan}") { history(prefix: "1") { prefix } } }"#,
            COMPANY,
        ),
        row(
            "CallingPlan.exportCsv",
            r#"{ callingPlan(id: "{calling_plan}") { exportCsv } }"#,
            COMPANY,
        ),
        row(
            "CallingPlan.priceCall",
            r#"{ callingPlan(id: "{calling_plan}") { priceCall(number: "15550100100", seconds: 60) { prefix } } }"#,
            COMPANY,
        ),
        row(
            "Mutation.setDiallingRules",
            r#"mutation { setDiallingRules(pbxId: "{pbx}", rules: { countryCode: "1", nationalPrefix: "1", internationalPrefix: "011", outsideLine: "9", areaCode: "212", serviceNumbers: ["911"], trunks: ["PJSIP/voipms"] }) { trunks } }"#,
            ADMINS,
        ),
        row(
            "Mutation.issueCdrToken",
            r#"mutation { issueCdrToken(pbxId: "{pbx}") }"#,
            ADMINS,
        ),
        row(
            "Mutation.priceUnratedCalls",
            r#"mutation { priceUnratedCalls(pbxId: "{pbx}") { priced } }"#,
            ADMINS,
        ),
        row(
            "Mutation.importCdrCsv",
            r#"mutation { importCdrCsv(input: { pbxId: "{pbx}", csv: "" }) { accepted } }"#,
            ADMINS,
        ),
        row(
            "Mutation.setCdrSource",
            r#"mutation { setCdrSource(pbxId: "{pbx}", url: "mysql://reader:secret@127.0.0.1:3306/asteriskcdrdb") }"#,
            ADMINS,
        ),
        row(
            "Mutation.pullCdrs",
            r#"mutation { pullCdrs(pbxId: "{pbx}") }"#,
            COMPANY,
        ),
        row(
            "Mutation.createCallingPlan",
            r#"mutation { createCallingPlan(name: "Matrix {unique}") { id } }"#,
            ADMINS,
        ),
        row(
            "Mutation.importRates",
            r#"mutation { importRates(input: { callingPlanId: "{calling_plan}", csv: "prefix,per_minute\n1,0.01" }) { added } }"#,
            ADMINS,
        ),
        row(
            "Mutation.signUp",
            r#"mutation { signUp(input: { plan: "matrix", username: "signup{unique}", password: "a-good-password", passwordConfirmation: "a-good-password", contactName: "M", email: "signup{unique}@example.com", phone: "+1 555 010 0199", address: "1 Main Street, Springfield", acceptTerms: true, checkoutToken: "matrix-checkout-{unique}" }) { paymentUrl } }"#,
            ANYONE,
        ),
        row(
            "Mutation.payOrder",
            r#"mutation { payOrder(orderId: "{order}") }"#,
            CUSTOMERS,
        ),
        row(
            "Mutation.payWithTestCard",
            r#"mutation { payWithTestCard(orderId: "{order}", cardNumber: "4000000000000002") { outcome } }"#,
            CUSTOMERS,
        ),
        row(
            "Mutation.addFunds",
            r#"mutation { addFunds(amount: "25") { paymentUrl } }"#,
            CUSTOMERS,
        ),
        row(
            "Mutation.setAutoReplenish",
            r#"mutation { setAutoReplenish(input: { enabled: false, threshold: "5", amount: "25", monthlyCap: "100" }) { id } }"#,
            CUSTOMERS,
        ),
        row(
            "Mutation.saveTestCard",
            r#"mutation { saveTestCard(cardNumber: "4242424242424242") { id } }"#,
            CUSTOMERS,
        ),
        row(
            "Mutation.replaceCard",
            r#"mutation { replaceCard(requestKey: "matrix-request-key-0001") { setupUrl } }"#,
            CUSTOMERS,
        ),
        row(
            "Mutation.removeSavedCard",
            "mutation { removeSavedCard { id } }",
            CUSTOMERS,
        ),
        row(
            "Mutation.retryProvisioning",
            r#"mutation { retryProvisioning(pbxId: "{failed_pbx}") { state } }"#,
            COMPANY,
        ),
        row(
            "Mutation.createPlan",
            r#"mutation { createPlan(input: { slug: "matrix-{unique}", name: "Matrix {unique}", setupFee: "0", monthlyFee: "0", includedExtensions: 1 }) { id } }"#,
            ADMINS,
        ),
        row(
            "Mutation.updatePlan",
            r#"mutation { updatePlan(id: "{plan}", input: { slug: "matrix", name: "Matrix", setupFee: "1", monthlyFee: "2", includedExtensions: 3 }) { id } }"#,
            ADMINS,
        ),
        row(
            "Mutation.adjustBalance",
            r#"mutation { adjustBalance(input: { accountId: "{account}", amount: "1", memo: "m", idempotencyKey: "matrix-{unique}" }) { replayed } }"#,
            ADMINS,
        ),
        row(
            "Query.staffUsers",
            "{ staffUsers { username role } }",
            ADMINS,
        ),
        row(
            "Query.twoFactor",
            "{ twoFactor { enabled recoveryCodesLeft } }",
            SIGNED_IN,
        ),
        row(
            "Query.auditLog",
            r#"{ auditLog(accountId: "{account}", first: 5) { edges { node { action ip } } } }"#,
            ADMINS,
        ),
        row("Query.auditKinds", "{ auditKinds }", ADMINS),
        row(
            "Query.callingStatus",
            "{ callingStatus(trouble: true) { edges { node { state } } } }",
            COMPANY,
        ),
        row(
            "Account.users",
            r#"{ account(id: "{account}") { users { username twoFactor } } }"#,
            COMPANY,
        ),
        row(
            "Account.ledgerEntries",
            r#"{ account(id: "{account}") { ledgerEntries(first: 5) { edges { node { kind amount { micros } } } } } }"#,
            SIGNED_IN,
        ),
        row(
            "Account.callingPlanId",
            r#"{ account(id: "{account}") { callingPlanId } }"#,
            COMPANY,
        ),
        row(
            "Pbx.liveCalls",
            r#"{ account(id: "{account}") { pbxes { liveCalls { from } } } }"#,
            COMPANY,
        ),
        row(
            "CallingPlan.plans",
            r#"{ callingPlan(id: "{calling_plan}") { plans { slug } } }"#,
            COMPANY,
        ),
        row(
            "CallingPlan.accounts",
            r#"{ callingPlan(id: "{calling_plan}") { accounts { name } } }"#,
            COMPANY,
        ),
        row(
            "Mutation.updateAccount",
            r#"mutation { updateAccount(id: "{account}", input: { name: "Edited {unique}", kind: RETAIL, contactName: "C", email: "edited{unique}@example.com", creditLimit: "1", lowBalanceThreshold: "2", callingPlanId: "{calling_plan}" }) { name } }"#,
            ADMINS,
        ),
        row(
            "Mutation.setOneTimePassword",
            r#"mutation { setOneTimePassword(userId: "{target_user}", password: "one-time-password-{unique}") }"#,
            ADMINS,
        ),
        row(
            "Mutation.sendPasswordReset",
            r#"mutation { sendPasswordReset(userId: "{target_user}") }"#,
            ADMINS,
        ),
        row(
            "Mutation.resetPassword",
            r#"mutation { resetPassword(token: "{reset_token}", newPassword: "a-new-password-{unique}") }"#,
            ANYONE,
        ),
        row(
            "Mutation.revealPbxPassword",
            r#"mutation { revealPbxPassword(pbxId: "{pbx}", password: "{password}") }"#,
            COMPANY,
        ),
        row(
            "Mutation.createStaffUser",
            r#"mutation { createStaffUser(input: { username: "staff{unique}", email: "staff{unique}@example.com", role: STAFF, oneTimePassword: "a-good-password" }) { id } }"#,
            ADMINS,
        ),
        row(
            "Mutation.updateStaffUser",
            r#"mutation { updateStaffUser(userId: "{staff_user}", disabled: true) { disabled } }"#,
            ADMINS,
        ),
        row(
            "Mutation.startTwoFactor",
            "mutation { startTwoFactor { secret } {two_factor_off}}",
            SIGNED_IN,
        ),
        row(
            "Mutation.confirmTwoFactor",
            r#"mutation { confirmTwoFactor(code: "{totp_code}") }"#,
            SIGNED_IN,
        ),
        row(
            "Mutation.newRecoveryCodes",
            r#"mutation { newRecoveryCodes(password: "{password}") {with_two_factor}}"#,
            SIGNED_IN,
        ),
        row(
            "Mutation.turnOffTwoFactor",
            r#"mutation { turnOffTwoFactor(password: "{password}") }"#,
            SIGNED_IN,
        ),
        row(
            "Mutation.setRate",
            r#"mutation { setRate(input: { callingPlanId: "{calling_plan}", prefix: "1", perMinute: "0.02{unique}7" }) { prefix } }"#,
            ADMINS,
        ),
        row(
            "Mutation.updateProfile",
            r#"mutation { updateProfile(input: { contactName: "Matrix {unique}", company: "Matrix", phone: "+1 555 010 0100", address: "1 Main Street", timeZone: "Europe/London" }) { id } }"#,
            CUSTOMERS,
        ),
        row(
            "Mutation.requestEmailChange",
            r#"mutation { requestEmailChange(newEmail: "moved{unique}@example.com", currentPassword: "{password}") }"#,
            CUSTOMERS,
        ),
        row(
            "Mutation.confirmEmailChange",
            r#"mutation { confirmEmailChange(token: "{email_change_token}") }"#,
            ANYONE,
        ),
        row(
            "Mutation.requestPasswordRecovery",
            r#"mutation { requestPasswordRecovery(login: "nobody{unique}@example.com") }"#,
            ANYONE,
        ),
        row(
            "Query.ticket",
            r#"{ ticket(id: "{ticket}") { subject } }"#,
            SIGNED_IN,
        ),
        row(
            "Query.tickets",
            "{ tickets(state: OPEN, unassigned: true) { edges { node { subject } } } }",
            COMPANY,
        ),
        row(
            "Query.ticketAssignees",
            "{ ticketAssignees { username } }",
            COMPANY,
        ),
        row(
            "Account.tickets",
            r#"{ account(id: "{account}") { tickets(first: 5) { edges { node { subject } } } } }"#,
            SIGNED_IN,
        ),
        row(
            "Ticket.messages",
            r#"{ ticket(id: "{ticket}") { messages { body author internal } } }"#,
            SIGNED_IN,
        ),
        row(
            "Ticket.assignee",
            r#"{ ticket(id: "{ticket}") { assignee { username } } }"#,
            COMPANY,
        ),
        row(
            "Ticket.account",
            r#"{ ticket(id: "{ticket}") { account { name } } }"#,
            SIGNED_IN,
        ),
        row(
            "Mutation.openTicket",
            r#"mutation { openTicket(input: { subject: "Matrix {unique}", category: OTHER, message: "Hello" }) { id } }"#,
            CUSTOMERS,
        ),
        row(
            "Mutation.replyToTicket",
            r#"mutation { replyToTicket(ticketId: "{ticket}", message: "Matrix reply {unique}") { state } }"#,
            SIGNED_IN,
        ),
        row(
            "Mutation.addTicketNote",
            r#"mutation { addTicketNote(ticketId: "{ticket}", note: "Matrix note {unique}") { state } }"#,
            COMPANY,
        ),
        row(
            "Mutation.assignTicket",
            r#"mutation { assignTicket(ticketId: "{ticket}", assigneeId: "{staff_user}") { id } }"#,
            COMPANY,
        ),
        row(
            "Mutation.closeTicket",
            r#"mutation { closeTicket(ticketId: "{ticket}") { state } }"#,
            COMPANY,
        ),
        row(
            "Query.numberStates",
            "{ numberStates { state available } }",
            SIGNED_IN,
        ),
        row(
            "Query.numberRateCenters",
            r#"{ numberRateCenters(state: "IL") { rateCenter available } }"#,
            SIGNED_IN,
        ),
        row(
            "Query.availableNumbers",
            r#"{ availableNumbers(areaCode: "312", first: 5) { edges { node { e164 } } } }"#,
            SIGNED_IN,
        ),
        row(
            "Query.numbers",
            "{ numbers(status: ORDERED, first: 5) { edges { node { e164 } } } }",
            COMPANY,
        ),
        row(
            "Query.numbersAwaitingConfiguration",
            "{ numbersAwaitingConfiguration { e164 } }",
            COMPANY,
        ),
        row(
            "Query.phoneNumber",
            r#"{ phoneNumber(id: "{held_number}") { e164 status } }"#,
            SIGNED_IN,
        ),
        row("Query.numberTiers", "{ numberTiers { name } }", COMPANY),
        row(
            "Query.numberImportPreview",
            r#"{ numberImportPreview(csv: "number,rate_center,state,setup_fee,monthly_fee\n3125550100,CHICAGO,IL,1,1\n") { rows } }"#,
            COMPANY,
        ),
        row(
            "PhoneNumber.accountId",
            r#"{ phoneNumber(id: "{held_number}") { accountId } }"#,
            COMPANY,
        ),
        row(
            "PhoneNumber.lastError",
            r#"{ phoneNumber(id: "{held_number}") { lastError } }"#,
            COMPANY,
        ),
        row(
            "PhoneNumber.history",
            r#"{ phoneNumber(id: "{held_number}") { history { kind } } }"#,
            COMPANY,
        ),
        row(
            "Account.numbers",
            r#"{ account(id: "{account}") { numbers { e164 } } }"#,
            SIGNED_IN,
        ),
        row(
            "Account.inboundCallsByNumber",
            r#"{ account(id: "{account}") { inboundCallsByNumber(month: "2026-11") { e164 calls } } }"#,
            SIGNED_IN,
        ),
        row(
            "Mutation.importNumbers",
            r#"mutation { importNumbers(csv: "number,rate_center,state,setup_fee,monthly_fee\n{free_e164},CHICAGO,IL,1,1\n") { new } }"#,
            COMPANY,
        ),
        row(
            "Mutation.setNumberTier",
            r#"mutation { setNumberTier(name: "matrix", setupFee: "1", monthlyFee: "2") { name } }"#,
            COMPANY,
        ),
        row(
            "Mutation.orderNumbers",
            r#"mutation { orderNumbers(pbxId: "{own_pbx}", numberIds: ["{free_number}"], requestKey: "matrix-{unique}") { id } }"#,
            CUSTOMERS,
        ),
        row(
            "Mutation.releaseNumber",
            r#"mutation { releaseNumber(numberId: "{held_number}") { status } }"#,
            CUSTOMERS,
        ),
        row(
            "Mutation.activateNumber",
            r#"mutation { activateNumber(numberId: "{held_number}") { status } }"#,
            COMPANY,
        ),
        row(
            "Mutation.turnAccountOff",
            r#"mutation { turnAccountOff(accountId: "{spare_account}", reason: "matrix") { turnedOff } }"#,
            ADMINS,
        ),
        row(
            "Mutation.turnAccountOn",
            r#"mutation { turnAccountOn(accountId: "{off_account}", reason: "matrix") { turnedOff } }"#,
            ADMINS,
        ),
        row(
            "Mutation.changePbxPassword",
            r#"mutation { changePbxPassword(pbxId: "{own_pbx}", generate: true) { password change { state } } }"#,
            &[CLIENT, RESELLER, ADMIN],
        ),
        row(
            "Pbx.passwordChange",
            r#"{ pbx(id: "{own_pbx}") { passwordChange { state } } }"#,
            SIGNED_IN,
        ),
        row("Query.services", "{ services { name } }", SIGNED_IN),
        row("Query.allServices", "{ allServices { name } }", COMPANY),
        row(
            "Query.serviceOrder",
            r#"{ serviceOrder(id: "{own_service_order}") { state } }"#,
            SIGNED_IN,
        ),
        row(
            "Query.serviceOrders",
            "{ serviceOrders(awaitingStaff: true) { edges { node { name } } } }",
            COMPANY,
        ),
        row(
            "Account.serviceOrders",
            r#"{ account(id: "{account}") { serviceOrders { state } } }"#,
            SIGNED_IN,
        ),
        row(
            "ServiceOrder.account",
            r#"{ serviceOrder(id: "{own_service_order}") { account { name } } }"#,
            SIGNED_IN,
        ),
        row(
            "Mutation.orderService",
            r#"mutation { orderService(input: { serviceId: "{service}", requestKey: "matrix-{unique}" }) { state } }"#,
            CUSTOMERS,
        ),
        row(
            "Mutation.cancelService",
            r#"mutation { cancelService(serviceOrderId: "{own_service_order}") { endsAt } }"#,
            CUSTOMERS,
        ),
        row(
            "Mutation.completeServiceOrder",
            r#"mutation { completeServiceOrder(serviceOrderId: "{waiting_service_order}") { state } }"#,
            COMPANY,
        ),
        row(
            "Mutation.createService",
            r#"mutation { createService(input: { name: "Matrix {unique}", oneTimeFee: "0", monthlyFee: "1", attachesTo: ACCOUNT, needsStaff: false }) { id } }"#,
            COMPANY,
        ),
        row(
            "Mutation.updateService",
            r#"mutation { updateService(id: "{service}", input: { name: "Matrix free", oneTimeFee: "0", monthlyFee: "0", attachesTo: ACCOUNT, needsStaff: false }) { id } }"#,
            COMPANY,
        ),
        row(
            "Account.pbxUsage",
            r#"{ account(id: "{account}") { pbxUsage(monthsBack: 1) { month pbxes { label } total { total { micros } } } } }"#,
            SIGNED_IN,
        ),
        row(
            "Mutation.orderPbx",
            r#"mutation { orderPbx(plan: "matrix-free", requestKey: "matrix-order-key-{unique}") { new pbx { state } } }"#,
            CUSTOMERS,
        ),
        row(
            "Mutation.setPbxLabel",
            r#"mutation { setPbxLabel(pbxId: "{own_pbx}", label: "Matrix {unique}") { label } }"#,
            SIGNED_IN,
        ),
        row(
            "Mutation.changePassword",
            r#"mutation { changePassword(currentPassword: "{password}", newPassword: "{password}-{unique}") }"#,
            SIGNED_IN,
        ),
    ]
}

/// Someone asking, and what their placeholders stand for.
#[derive(Clone)]
struct Asker {
    /// The role as the matrix names it.
    role: &'static str,
    /// How the report names this asker.
    label: String,
    viewer: Viewer,
    /// Still has a one-time password to replace.
    one_time_password: bool,
    account: AccountId,
    order: String,
    password: String,
    /// A PBX of the account this asker sees.
    own_pbx: i64,
    /// A ticket of the account this asker sees.
    ticket: i64,
}

/// Accounts, orders, PBXs and plans the operations need, and who asks.
struct World {
    app: TestApp,
    askers: Vec<Asker>,
    plan: i64,
    calling_plan: i64,
    pbx: i64,
    client_account: AccountId,
    /// A message in the outbox.
    email: i64,
    counter: AtomicUsize,
}

impl World {
    async fn new() -> World {
        use diesel_async::RunQueryDsl;
        let app = TestApp::spawn().await;
        let client_account = app
            .account("Client Co", AccountKind::Retail, None, 5_000_000)
            .await;
        let reseller_account = app
            .account("Reseller Co", AccountKind::Wholesale, None, 0)
            .await;
        let sub_account = app
            .account("Sub Co", AccountKind::Retail, Some(reseller_account), 0)
            .await;
        let plan = matrix_plan(&app).await;
        free_plan(&app).await;
        let calling_plan = {
            let mut conn = app.conn().await;
            switchboard_core::calls::calling_plans::create(&mut conn, "Matrix", "USD", None)
                .await
                .expect("a calling plan")
        };
        let mut pbx = 0;
        let mut orders_of = Vec::new();
        let mut pbxes_of = Vec::new();
        let mut tickets_of = Vec::new();
        for (n, account) in [client_account, reseller_account, sub_account]
            .into_iter()
            .enumerate()
        {
            orders_of.push(order_of(&app, account, plan, n).await);
            let id = a_pbx(&app, account, plan, "active").await;
            // Running at the controller, so its GUI password can be changed.
            diesel::update(pbxes::table.find(id))
                .set(pbxes::controller_id.eq(format!("matrix-{id}")))
                .execute(&mut app.conn().await)
                .await
                .expect("a controller id");
            pbxes_of.push(id);
            tickets_of.push(a_ticket(&app, account, n).await);
            if account == client_account {
                pbx = id;
            }
        }
        let email = {
            use diesel_async::RunQueryDsl;
            let mut conn = app.conn().await;
            switchboard_core::outbox::queue(
                &mut conn,
                &switchboard_core::outbox::Email {
                    to: "someone@example.com".into(),
                    subject: "Matrix".into(),
                    text: "Hello".into(),
                    html: "<p>Hello</p>".into(),
                },
                None,
            )
            .await
            .expect("a message");
            switchboard_core::schema::emails::table
                .select(switchboard_core::schema::emails::id)
                .order(switchboard_core::schema::emails::id.desc())
                .first::<i64>(&mut conn)
                .await
                .expect("its id")
        };
        diesel::update(pbxes::table.find(pbx))
            .set(pbxes::gui_password_sealed.eq(app.state.key.encrypt(
                switchboard_core::commerce::pbxes::GUI_PASSWORD,
                "matrix-gui-password",
            )))
            .execute(&mut app.conn().await)
            .await
            .expect("a GUI password");
        diesel::update(pbxes::table.find(pbx))
            .set(pbxes::cdr_source_sealed.eq("v1:x"))
            .execute(&mut app.conn().await)
            .await
            .expect("a CDR source");
        unrated_call_that_now_has_a_rate(&app, plan, calling_plan, pbx).await;

        let mut askers = vec![Asker {
            role: ANONYMOUS,
            label: ANONYMOUS.into(),
            viewer: Viewer {
                user: None,
                ip: "192.0.2.1".into(),
            },
            one_time_password: false,
            account: client_account,
            order: orders_of[0].clone(),
            password: String::new(),
            own_pbx: pbxes_of[0],
            ticket: tickets_of[0],
        }];
        let people = [
            (
                CLIENT,
                Role::Client,
                Some(client_account),
                client_account,
                0,
            ),
            (
                RESELLER,
                Role::Reseller,
                Some(reseller_account),
                reseller_account,
                1,
            ),
            (STAFF, Role::Staff, None, client_account, 0),
            (ADMIN, Role::Admin, None, client_account, 0),
        ];
        for (n, (role, core_role, own, sees, order)) in people.into_iter().enumerate() {
            for one_time_password in [false, true] {
                let name = format!(
                    "matrix-{role}{}",
                    if one_time_password { "-otp" } else { "" }
                );
                let (id, password) = app.user(&name, core_role, own).await;
                let mut user = app.session_user(id).await;
                user.must_change_password = one_time_password;
                let ip = format!("192.0.2.{}", 10 + 2 * n + usize::from(one_time_password));
                let asker = Asker {
                    role,
                    label: name,
                    viewer: Viewer::signed_in(user, ip),
                    one_time_password,
                    account: sees,
                    order: orders_of[order].clone(),
                    password,
                    own_pbx: pbxes_of[order],
                    ticket: tickets_of[order],
                };
                if role == RESELLER && !one_time_password {
                    // A reseller acting on its sub-account.
                    let (id, password) = app.user("matrix-reseller-sub", core_role, own).await;
                    askers.push(Asker {
                        label: "matrix-reseller on a sub-account".into(),
                        viewer: Viewer::signed_in(app.session_user(id).await, "192.0.2.99"),
                        account: sub_account,
                        password,
                        own_pbx: pbxes_of[2],
                        ticket: tickets_of[2],
                        ..asker.clone()
                    });
                }
                askers.push(asker);
            }
        }
        World {
            app,
            askers,
            plan,
            calling_plan,
            pbx,
            client_account,
            email,
            counter: AtomicUsize::new(0),
        }
    }

    /// The operation with its placeholders filled for `asker`.
    async fn fill(&self, operation: &str, asker: &Asker) -> String {
        let mut text = operation
            .replace("{account}", &asker.account.0.to_string())
            .replace("{order}", &asker.order)
            .replace("{plan}", &self.plan.to_string())
            .replace("{calling_plan}", &self.calling_plan.to_string())
            .replace("{pbx}", &self.pbx.to_string())
            .replace("{own_pbx}", &asker.own_pbx.to_string())
            .replace("{ticket}", &asker.ticket.to_string())
            .replace("{email}", &self.email.to_string())
            .replace("{password}", &asker.password);
        while text.contains("{unique}") {
            let n = self.counter.fetch_add(1, Ordering::SeqCst);
            text = text.replacen("{unique}", &n.to_string(), 1);
        }
        while text.contains("{spare_account}") || text.contains("{off_account}") {
            let off = !text.contains("{spare_account}");
            let n = self.counter.fetch_add(1, Ordering::SeqCst);
            let account = self
                .app
                .account(&format!("Spare {n}"), AccountKind::Retail, None, 0)
                .await;
            if off {
                use diesel_async::RunQueryDsl;
                use switchboard_core::schema::accounts;
                diesel::update(accounts::table.find(account.0))
                    .set((
                        accounts::turned_off.eq(true),
                        accounts::turned_off_reason.eq("matrix"),
                        accounts::turned_off_at.eq(chrono::Utc::now()),
                    ))
                    .execute(&mut self.app.conn().await)
                    .await
                    .expect("turned off");
                text = text.replacen("{off_account}", &account.0.to_string(), 1);
            } else {
                text = text.replacen("{spare_account}", &account.0.to_string(), 1);
            }
        }
        while text.contains("{failed_pbx}") {
            let pbx = a_pbx(&self.app, self.client_account, self.plan, "failed").await;
            text = text.replacen("{failed_pbx}", &pbx.to_string(), 1);
        }
        while text.contains("{free_e164}") {
            let n = self.counter.fetch_add(1, Ordering::SeqCst);
            text = text.replacen("{free_e164}", &format!("+1312555{:04}", 1000 + n), 1);
        }
        while text.contains("{free_number}") || text.contains("{held_number}") {
            let held = !text.contains("{free_number}");
            let n = self.counter.fetch_add(1, Ordering::SeqCst);
            let id = a_number(&self.app, n, held.then_some((asker.account, asker.own_pbx))).await;
            let placeholder = if held {
                "{held_number}"
            } else {
                "{free_number}"
            };
            text = text.replacen(placeholder, &id.to_string(), 1);
        }
        if text.contains("{target_user}") {
            let n = self.counter.fetch_add(1, Ordering::SeqCst);
            let (user, _) = self
                .app
                .user(
                    &format!("matrix-target-{n}"),
                    Role::Client,
                    Some(self.client_account),
                )
                .await;
            text = text.replace("{target_user}", &user.0.to_string());
        }
        if text.contains("{staff_user}") {
            let n = self.counter.fetch_add(1, Ordering::SeqCst);
            let (user, _) = self
                .app
                .user(&format!("matrix-colleague-{n}"), Role::Staff, None)
                .await;
            text = text.replace("{staff_user}", &user.0.to_string());
        }
        if text.contains("{reset_token}") {
            let n = self.counter.fetch_add(1, Ordering::SeqCst);
            let (user, _) = self
                .app
                .user(
                    &format!("matrix-forgot-{n}"),
                    Role::Client,
                    Some(self.client_account),
                )
                .await;
            let mut conn = self.app.conn().await;
            let token = switchboard_core::people::password_resets::create(
                &mut conn,
                user,
                switchboard_core::people::password_resets::LIFETIME_HOURS,
            )
            .await
            .expect("a reset link");
            text = text.replace("{reset_token}", &token);
        }
        if text.contains("{email_change_token}") {
            let n = self.counter.fetch_add(1, Ordering::SeqCst);
            let name = format!("matrix-moving-{n}");
            let (user, _) = self
                .app
                .user(&name, Role::Client, Some(self.client_account))
                .await;
            let mut conn = self.app.conn().await;
            let token = switchboard_core::people::email_changes::request(
                &mut conn,
                user,
                &format!("{name}@example.com"),
                &switchboard_core::domain::Email::parse(&format!("{name}-moved@example.com"))
                    .expect("an address"),
            )
            .await
            .expect("a change asked for");
            text = text.replace("{email_change_token}", &token);
        }
        text = crate::services::fill_placeholders(&self.app, text, asker.account).await;
        let user = asker.viewer.user.as_ref().map(|u| u.user_id);
        if text.contains("{two_factor_off}") || text.contains("{totp_code}") {
            if let Some(user) = user {
                let mut conn = self.app.conn().await;
                two_factor::turn_off(&mut conn, user)
                    .await
                    .expect("turned off");
            }
            text = text.replace("{two_factor_off}", "");
        }
        if text.contains("{totp_code}") {
            let code = match user {
                Some(user) => {
                    let mut conn = self.app.conn().await;
                    let secret = two_factor::start(&mut conn, &self.app.state.key, user)
                        .await
                        .expect("started")
                        .expect("off before");
                    two_factor::code_at_step(&secret, two_factor::step_at(chrono::Utc::now()))
                }
                None => "000000".into(),
            };
            text = text.replace("{totp_code}", &code);
        }
        if text.contains("{with_two_factor}") {
            if let Some(user) = user {
                turn_on_two_factor(&self.app, user).await;
            }
            text = text.replace("{with_two_factor}", "");
        }
        text
    }

    async fn run(&self, operation: &str, asker: &Asker) -> async_graphql::Response {
        let operation = self.fill(operation, asker).await;
        self.app
            .state
            .schema
            .execute(async_graphql::Request::new(operation).data(asker.viewer.clone()))
            .await
    }
}

/// Turns two-factor sign-in on for `user` (a new secret, confirmed);
/// returns the secret.
pub async fn turn_on_two_factor(app: &TestApp, user: switchboard_core::UserId) -> Vec<u8> {
    let mut conn = app.conn().await;
    two_factor::turn_off(&mut conn, user).await.expect("off");
    let secret = two_factor::start(&mut conn, &app.state.key, user)
        .await
        .expect("started")
        .expect("off before");
    // A step before now: its code is in the window and leaves now's unused.
    let earlier = chrono::Utc::now() - chrono::Duration::seconds(30);
    let code = two_factor::code_at_step(&secret, two_factor::step_at(earlier));
    two_factor::confirm(&mut conn, &app.state.key, user, &code, chrono::Utc::now())
        .await
        .expect("confirmed");
    secret
}

/// A call of `pbx` that matched no rate when it came in, and a rate for it
/// since: pricing unrated calls has something to do.
async fn unrated_call_that_now_has_a_rate(app: &TestApp, plan: i64, calling_plan: i64, pbx: i64) {
    use diesel_async::RunQueryDsl;
    use switchboard_core::calls::{self, cdr};
    use switchboard_core::schema::plans;
    let mut conn = app.conn().await;
    diesel::update(plans::table.find(plan))
        .set(plans::calling_plan_id.eq(calling_plan))
        .execute(&mut conn)
        .await
        .expect("billed by the calling plan");
    let line = "\"\",\"201\",\"15550100100\",\"from-internal\",\"\",\"PJSIP/201-00000031\",\"PJSIP/voipms-00000032\",\"Dial\",\"\",\"2026-11-20 09:15:02\",\"2026-11-20 09:15:09\",\"2026-11-20 09:17:10\",128,121,\"ANSWERED\",\"DOCUMENTATION\",\"1763630102.31\",\"\"\n";
    let (records, _) = cdr::read_csv(line, &cdr::MASTER_CSV_COLUMNS, chrono_tz::UTC);
    let ingested = calls::ingest(&mut conn, &app.state.rate_tables, pbx, "csv", &records, &[])
        .await
        .expect("ingested");
    assert_eq!(ingested.unrated, 1);
    crate::calls::add_rate(
        &mut conn,
        calling_plan,
        "1",
        10_000,
        chrono::Duration::hours(1),
    )
    .await;
}

/// A free number for sale, or one `holder` ordered for its PBX; its id.
async fn a_number(app: &TestApp, n: usize, holder: Option<(AccountId, i64)>) -> i64 {
    use diesel_async::RunQueryDsl;
    use switchboard_core::schema::numbers;
    let (account, pbx) = holder.map_or((None, None), |(a, p)| (Some(a.0), Some(p)));
    diesel::insert_into(numbers::table)
        .values((
            numbers::e164.eq(format!("+1773555{:04}", 1000 + n)),
            numbers::npa.eq("773"),
            numbers::nxx.eq("555"),
            numbers::rate_center.eq("CHICAGO"),
            numbers::state.eq("IL"),
            numbers::setup_fee.eq(0),
            numbers::monthly_fee.eq(0),
            numbers::currency.eq("USD"),
            numbers::status.eq(if holder.is_some() {
                "ordered"
            } else {
                "available"
            }),
            numbers::account_id.eq(account),
            numbers::pbx_id.eq(pbx),
        ))
        .returning(numbers::id)
        .get_result(&mut app.conn().await)
        .await
        .expect("a number")
}

/// A ticket opened on `account` by a client of its own; its id.
async fn a_ticket(app: &TestApp, account: AccountId, n: usize) -> i64 {
    use switchboard_core::support::tickets::{self, Mail, NewTicket, Writer};
    let (user, _) = app
        .user(&format!("matrix-opener-{n}"), Role::Client, Some(account))
        .await;
    let writer = Writer {
        user_id: user,
        username: format!("matrix-opener-{n}"),
        role: Role::Client,
    };
    let mail = Mail {
        base_url: "http://127.0.0.1",
        staff_address: "staff@example.com",
    };
    let new = NewTicket {
        subject: "Matrix".into(),
        category: "other".into(),
        pbx_id: None,
        message: "Hello".into(),
    };
    tickets::open(&mut app.conn().await, mail, &writer, account, &new, None)
        .await
        .expect("a ticket")
        .ticket
}

async fn matrix_plan(app: &TestApp) -> i64 {
    switchboard_core::commerce::plans::create(
        &mut app.conn().await,
        &switchboard_core::commerce::plans::PlanInput {
            slug: "matrix".into(),
            name: "Matrix".into(),
            currency: "USD".into(),
            setup_fee: "1".into(),
            monthly_fee: "2".into(),
            included_extensions: "3".into(),
            active: true,
            ..Default::default()
        },
    )
    .await
    .expect("a plan")
}

/// A plan that costs nothing up front, so that every customer may order
/// another PBX on it whatever their balance.
async fn free_plan(app: &TestApp) -> i64 {
    switchboard_core::commerce::plans::create(
        &mut app.conn().await,
        &switchboard_core::commerce::plans::PlanInput {
            slug: "matrix-free".into(),
            name: "Matrix free".into(),
            currency: "USD".into(),
            setup_fee: "0".into(),
            monthly_fee: "0".into(),
            included_extensions: "1".into(),
            active: true,
            ..Default::default()
        },
    )
    .await
    .expect("a plan")
}

/// An order of `account` awaiting payment, written directly.
async fn order_of(app: &TestApp, account: AccountId, plan: i64, n: usize) -> String {
    use diesel_async::RunQueryDsl;
    let public_id = format!("matrixorder{n:022}");
    diesel::insert_into(orders::table)
        .values((
            orders::public_id.eq(&public_id),
            orders::account_id.eq(account.0),
            orders::kind.eq("signup"),
            orders::plan_id.eq(plan),
            orders::currency.eq("USD"),
            orders::total.eq(3_000_000i64),
            orders::gateway.eq("test"),
        ))
        .execute(&mut app.conn().await)
        .await
        .expect("an order");
    public_id
}

async fn a_pbx(app: &TestApp, account: AccountId, plan: i64, state: &str) -> i64 {
    use diesel_async::RunQueryDsl;
    static N: AtomicUsize = AtomicUsize::new(0);
    diesel::insert_into(pbxes::table)
        .values((
            pbxes::account_id.eq(account.0),
            pbxes::plan_id.eq(plan),
            pbxes::request_id.eq(format!("pbx-matrix-{}", N.fetch_add(1, Ordering::SeqCst))),
            pbxes::gui_password_sealed.eq("v1:x"),
            pbxes::state.eq(state),
            pbxes::last_error.eq("controller said 503"),
        ))
        .returning(pbxes::id)
        .get_result(&mut app.conn().await)
        .await
        .expect("a PBX")
}

fn refused_by_a_guard(response: &async_graphql::Response) -> bool {
    response.errors.iter().any(|e| {
        [
            "Sign in first.",
            "You are not allowed to do this.",
            "Choose a new password first (changePassword).",
        ]
        .contains(&e.message.as_str())
    })
}

/// Whether `asker` may use the field of `row`.
fn may(row: &Row, asker: &Asker) -> bool {
    let unguarded = row.allowed.contains(&ANONYMOUS);
    row.allowed.contains(&asker.role)
        && (!asker.one_time_password || unguarded || BEFORE_PASSWORD_CHANGE.contains(&row.field))
}

/// `Type.field` for every field of the roots (as `Query` and `Mutation`)
/// and of the checked types.
async fn fields_in_schema(world: &World) -> BTreeSet<String> {
    let mut selection = String::from(
        "__schema { queryType { fields { name } } mutationType { fields { name } } } ",
    );
    for ty in CHECKED_TYPES {
        selection.push_str(&format!(
            "{ty}: __type(name: \"{ty}\") {{ fields {{ name }} }} "
        ));
    }
    let answer = world
        .app
        .state
        .schema
        .execute(format!("{{ {selection} }}"))
        .await;
    assert!(answer.errors.is_empty(), "{:?}", answer.errors);
    let data = answer.data.into_json().expect("JSON");
    let mut of_type = vec![
        ("Query", &data["__schema"]["queryType"]),
        ("Mutation", &data["__schema"]["mutationType"]),
    ];
    of_type.extend(CHECKED_TYPES.iter().map(|ty| (*ty, &data[*ty])));
    let mut found = BTreeSet::new();
    for (ty, fields) in of_type {
        for field in fields["fields"]
            .as_array()
            .unwrap_or_else(|| panic!("{ty}: {data}"))
        {
            found.insert(format!("{ty}.{}", field["name"].as_str().expect("a name")));
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn every_field_answers_exactly_the_roles_the_matrix_allows() {
    let world = World::new().await;
    let rows = matrix();
    let in_matrix: BTreeSet<String> = rows
        .iter()
        .map(|r| r.field.to_owned())
        .chain(READ_WITH_PARENT.iter().map(|f| (*f).to_owned()))
        .collect();
    assert_eq!(
        fields_in_schema(&world).await,
        in_matrix,
        "every field needs a row in the authorization matrix, or a place in READ_WITH_PARENT"
    );

    let mut wrong = Vec::new();
    for row in &rows {
        for asker in &world.askers {
            let response = world.run(row.operation, asker).await;
            let refused = refused_by_a_guard(&response);
            let outcome_ok = if may(row, asker) {
                // Allowed means a full answer: any error is a failure.
                response.errors.is_empty() && response.data != async_graphql::Value::Null
            } else {
                refused
            };
            if !outcome_ok {
                wrong.push(format!(
                    "{} as {}: refused={refused}, errors={:?}",
                    row.field, asker.label, response.errors
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_change_by_staff_or_an_admin_leaves_an_audit_record() {
    use diesel_async::RunQueryDsl;
    let world = World::new().await;
    let rows = matrix();
    let mut mutations: Vec<String> = fields_in_schema(&world)
        .await
        .into_iter()
        .filter(|f| f.starts_with("Mutation."))
        .collect();
    // Others prove the asker's password: changing it comes last.
    mutations.sort_by_key(|m| m == "Mutation.changePassword");
    let mut silent = Vec::new();
    for mutation in &mutations {
        let row = rows
            .iter()
            .find(|r| r.field == mutation)
            .unwrap_or_else(|| panic!("{mutation} has no row in the matrix"));
        for asker in world
            .askers
            .iter()
            .filter(|a| (a.role == STAFF || a.role == ADMIN) && may(row, a))
        {
            let user = asker.viewer.user.as_ref().expect("a user").user_id.0;
            let count = || async {
                audit_log::table
                    .filter(audit_log::actor_user_id.eq(user))
                    .count()
                    .get_result::<i64>(&mut world.app.conn().await)
                    .await
                    .expect("a count")
            };
            let before = count().await;
            let response = world.run(row.operation, asker).await;
            assert!(
                response.errors.is_empty(),
                "{mutation} as {}: {:?}",
                asker.label,
                response.errors
            );
            if count().await == before {
                silent.push(format!("{mutation} as {}", asker.label));
            }
        }
    }
    assert!(
        silent.is_empty(),
        "changes without an audit record:\n{}",
        silent.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_audit_record_says_what_a_plan_was_and_became() {
    use diesel_async::RunQueryDsl;
    let world = World::new().await;
    let admin = world
        .askers
        .iter()
        .find(|a| a.role == ADMIN && !a.one_time_password)
        .expect("an admin");
    let update = r#"mutation { updatePlan(id: "{plan}", input: { slug: "matrix", name: "Matrix Plus", setupFee: "1", monthlyFee: "2", includedExtensions: 3 }) { id } }"#;
    let response = world.run(update, admin).await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    let (action, ip, before, after): (String, String, Option<String>, Option<String>) =
        audit_log::table
            .order(audit_log::id.desc())
            .select((
                audit_log::action,
                audit_log::ip,
                audit_log::before,
                audit_log::after,
            ))
            .first(&mut world.app.conn().await)
            .await
            .expect("a record");
    assert_eq!(action, "plan.update");
    assert_eq!(ip, admin.viewer.ip);
    assert!(before.expect("before").contains("\"name\":\"Matrix\""));
    assert!(after.expect("after").contains("\"name\":\"Matrix Plus\""));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_cannot_touch_another_clients_order_and_staff_pay_none() {
    let world = World::new().await;
    let mine = world
        .app
        .account("Mine", AccountKind::Retail, None, 0)
        .await;
    let (client_id, _) = world
        .app
        .user("orders-owner", Role::Client, Some(mine))
        .await;
    let client = Viewer::signed_in(world.app.session_user(client_id).await, "");
    let theirs = &world.askers[0].order;
    for operation in [
        format!("{{ order(id: \"{theirs}\") {{ state }} }}"),
        format!("mutation {{ payOrder(orderId: \"{theirs}\") }}"),
        format!("mutation {{ payWithTestCard(orderId: \"{theirs}\", cardNumber: \"4242424242424242\") {{ outcome }} }}"),
    ] {
        let response = world
            .app
            .state
            .schema
            .execute(async_graphql::Request::new(operation.clone()).data(client.clone()))
            .await;
        assert_eq!(response.errors[0].message, "No such order.", "{operation}");
    }
    // Staff read any order, but pay none.
    let staff = world
        .askers
        .iter()
        .find(|a| a.role == STAFF && !a.one_time_password)
        .expect("staff");
    let paid = world
        .run(r#"mutation { payWithTestCard(orderId: "{order}", cardNumber: "4242424242424242") { outcome } }"#, staff)
        .await;
    assert_eq!(paid.errors[0].message, "You are not allowed to do this.");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_cannot_read_another_clients_account_and_a_reseller_reads_only_its_own() {
    let app = TestApp::spawn().await;
    let mine = app
        .account("Mine", AccountKind::Retail, None, 1_000_000)
        .await;
    let theirs = app
        .account("Theirs", AccountKind::Retail, None, 9_000_000)
        .await;
    let reseller = app
        .account("Wholesale", AccountKind::Wholesale, None, 0)
        .await;
    let sub = app
        .account("Sub", AccountKind::Retail, Some(reseller), 0)
        .await;
    let (client_id, _) = app.user("owner", Role::Client, Some(mine)).await;
    let (reseller_id, _) = app.user("resells", Role::Reseller, Some(reseller)).await;
    let (staff_id, _) = app.user("helper", Role::Staff, None).await;
    let client = Viewer::signed_in(app.session_user(client_id).await, "");
    let reseller_viewer = Viewer::signed_in(app.session_user(reseller_id).await, "");
    let staff = Viewer::signed_in(app.session_user(staff_id).await, "");
    let run = |viewer: Viewer, operation: String| {
        let app = &app;
        async move {
            app.state
                .schema
                .execute(async_graphql::Request::new(operation).data(viewer))
                .await
        }
    };
    let read = |id: i64| format!("{{ account(id: \"{id}\") {{ name balance {{ micros }} }} }}");

    let own = run(client.clone(), read(mine.0)).await;
    assert!(own.errors.is_empty(), "{:?}", own.errors);
    let other = run(client.clone(), read(theirs.0)).await;
    assert_eq!(other.errors[0].message, format!("No account {}.", theirs.0));
    assert!(!format!("{:?}", other.data).contains("9000000"));
    let missing = run(client.clone(), read(999_999)).await;
    assert_eq!(
        missing.errors[0].message, "No account 999999.",
        "unknown and foreign ids read alike"
    );
    // Nor through the fields that hang off an account.
    let calls = run(
        client,
        format!(
            "{{ account(id: \"{}\") {{ callsCsv recentCalls {{ to }} }} }}",
            theirs.0
        ),
    )
    .await;
    assert_eq!(calls.errors[0].message, format!("No account {}.", theirs.0));

    assert!(run(reseller_viewer.clone(), read(reseller.0))
        .await
        .errors
        .is_empty());
    assert!(run(reseller_viewer.clone(), read(sub.0))
        .await
        .errors
        .is_empty());
    assert!(!run(reseller_viewer, read(theirs.0)).await.errors.is_empty());
    assert!(run(staff, read(theirs.0)).await.errors.is_empty());
}
