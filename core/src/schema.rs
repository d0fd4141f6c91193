//! Diesel's view of the tables in `migrations/`.

diesel::table! {
    accounts (id) {
        id -> BigInt,
        name -> Text,
        kind -> Text,
        parent_id -> Nullable<BigInt>,
        draws_on_parent -> Bool,
        currency -> Text,
        standing -> Text,
        turned_off -> Bool,
        low_balance_threshold -> BigInt,
        credit_limit -> BigInt,
        time_zone -> Text,
        contact_name -> Text,
        company -> Text,
        email -> Text,
        phone -> Text,
        address -> Text,
        created_at -> Timestamptz,
        stripe_customer_id -> Nullable<Text>,
        stripe_payment_method_id -> Nullable<Text>,
        calling_plan_id -> Nullable<BigInt>,
        standing_since -> Timestamptz,
        low_crossings -> Integer,
        termination_notice_at -> Nullable<Timestamptz>,
        auto_replenish -> Bool,
        replenish_amount -> BigInt,
        replenish_monthly_cap -> BigInt,
        card_brand -> Nullable<Text>,
        card_last4 -> Nullable<Text>,
        card_exp_month -> Nullable<Integer>,
        card_exp_year -> Nullable<Integer>,
        turned_off_reason -> Nullable<Text>,
        turned_off_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    users (id) {
        id -> BigInt,
        username -> Text,
        email -> Text,
        password_hash -> Text,
        role -> Text,
        account_id -> Nullable<BigInt>,
        must_change_password -> Bool,
        disabled -> Bool,
        created_at -> Timestamptz,
        last_sign_in_at -> Nullable<Timestamptz>,
        totp_secret_sealed -> Nullable<Text>,
        totp_enabled -> Bool,
        totp_last_step -> Nullable<BigInt>,
    }
}

diesel::table! {
    recovery_codes (id) {
        id -> BigInt,
        user_id -> BigInt,
        code_hash -> Text,
        used_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    sign_in_challenges (token_hash) {
        token_hash -> Text,
        user_id -> BigInt,
        next -> Nullable<Text>,
        attempts -> Integer,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    sso_logins (state) {
        state -> Text,
        nonce -> Text,
        pkce_verifier -> Text,
        next -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    password_resets (token_hash) {
        token_hash -> Text,
        user_id -> BigInt,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    password_recovery_requests (id) {
        id -> BigInt,
        ip -> Text,
        email -> Text,
        at -> Timestamptz,
    }
}

diesel::table! {
    email_changes (token_hash) {
        token_hash -> Text,
        user_id -> BigInt,
        from_email -> Text,
        new_email -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    sessions (token_hash) {
        token_hash -> Text,
        user_id -> BigInt,
        created_at -> Timestamptz,
        last_seen_at -> Timestamptz,
        expires_at -> Timestamptz,
        ip -> Text,
        user_agent -> Text,
    }
}

diesel::table! {
    sign_in_attempts (id) {
        id -> BigInt,
        username -> Text,
        ip -> Text,
        succeeded -> Bool,
        at -> Timestamptz,
    }
}

diesel::table! {
    sign_up_attempts (id) {
        id -> BigInt,
        ip -> Text,
        at -> Timestamptz,
    }
}

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        at -> Timestamptz,
        actor_user_id -> Nullable<BigInt>,
        actor -> Text,
        action -> Text,
        subject -> Text,
        detail -> Text,
        ip -> Text,
        before -> Nullable<Text>,
        after -> Nullable<Text>,
    }
}

diesel::table! {
    ledger_accounts (id) {
        id -> BigInt,
        code -> Text,
        account_id -> Nullable<BigInt>,
        currency -> Text,
        balance -> BigInt,
    }
}

diesel::table! {
    journal_transactions (id) {
        id -> BigInt,
        idempotency_key -> Text,
        kind -> Text,
        memo -> Text,
        currency -> Text,
        posted_by -> Nullable<BigInt>,
        posted_at -> Timestamptz,
    }
}

diesel::table! {
    journal_entries (id) {
        id -> BigInt,
        transaction_id -> BigInt,
        ledger_account_id -> BigInt,
        amount -> BigInt,
    }
}

diesel::table! {
    background_jobs (id) {
        id -> BigInt,
        job_type -> Text,
        data -> Text,
        dedupe_key -> Nullable<Text>,
        attempts -> Integer,
        last_error -> Nullable<Text>,
        run_after -> Timestamptz,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    standing_changes (id) {
        id -> BigInt,
        account_id -> BigInt,
        at -> Timestamptz,
        from_standing -> Text,
        to_standing -> Text,
        cause -> Text,
        balance -> BigInt,
    }
}

diesel::table! {
    recurring_items (id) {
        id -> BigInt,
        account_id -> BigInt,
        kind -> Text,
        subject_id -> BigInt,
        description -> Text,
        amount -> BigInt,
        currency -> Text,
        anchor -> Timestamptz,
        next_period -> Integer,
        next_due_at -> Timestamptz,
        ends_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    replenishments (id) {
        id -> BigInt,
        account_id -> BigInt,
        crossing -> Integer,
        attempt -> Integer,
        amount -> BigInt,
        currency -> Text,
        gateway -> Text,
        reference -> Nullable<Text>,
        state -> Text,
        detail -> Text,
        created_at -> Timestamptz,
        settled_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    tickets (id) {
        id -> BigInt,
        account_id -> BigInt,
        opened_by -> BigInt,
        pbx_id -> Nullable<BigInt>,
        subject -> Text,
        category -> Text,
        state -> Text,
        assignee_id -> Nullable<BigInt>,
        request_key -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        closed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    ticket_messages (id) {
        id -> BigInt,
        ticket_id -> BigInt,
        author_id -> BigInt,
        from_staff -> Bool,
        internal -> Bool,
        body -> Text,
        request_key -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(standing_changes -> accounts (account_id));
diesel::table! {
    services (id) {
        id -> BigInt,
        name -> Text,
        description -> Text,
        currency -> Text,
        one_time_fee -> BigInt,
        monthly_fee -> BigInt,
        attaches_to -> Text,
        needs_staff -> Bool,
        offered -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    service_orders (id) {
        id -> BigInt,
        account_id -> BigInt,
        service_id -> BigInt,
        pbx_id -> Nullable<BigInt>,
        ordered_by -> BigInt,
        request_key -> Text,
        name -> Text,
        currency -> Text,
        one_time_fee -> BigInt,
        monthly_fee -> BigInt,
        state -> Text,
        ordered_at -> Timestamptz,
        completed_at -> Nullable<Timestamptz>,
        completed_by -> Nullable<BigInt>,
        cancelled_at -> Nullable<Timestamptz>,
        ends_at -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(recurring_items -> accounts (account_id));
diesel::joinable!(replenishments -> accounts (account_id));
diesel::joinable!(users -> accounts (account_id));
diesel::joinable!(orders -> accounts (account_id));
diesel::joinable!(orders -> plans (plan_id));
diesel::joinable!(order_lines -> orders (order_id));
diesel::joinable!(payments -> orders (order_id));
diesel::joinable!(pbxes -> accounts (account_id));
diesel::joinable!(tickets -> accounts (account_id));
diesel::joinable!(ticket_messages -> tickets (ticket_id));
diesel::joinable!(ticket_messages -> users (author_id));
diesel::joinable!(pbx_password_changes -> pbxes (pbx_id));
diesel::joinable!(pbxes -> plans (plan_id));
diesel::joinable!(rates -> calling_plans (calling_plan_id));
diesel::joinable!(cdrs -> pbxes (pbx_id));
diesel::joinable!(cdr_rejects -> pbxes (pbx_id));
diesel::joinable!(calls -> pbxes (pbx_id));
diesel::joinable!(plans -> calling_plans (calling_plan_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(recovery_codes -> users (user_id));
diesel::joinable!(sign_in_challenges -> users (user_id));
diesel::joinable!(password_resets -> users (user_id));
diesel::joinable!(email_changes -> users (user_id));
diesel::joinable!(ledger_accounts -> accounts (account_id));
diesel::joinable!(journal_entries -> journal_transactions (transaction_id));
diesel::joinable!(journal_entries -> ledger_accounts (ledger_account_id));
diesel::joinable!(service_orders -> accounts (account_id));
diesel::joinable!(service_orders -> services (service_id));

diesel::table! {
    number_tiers (name) {
        name -> Text,
        setup_fee -> BigInt,
        monthly_fee -> BigInt,
        currency -> Text,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    number_orders (id) {
        id -> BigInt,
        account_id -> BigInt,
        pbx_id -> BigInt,
        ordered_by -> Nullable<BigInt>,
        request_key -> Text,
        total -> BigInt,
        currency -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    numbers (id) {
        id -> BigInt,
        e164 -> Text,
        npa -> Text,
        nxx -> Text,
        rate_center -> Text,
        state -> Text,
        city -> Nullable<Text>,
        lata -> Nullable<Text>,
        carrier -> Nullable<Text>,
        tier -> Nullable<Text>,
        priced_by_tier -> Bool,
        setup_fee -> BigInt,
        monthly_fee -> BigInt,
        currency -> Text,
        status -> Text,
        account_id -> Nullable<BigInt>,
        pbx_id -> Nullable<BigInt>,
        order_id -> Nullable<BigInt>,
        recurring_item_id -> Nullable<BigInt>,
        ordered_at -> Nullable<Timestamptz>,
        activated_at -> Nullable<Timestamptz>,
        quarantined_until -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    number_events (id) {
        id -> BigInt,
        number_id -> BigInt,
        at -> Timestamptz,
        kind -> Text,
        account_id -> Nullable<BigInt>,
        pbx_id -> Nullable<BigInt>,
        actor -> Text,
        detail -> Text,
    }
}

diesel::joinable!(number_events -> numbers (number_id));
diesel::joinable!(numbers -> pbxes (pbx_id));

diesel::allow_tables_to_appear_in_same_query!(
    accounts,
    services,
    service_orders,
    sign_up_attempts,
    users,
    sessions,
    sign_in_attempts,
    audit_log,
    ledger_accounts,
    journal_transactions,
    journal_entries,
    background_jobs,
    emails,
    plans,
    orders,
    order_lines,
    payments,
    webhook_events,
    pbxes,
    calling_plans,
    rates,
    cdrs,
    calls,
    cdr_rejects,
    recovery_codes,
    sign_in_challenges,
    sso_logins,
    password_resets,
    password_recovery_requests,
    email_changes,
    standing_changes,
    recurring_items,
    replenishments,
    tickets,
    ticket_messages,
    pbx_password_changes,
    numbers,
    number_events,
    number_orders,
    number_tiers,
);

diesel::table! {
    emails (id) {
        id -> BigInt,
        dedupe_key -> Nullable<Text>,
        to_address -> Text,
        subject -> Text,
        text_body -> Text,
        html_body -> Text,
        sealed -> Bool,
        state -> Text,
        attempts -> Integer,
        last_error -> Nullable<Text>,
        next_attempt_at -> Timestamptz,
        created_at -> Timestamptz,
        sent_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    plans (id) {
        id -> BigInt,
        slug -> Text,
        name -> Text,
        description -> Text,
        currency -> Text,
        setup_fee -> BigInt,
        monthly_fee -> BigInt,
        included_extensions -> Integer,
        calling_plan_id -> Nullable<BigInt>,
        active -> Bool,
        position -> Integer,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    orders (id) {
        id -> BigInt,
        public_id -> Text,
        account_id -> BigInt,
        kind -> Text,
        plan_id -> Nullable<BigInt>,
        state -> Text,
        currency -> Text,
        total -> BigInt,
        gateway -> Text,
        gateway_session_id -> Nullable<Text>,
        checkout_token -> Nullable<Text>,
        paid_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        checkout_attempt -> Integer,
        request_key -> Nullable<Text>,
    }
}

diesel::table! {
    order_lines (id) {
        id -> BigInt,
        order_id -> BigInt,
        kind -> Text,
        description -> Text,
        amount -> BigInt,
    }
}

diesel::table! {
    payments (id) {
        id -> BigInt,
        order_id -> BigInt,
        gateway -> Text,
        reference -> Text,
        amount -> BigInt,
        currency -> Text,
        outcome -> Text,
        detail -> Text,
        created_at -> Timestamptz,
        refunded -> BigInt,
    }
}

diesel::table! {
    webhook_events (gateway, event_id) {
        gateway -> Text,
        event_id -> Text,
        event_type -> Text,
        received_at -> Timestamptz,
    }
}

diesel::table! {
    pbxes (id) {
        id -> BigInt,
        account_id -> BigInt,
        plan_id -> BigInt,
        order_id -> Nullable<BigInt>,
        request_id -> Text,
        controller_id -> Nullable<Text>,
        hostname -> Nullable<Text>,
        gui_password_sealed -> Text,
        state -> Text,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        activated_at -> Nullable<Timestamptz>,
        cdr_token_hash -> Nullable<Text>,
        time_zone -> Text,
        cdr_source_sealed -> Nullable<Text>,
        dialling_rules -> Nullable<Jsonb>,
        cdr_pull_from -> Nullable<Timestamptz>,
        label -> Text,
    }
}

diesel::table! {
    calling_plans (id) {
        id -> BigInt,
        name -> Text,
        currency -> Text,
        inbound_per_minute_nanos -> Nullable<BigInt>,
        created_at -> Timestamptz,
        rates_version -> BigInt,
    }
}

diesel::table! {
    rates (id) {
        id -> BigInt,
        calling_plan_id -> BigInt,
        prefix -> Text,
        description -> Text,
        per_minute_nanos -> BigInt,
        connection_fee -> BigInt,
        initial_increment -> Integer,
        subsequent_increment -> Integer,
        minimum_duration -> Integer,
        effective_from -> Timestamptz,
        removed -> Bool,
        created_at -> Timestamptz,
    }
}

// Only the columns read or changed through Diesel: a record is written
// whole by `calls::records` in one statement of arrays, and leaving the
// other 26 out keeps Diesel's tables to 32 columns, which builds much
// faster than its 64-column support.
diesel::table! {
    cdrs (id, calldate) {
        id -> BigInt,
        pbx_id -> BigInt,
        record_key -> Text,
        calldate -> Timestamptz,
        src -> Text,
        dst -> Text,
        billsec -> Integer,
        uniqueid -> Text,
        direction -> Text,
        status -> Text,
        call_key -> Text,
        helper_leg -> Bool,
        rating -> Text,
        cost -> BigInt,
        ledger_transaction_id -> Nullable<BigInt>,
        ingested_at -> Timestamptz,
    }
}

diesel::table! {
    calls (pbx_id, call_key, start) {
        pbx_id -> BigInt,
        call_key -> Text,
        account_id -> BigInt,
        start -> Timestamptz,
        lead_answered -> Bool,
        lead_calldate -> Timestamptz,
        lead_key -> Text,
        src -> Text,
        dst -> Text,
        direction -> Text,
        extension -> Nullable<Text>,
        status -> Text,
        duration -> Integer,
        billsec -> Integer,
        cost -> BigInt,
        legs -> Integer,
        rated -> Bool,
        unrated -> Bool,
        billed_seconds -> Integer,
    }
}

diesel::table! {
    cdr_rejects (id) {
        id -> BigInt,
        pbx_id -> BigInt,
        source -> Text,
        raw -> Text,
        reason -> Text,
        received_at -> Timestamptz,
        raw_digest -> Text,
    }
}

diesel::table! {
    pbx_password_changes (id) {
        id -> BigInt,
        pbx_id -> BigInt,
        password_sealed -> Text,
        state -> Text,
        last_error -> Nullable<Text>,
        requested_by -> Nullable<BigInt>,
        requested_at -> Timestamptz,
        settled_at -> Nullable<Timestamptz>,
    }
}
