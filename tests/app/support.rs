//! Trouble tickets: a client opens one and replies; staff answer, write
//! internal notes, close; each new message emails the other side. A client
//! never reaches another's ticket, nor a note, and a message is shown as
//! typed, escaped.

use diesel::{ExpressionMethods, QueryDsl};
use diesel_async::RunQueryDsl;
use fantoccini::{Client, Locator};
use switchboard_core::schema::{emails, ticket_messages, tickets};
use switchboard_core::{AccountKind, Role};
use switchboard_graphql::Viewer;

use crate::accessibility::click;
use crate::browser::{browser, screenshot, sign_in, wait_until};
use crate::harness::TestApp;
use crate::smtp::SmtpServer;

const OPEN: &str = "mutation($subject: String!, $message: String!) { openTicket(input: { subject: $subject, category: CALLS, message: $message }) { id state } }";
const REPLY: &str =
    "mutation($id: ID!, $message: String!) { replyToTicket(ticketId: $id, message: $message) { state closedAt } }";
const NOTE: &str =
    "mutation($id: ID!, $note: String!) { addTicketNote(ticketId: $id, note: $note) { state } }";
const CLOSE: &str = "mutation($id: ID!) { closeTicket(ticketId: $id) { state closedAt } }";
const READ: &str = "query($id: ID!) { ticket(id: $id) { subject state messages { body author fromStaff internal } } }";

/// A client with an account, and a member of staff.
struct Desk {
    app: TestApp,
    client: Viewer,
    account: i64,
    staff: Viewer,
}

impl Desk {
    async fn new() -> Desk {
        let app = TestApp::spawn().await;
        let account = app
            .account("Harbour Dental", AccountKind::Retail, None, 0)
            .await;
        let (client, _) = app.user("hanna", Role::Client, Some(account)).await;
        let (staff, _) = app.user("sam", Role::Staff, None).await;
        Desk {
            client: Viewer::signed_in(app.session_user(client).await, "192.0.2.7"),
            staff: Viewer::signed_in(app.session_user(staff).await, "192.0.2.8"),
            account: account.0,
            app,
        }
    }

    async fn run(
        &self,
        viewer: &Viewer,
        operation: &str,
        variables: serde_json::Value,
    ) -> async_graphql::Response {
        let request = async_graphql::Request::new(operation)
            .variables(async_graphql::Variables::from_json(variables))
            .data(viewer.clone());
        async_graphql::Schema::execute(&self.app.state.schema, request).await
    }

    /// Runs an operation that must succeed; its data as JSON.
    async fn ok(
        &self,
        viewer: &Viewer,
        operation: &str,
        variables: serde_json::Value,
    ) -> serde_json::Value {
        let response = self.run(viewer, operation, variables).await;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        response.data.into_json().expect("JSON")
    }

    /// A ticket `viewer` opens; its id.
    async fn open(&self, viewer: &Viewer, subject: &str, message: &str) -> String {
        let data = self
            .ok(
                viewer,
                OPEN,
                serde_json::json!({ "subject": subject, "message": message }),
            )
            .await;
        data["openTicket"]["id"].as_str().expect("an id").to_owned()
    }

