//! Switchboard's tests against real parts: a real PostgreSQL, the real server
//! on loopback, headless Chromium for what a person clicks through. One test
//! binary, so the run shares one cluster and one ChromeDriver.

mod accessibility;
mod authorization;
mod balance;
mod billing;
mod browser;
mod call_months;
mod calls;
mod cli;
mod commerce;
mod graphql_api;
mod gui_passwords;
mod harness;
mod health;
mod instances;
mod jobs;
mod ledger;
mod limits;
mod mariadb;
mod metrics;
mod more_pbxs;
mod numbers;
mod operations;
mod outbox;
mod overview;
mod pages;
mod pulling;
mod rates;
mod reports;
mod security;
mod self_service;
mod services;
mod sign_in;
mod single_sign_on;
mod smtp;
mod staff;
mod stripe;
mod stripe_double;
mod support;
mod turned_off;
mod two_factor;