    /// Every queued email as (to, subject, text, HTML).
    async fn emails(&self) -> Vec<(String, String, String, String)> {
        emails::table
            .order(emails::id)
            .select((
                emails::to_address,
                emails::subject,
                emails::text_body,
                emails::html_body,
            ))
            .load(&mut self.app.conn().await)
            .await
            .expect("the outbox")
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_can_neither_read_nor_answer_another_clients_ticket() {
    let desk = Desk::new().await;
    let theirs = desk
        .app
        .account("Quayside Bakery", AccountKind::Retail, None, 0)
        .await;
    let (other, _) = desk.app.user("quentin", Role::Client, Some(theirs)).await;
    let other = Viewer::signed_in(desk.app.session_user(other).await, "192.0.2.9");
    let id = desk
        .open(&other, "Fax to email stopped", "Nothing since Monday.")
        .await;
    let emails_before = desk.emails().await.len();

    let read = desk
        .run(&desk.client, READ, serde_json::json!({ "id": id }))
        .await;
    assert_eq!(read.errors[0].message, format!("No ticket {id}."));
    assert!(!format!("{:?}", read.data).contains("Fax to email"));
    let unknown = desk
        .run(&desk.client, READ, serde_json::json!({ "id": "999999" }))
        .await;
    assert_eq!(
        unknown.errors[0].message, "No ticket 999999.",
        "unknown and foreign ids read alike"
    );
    let reply = desk
        .run(
            &desk.client,
            REPLY,
            serde_json::json!({ "id": id, "message": "I can see your ticket" }),
        )
        .await;
    assert_eq!(reply.errors[0].message, format!("No ticket {id}."));
    let listed = desk
        .run(
            &desk.client,
            "query($a: ID!) { account(id: $a) { tickets { edges { node { subject } } } } }",
            serde_json::json!({ "a": theirs.0.to_string() }),
        )
        .await;
    assert_eq!(
        listed.errors[0].message,
        format!("No account {}.", theirs.0)
    );
    // Nor may a client write a note, even on their own ticket.
    let own = desk
        .open(&desk.client, "Echo on calls", "Since noon.")
        .await;
    let note = desk
        .run(
            &desk.client,
            NOTE,
            serde_json::json!({ "id": own, "note": "a note" }),
        )
        .await;
    assert_eq!(note.errors[0].message, "You are not allowed to do this.");

    let ticket: i64 = id.parse().expect("a number");
    let mut conn = desk.app.conn().await;
    let messages: i64 = ticket_messages::table
        .filter(ticket_messages::ticket_id.eq(ticket))
        .count()
        .get_result(&mut conn)
        .await
        .expect("a count");
    assert_eq!(messages, 1, "nothing was added to their thread");
    let state: String = tickets::table
        .find(ticket)
        .select(tickets::state)
        .first(&mut conn)
        .await
        .expect("the ticket");
    assert_eq!(state, "open");
    assert_eq!(
        desk.emails().await.len(),
        emails_before + 1,
        "only the client's own new ticket emailed staff"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn internal_notes_never_reach_the_client() {
    let desk = Desk::new().await;
    let id = desk
        .open(
            &desk.client,
            "Calls drop after a minute",
            "Every outside call.",
        )
        .await;
    let noted = desk
        .ok(
            &desk.staff,
            NOTE,
            serde_json::json!({ "id": id, "note": "Their router does SIP ALG: NOTE-FOR-STAFF" }),
        )
        .await;
    assert_eq!(
        noted["addTicketNote"]["state"], "OPEN",
        "a note moves nothing"
    );
    let replied = desk
        .ok(
            &desk.staff,
            REPLY,
            serde_json::json!({ "id": id, "message": "Please turn SIP ALG off on your router." }),
        )
        .await;
    assert_eq!(replied["replyToTicket"]["state"], "AWAITING_CLIENT");

    // Staff see the whole thread.
    let staff_view = desk
        .ok(&desk.staff, READ, serde_json::json!({ "id": id }))
        .await;
    let staff_text = staff_view.to_string();
    assert!(staff_text.contains("NOTE-FOR-STAFF"), "{staff_text}");
    // The client reads the thread without it, whichever way they ask.
    let thread = desk
        .ok(&desk.client, READ, serde_json::json!({ "id": id }))
        .await;
    let bodies: Vec<&str> = thread["ticket"]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["body"].as_str().expect("a body"))
        .collect();
    assert_eq!(
        bodies,
        [
            "Every outside call.",
            "Please turn SIP ALG off on your router."
        ]
    );
    let listed = desk
        .ok(
            &desk.client,
            "query($a: ID!) { account(id: $a) { tickets { edges { node { messages { body internal } } } } } }",
            serde_json::json!({ "a": desk.account.to_string() }),
        )
        .await;
    assert!(!listed.to_string().contains("NOTE-FOR-STAFF"), "{listed}");
    let assignee = desk
        .run(
            &desk.client,
            "query($id: ID!) { ticket(id: $id) { assignee { username } } }",
            serde_json::json!({ "id": id }),
        )
        .await;
    assert_eq!(
        assignee.errors[0].message,
        "You are not allowed to do this."
    );

    // The client was emailed the reply, and nobody the note.
    let emails = desk.emails().await;
    let to_client: Vec<_> = emails
        .iter()
        .filter(|(to, ..)| to == "hanna@example.com")
        .collect();
    assert_eq!(to_client.len(), 1, "{emails:?}");
    assert!(to_client[0].2.contains("Please turn SIP ALG off"));
    assert!(
        emails
            .iter()
            .all(|(_, _, text, html)| !text.contains("NOTE-FOR-STAFF")
                && !html.contains("NOTE-FOR-STAFF")),
        "{emails:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clients_reply_reopens_a_closed_ticket_and_staff_are_told() {
    let desk = Desk::new().await;
    let id = desk
        .open(&desk.client, "New extension", "Please add extension 305.")
        .await;
    desk.ok(
        &desk.staff,
        REPLY,
        serde_json::json!({ "id": id, "message": "Done: extension 305 is ready." }),
    )
    .await;
    let closed = desk
        .ok(&desk.staff, CLOSE, serde_json::json!({ "id": id }))
        .await;
    assert_eq!(closed["closeTicket"]["state"], "CLOSED");
    assert!(closed["closeTicket"]["closedAt"].is_string());

    let reopened = desk
        .ok(
            &desk.client,
            REPLY,
            serde_json::json!({ "id": id, "message": "It does not ring.\nCan you look again?" }),
        )
        .await;
    assert_eq!(reopened["replyToTicket"]["state"], "AWAITING_STAFF");
    assert!(reopened["replyToTicket"]["closedAt"].is_null());
    let emails = desk.emails().await;
    let told = emails
        .iter()
        .filter(|(to, subject, text, _)| {
            to == "staff@switchboard.invalid"
                && subject == &format!("[Ticket #{id}] New extension")
                && text.contains("> It does not ring.\n> Can you look again?")
        })
        .count();
    assert_eq!(told, 1, "{emails:?}");

    // Staff's changes are in the audit log.
    use switchboard_core::schema::audit_log;
    let actions: Vec<String> = audit_log::table
        .filter(audit_log::subject.eq(format!("ticket:{id}")))
        .order(audit_log::id)
        .select(audit_log::action)
        .load(&mut desk.app.conn().await)
        .await
        .expect("the audit log");
    assert_eq!(actions, ["ticket.reply", "ticket.close"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn html_in_a_message_is_shown_escaped_with_its_line_breaks() {
    let app = TestApp::spawn().await;
    let (_, username, password) = app.client("mallory", 0).await;
    let (_, staff_password) = app.user("sam", Role::Staff, None).await;
    let http = app.signed_in(&username, &password).await;
    let token = app.csrf_token(&http, "/portal/tickets/new").await;
    let form = [
        ("csrf", token.as_str()),
        ("subject", "<img src=x onerror=alert(1)>"),
        ("category", "OTHER"),
        ("pbx_id", ""),
        (
            "message",
            "<script>alert('owned')</script>\r\nSecond <b>line</b>",
        ),
        ("request_key", "escape-test-form-0001"),
    ];
    let send = || async {
        http.post(app.url("/portal/tickets"))
            .form(&form)
            .send()
            .await
            .expect("POST")
    };
    let response = send().await;
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"]
        .to_str()
        .expect("a location")
        .to_owned();
    assert!(location.starts_with("/portal/tickets/"), "{location}");
    let id = location
        .trim_start_matches("/portal/tickets/")
        .split('?')
        .next()
        .expect("an id")
        .to_owned();

    let expected = "&lt;script&gt;alert('owned')&lt;/script&gt;\nSecond &lt;b&gt;line&lt;/b&gt;";
    let client_page = app.page(&http, &location).await;
    assert!(client_page.contains(expected), "{client_page}");
    assert!(client_page.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(!client_page.contains("<script>alert") && !client_page.contains("<img src=x"));

    let staff = app.signed_in("sam", &staff_password).await;
    for path in [format!("/admin/tickets/{id}"), "/admin/tickets".to_owned()] {
        let page = app.page(&staff, &path).await;
        assert!(
            page.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{path}"
        );
        assert!(
            !page.contains("<script>alert") && !page.contains("<img src=x"),
            "{path}"
        );
    }
    let staff_page = app.page(&staff, &format!("/admin/tickets/{id}")).await;
    assert!(staff_page.contains(expected), "{staff_page}");

    // The staff's email quotes it escaped too.
    let html: String = emails::table
        .select(emails::html_body)
        .first(&mut app.conn().await)
        .await
        .expect("the staff's email");
    assert!(html.contains(expected), "{html}");

    // The same form sent twice opened one ticket.
    assert_eq!(send().await.status(), 303);
    let count: i64 = tickets::table
        .count()
        .get_result(&mut app.conn().await)
        .await
        .expect("a count");
    assert_eq!(count, 1);
}

/// Waits (up to 20 s) for an email to `to` whose data satisfies `found`.
async fn mail_to(smtp: &SmtpServer, to: &str, found: impl Fn(&str) -> bool) -> String {
    let address = [format!("<{to}>")];
    smtp.wait_for(&format!("such email to {to}"), |m| {
        m.to == address && found(&m.data)
    })
    .await
    .data
}

async fn type_into(browser: &Client, id: &str, text: &str) {
    browser
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("{id}: {e}"))
        .send_keys(text)
        .await
        .expect("type");
}

pub async fn text_of(browser: &Client, css: &str) -> String {
    browser
        .wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .expect("text")
}

pub async fn sign_out(browser: &Client) {
    click(browser, Locator::Css(".who button")).await;
    wait_until(browser, |url| url.path() == "/sign-in" || url.path() == "/").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_opens_a_ticket_and_staff_answer() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn().await;
    let _workers = app.start_workers(smtp.port);
    let (_, client, client_password) = app.client("tess", 0).await;
    let (_, staff_password) = app.user("sam", Role::Staff, None).await;
    let browser = browser().await;

    // The client opens a ticket.
    sign_in(&browser, &app, &client, &client_password).await;
    click(&browser, Locator::LinkText("Support")).await;
    click(&browser, Locator::LinkText("Open a ticket")).await;
    browser
        .wait()
        .for_element(Locator::Id("subject"))
        .await
        .expect("the form");
    type_into(&browser, "subject", "No dial tone").await;
    type_into(
        &browser,
        "message",
        "Extension 201 has no dial tone.\nThe others work.",
    )
    .await;
    click(&browser, Locator::Css("#new-ticket button[type=submit]")).await;
    let state = text_of(&browser, "[data-testid=ticket-state]").await;
    assert_eq!(state, "Open: support will answer");
    screenshot(&browser, "ticket-opened").await;
    let id = browser
        .current_url()
        .await
        .expect("url")
        .path()
        .trim_start_matches("/portal/tickets/")
        .to_owned();
    let told = mail_to(&smtp, "staff@switchboard.invalid", |data| {
        data.contains(&format!("Subject: [Ticket #{id}] No dial tone"))
    })
    .await;
    assert!(told.contains("Extension 201 has no dial tone."), "{told}");
    sign_out(&browser).await;

    // Staff find it in the queue, write a note for staff and answer.
    sign_in(&browser, &app, "sam", &staff_password).await;
    click(&browser, Locator::LinkText("Tickets")).await;
    click(&browser, Locator::LinkText("No dial tone")).await;
    browser
        .wait()
        .for_element(Locator::Id("note"))
        .await
        .expect("the note form");
    type_into(&browser, "note", "Old firmware on that phone (staff only).").await;
    click(&browser, Locator::Css("#add-note button[type=submit]")).await;
    browser
        .wait()
        .for_element(Locator::Css("li.note"))
        .await
        .expect("the note in the thread");
    type_into(
        &browser,
        "message",
        "Please restart the phone.\nIt takes a minute.",
    )
    .await;
    click(&browser, Locator::Css("#reply button[type=submit]")).await;
    browser
        .wait()
        .for_element(Locator::Css("li.staff"))
        .await
        .expect("the reply in the thread");
    assert_eq!(
        text_of(&browser, "[data-testid=ticket-state]").await,
        "Awaiting client"
    );
    screenshot(&browser, "ticket-staff").await;
    let answered = mail_to(&smtp, "tess@example.com", |data| {
        data.contains("Please restart the phone.")
    })
    .await;
    assert!(
        answered.contains(&format!("/portal/tickets/{id}")),
        "{answered}"
    );
    sign_out(&browser).await;

    // The client reads the answer (never the note) and replies.
    sign_in(&browser, &app, &client, &client_password).await;
    click(&browser, Locator::LinkText("Support")).await;
    click(&browser, Locator::Css("#tickets a")).await;
    let thread = text_of(&browser, "ol.thread").await;
    assert!(
        thread.contains("Please restart the phone.\nIt takes a minute."),
        "{thread}"
    );
    assert!(!thread.contains("Old firmware"), "{thread}");
    assert_eq!(
        text_of(&browser, "[data-testid=ticket-state]").await,
        "Support answered"
    );
    type_into(&browser, "message", "Works now, thank you.").await;
    click(&browser, Locator::Css("#reply button[type=submit]")).await;
    browser
        .wait()
        .for_element(Locator::Id("notice"))
        .await
        .expect("sent");
    assert_eq!(
        text_of(&browser, "[data-testid=ticket-state]").await,
        "Waiting for support"
    );
    mail_to(&smtp, "staff@switchboard.invalid", |data| {
        data.contains("Works now, thank you.")
    })
    .await;
    assert!(
        smtp.messages()
            .iter()
            .all(|m| !m.data.contains("Old firmware")),
        "the note is never emailed"
    );
    browser.close().await.expect("close");
}

/// A ticket opened by the client `username`, answered by staff, with an
/// internal note: something for every part of the ticket pages. Its id.
pub async fn a_ticket_with_a_note(app: &TestApp, username: &str) -> i64 {
    use switchboard_core::people::users;
    use switchboard_core::support::tickets::{self, Mail, NewTicket, Post, Writer};
    let mut conn = app.conn().await;
    let client = users::find_by_username(&mut conn, username)
        .await
        .expect("query")
        .expect("the client");
    let (staff, _) = app
        .user(&format!("{username}-helper"), Role::Staff, None)
        .await;
    let mail = Mail {
        base_url: &app.base_url,
        staff_address: "staff@switchboard.invalid",
    };
    let writer = |id, name: &str, role| Writer {
        user_id: id,
        username: name.to_owned(),
        role,
    };
    let new = NewTicket {
        subject: "Calls drop after a minute".into(),
        category: "calls".into(),
        pbx_id: None,
        message: "Every outside call drops.\nInside calls are fine.".into(),
    };
    let account = client.account().expect("a client's account");
    let client = writer(client.id(), username, Role::Client);
    let ticket = tickets::open(&mut conn, mail, &client, account, &new, None)
        .await
        .expect("opened")
        .ticket;
    let helper = writer(staff, "helper", Role::Staff);
    for (kind, text) in [
        (Post::InternalNote, "Their router rewrites SIP."),
        (Post::Reply, "Please turn SIP ALG off on your router."),
    ] {
        tickets::post(&mut conn, mail, &helper, ticket, kind, text, None)
            .await
            .expect("posted");
    }
    ticket
}
