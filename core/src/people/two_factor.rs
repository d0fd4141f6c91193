//! Two-factor sign-in: time-based one-time passwords (RFC 6238, the codes
//! authenticator apps show) and recovery codes for a lost phone.
//!
//! Written here rather than taken from a crate: the algorithm is a dozen
//! lines over HMAC-SHA1, which the workspace already has, and the RFC's own
//! test vectors check it below; what a crate would add (QR images, other
//! hashes, clock handling) we either do not need or do elsewhere.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::domain::UserId;
use crate::keys::SecretKey;
use crate::schema::{recovery_codes, sign_in_challenges, users};

/// The sealing purpose of a TOTP secret.
pub const SECRET: crate::sealed::Purpose = crate::sealed::USER_TOTP_SECRET;

/// Seconds a code is shown for (RFC 6238's default, and every app's).
pub const STEP_SECONDS: i64 = 30;
/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Steps before and after now that are still accepted: a phone's clock a
/// little off, or a code typed as it turned over.
pub const WINDOW: i64 = 1;
/// Recovery codes a user gets at once.
pub const RECOVERY_CODES: usize = 10;

/// The HOTP value (RFC 4226) of `counter` with `digits` digits.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let binary = (u32::from(digest[offset] & 0x7f) << 24)
        | (u32::from(digest[offset + 1]) << 16)
        | (u32::from(digest[offset + 2]) << 8)
        | u32::from(digest[offset + 3]);
    binary % 10u32.pow(digits)
}

/// The time step a moment falls in.
pub fn step_at(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(STEP_SECONDS)
}

/// The code for a step, as people type it (leading zeros kept).
pub fn code_at_step(secret: &[u8], step: i64) -> String {
    let value = hotp(secret, u64::try_from(step).unwrap_or(0), DIGITS);
    format!("{value:0width$}", width = DIGITS as usize)
}

/// The step within the window around `at` whose code `code` is, if any.
pub fn matching_step(secret: &[u8], code: &str, at: DateTime<Utc>) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_at(at);
    (now - WINDOW..=now + WINDOW).find(|step| {
        let expected = code_at_step(secret, *step);
        // Constant time: a code is not guessed digit by digit.
        subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), code.as_bytes()).into()
    })
}

/// A new random secret: 160 bits, as RFC 4226 recommends.
pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; 20];
    rand::rngs::OsRng.fill(&mut secret[..]);
    secret
}

/// Base32 (RFC 4648, no padding): how authenticator apps take a secret.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let mut buffer = 0u32;
    let mut bits = 0;
    for byte in bytes {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The `otpauth://` address an app reads from a QR code.
pub fn otpauth_uri(issuer: &str, username: &str, secret: &[u8]) -> String {
    let label: String =
        url::form_urlencoded::byte_serialize(format!("{issuer}:{username}").as_bytes()).collect();
    let issuer: String = url::form_urlencoded::byte_serialize(issuer.as_bytes()).collect();
    format!(
        "otpauth://totp/{label}?secret={}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        base32(secret)
    )
    .replace('+', "%20")
}

/// A recovery code: 16 characters in four groups, about 80 random bits.
pub fn new_recovery_code() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::rngs::OsRng;
    let chars: Vec<char> = (0..16)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect();
    chars
        .chunks(4)
        .map(|group| group.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// What is stored of a recovery code: the SHA-256 of its letters and
/// digits. A code carries 80 random bits, so a fast hash is enough: nobody
/// finds one from its digest.
pub fn recovery_digest(code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    hex::encode(Sha256::digest(normal.as_bytes()))
}

/// Whether a user has two-factor sign-in, and how many recovery codes are left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    pub enabled: bool,
    /// A secret was made but no code from it confirmed yet.
    pub pending: bool,
    pub recovery_codes_left: i64,
}

/// A user's two-factor status.
pub async fn status(conn: &mut AsyncPgConnection, user: UserId) -> QueryResult<Status> {
    let (enabled, secret): (bool, Option<String>) = users::table
        .find(user.0)
        .select((users::totp_enabled, users::totp_secret_sealed))
        .first(conn)
        .await?;
    let left = recovery_codes::table
        .filter(recovery_codes::user_id.eq(user.0))
        .filter(recovery_codes::used_at.is_null())
        .count()
        .get_result(conn)
        .await?;
    Ok(Status {
        enabled,
        pending: !enabled && secret.is_some(),
        recovery_codes_left: if enabled { left } else { 0 },
    })
}

/// Starts turning two-factor sign-in on: a new secret, kept sealed until a
/// code from it is confirmed. Refused (None) when it is on already.
pub async fn start(
    conn: &mut AsyncPgConnection,
    key: &SecretKey,
    user: UserId,
) -> QueryResult<Option<Vec<u8>>> {
    let secret = new_secret();
    let sealed = key.encrypt(SECRET, &hex::encode(&secret));
    let changed = diesel::update(
        users::table
            .find(user.0)
            .filter(users::totp_enabled.eq(false)),
    )
    .set((
        users::totp_secret_sealed.eq(Some(sealed)),
        users::totp_last_step.eq(None::<i64>),
    ))
    .execute(conn)
    .await?;
    Ok((changed == 1).then_some(secret))
}

/// Why a code was not taken.
#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    #[error("that code is not right, or was used already")]
    Wrong,
    #[error("two-factor sign-in is not being set up")]
    NotStarted,
    #[error("the stored secret does not open with this key")]
    Sealed,
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

fn open_secret(key: &SecretKey, sealed: &str) -> Result<Vec<u8>, CodeError> {
    let text = key.decrypt(SECRET, sealed).map_err(|_| CodeError::Sealed)?;
    hex::decode(text).map_err(|_| CodeError::Sealed)
}

/// Takes a step's code once: the step must be later than the last one taken.
async fn take_step(conn: &mut AsyncPgConnection, user: UserId, step: i64) -> QueryResult<bool> {
    diesel::update(
        users::table.find(user.0).filter(
            users::totp_last_step
                .is_null()
                .or(users::totp_last_step.lt(step)),
        ),
    )
    .set(users::totp_last_step.eq(step))
    .execute(conn)
    .await
    .map(|n| n == 1)
}

/// Finishes turning it on with a first code from the app; returns the
/// recovery codes, shown this once.
pub async fn confirm(
    conn: &mut AsyncPgConnection,
    key: &SecretKey,
    user: UserId,
    code: &str,
    now: DateTime<Utc>,
) -> Result<Vec<String>, CodeError> {
    conn.transaction(async |conn| {
        let (enabled, sealed): (bool, Option<String>) = users::table
            .find(user.0)
            .select((users::totp_enabled, users::totp_secret_sealed))
            .for_update()
            .first(conn)
            .await?;
        let sealed = sealed.filter(|_| !enabled).ok_or(CodeError::NotStarted)?;
        let secret = open_secret(key, &sealed)?;
        let step = matching_step(&secret, code, now).ok_or(CodeError::Wrong)?;
        if !take_step(conn, user, step).await? {
            return Err(CodeError::Wrong);
        }
        diesel::update(users::table.find(user.0))
            .set(users::totp_enabled.eq(true))
            .execute(conn)
            .await?;
        Ok(replace_recovery_codes(conn, user).await?)
    })
    .await
}

/// New recovery codes, the old ones no longer good; returns them.
pub async fn replace_recovery_codes(
    conn: &mut AsyncPgConnection,
    user: UserId,
) -> QueryResult<Vec<String>> {
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user.0)))
        .execute(conn)
        .await?;
    let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
    let rows: Vec<_> = codes
        .iter()
        .map(|code| {
            (
                recovery_codes::user_id.eq(user.0),
                recovery_codes::code_hash.eq(recovery_digest(code)),
            )
        })
        .collect();
    diesel::insert_into(recovery_codes::table)
        .values(rows)
        .execute(conn)
        .await?;
    Ok(codes)
}

/// Turns two-factor sign-in off: the secret and the recovery codes go.
pub async fn turn_off(conn: &mut AsyncPgConnection, user: UserId) -> QueryResult<()> {
    conn.transaction(async |conn| {
        diesel::update(users::table.find(user.0))
            .set((
                users::totp_enabled.eq(false),
                users::totp_secret_sealed.eq(None::<String>),
                users::totp_last_step.eq(None::<i64>),
            ))
            .execute(conn)
            .await?;
        diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user.0)))
            .execute(conn)
            .await?;
        Ok(())
    })
    .await
}

/// What a second factor was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Factor {
    /// A code from the app.
    Code,
    /// A recovery code, now used up.
    RecoveryCode,
}

/// Checks a code from the app, or a recovery code, for a user with
/// two-factor sign-in on; each is taken once. `Wrong` for anything else.
pub async fn check(
    conn: &mut AsyncPgConnection,
    key: &SecretKey,
    user: UserId,
    code: &str,
    now: DateTime<Utc>,
) -> Result<Factor, CodeError> {
    let (enabled, sealed): (bool, Option<String>) = users::table
        .find(user.0)
        .select((users::totp_enabled, users::totp_secret_sealed))
        .first(conn)
        .await?;
    let sealed = sealed.filter(|_| enabled).ok_or(CodeError::NotStarted)?;
    let secret = open_secret(key, &sealed)?;
    if let Some(step) = matching_step(&secret, code, now) {
        return if take_step(conn, user, step).await? {
            Ok(Factor::Code)
        } else {
            Err(CodeError::Wrong)
        };
    }
    let used = diesel::update(
        recovery_codes::table
            .filter(recovery_codes::user_id.eq(user.0))
            .filter(recovery_codes::code_hash.eq(recovery_digest(code)))
            .filter(recovery_codes::used_at.is_null()),
    )
    .set(recovery_codes::used_at.eq(now))
    .execute(conn)
    .await?;
    if used == 1 {
        Ok(Factor::RecoveryCode)
    } else {
        Err(CodeError::Wrong)
    }
}

/// How long a password checked waits for its second factor.
pub const CHALLENGE_MINUTES: i64 = 5;
/// Codes one challenge takes before it must start again from the password.
pub const CHALLENGE_ATTEMPTS: i32 = 5;

fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Remembers that `user` gave the right password (or came back from the
/// OpenID provider) and must now give a second factor; returns the token
/// for the browser.
pub async fn open_challenge(
    conn: &mut AsyncPgConnection,
    user: UserId,
    next: Option<&str>,
) -> QueryResult<String> {
    let token = crate::keys::random_token();
    diesel::delete(sign_in_challenges::table.filter(sign_in_challenges::expires_at.le(Utc::now())))
        .execute(conn)
        .await?;
    diesel::insert_into(sign_in_challenges::table)
        .values((
            sign_in_challenges::token_hash.eq(token_digest(&token)),
            sign_in_challenges::user_id.eq(user.0),
            sign_in_challenges::next.eq(next),
            sign_in_challenges::expires_at
                .eq(Utc::now() + chrono::Duration::minutes(CHALLENGE_MINUTES)),
        ))
        .execute(conn)
        .await?;
    Ok(token)
}

/// The user and the page to go on to of a live challenge, counting one
/// more try at it; `None` when it is unknown, expired or out of tries.
pub async fn try_challenge(
    conn: &mut AsyncPgConnection,
    token: &str,
) -> QueryResult<Option<(UserId, Option<String>)>> {
    let found: Option<(i64, Option<String>)> = diesel::update(
        sign_in_challenges::table
            .find(token_digest(token))
            .filter(sign_in_challenges::expires_at.gt(Utc::now()))
            .filter(sign_in_challenges::attempts.lt(CHALLENGE_ATTEMPTS)),
    )
    .set(sign_in_challenges::attempts.eq(sign_in_challenges::attempts + 1))
    .returning((sign_in_challenges::user_id, sign_in_challenges::next))
    .get_result(conn)
    .await
    .optional()?;
    Ok(found.map(|(user, next)| (UserId(user), next)))
}

/// Whether a challenge is live (for showing its form).
pub async fn challenge_is_live(conn: &mut AsyncPgConnection, token: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        sign_in_challenges::table
            .find(token_digest(token))
            .filter(sign_in_challenges::expires_at.gt(Utc::now()))
            .filter(sign_in_challenges::attempts.lt(CHALLENGE_ATTEMPTS)),
    ))
    .get_result(conn)
    .await
}

/// Ends a challenge: it was met, or given up.
pub async fn close_challenge(conn: &mut AsyncPgConnection, token: &str) -> QueryResult<()> {
    diesel::delete(sign_in_challenges::table.find(token_digest(token)))
        .execute(conn)
        .await
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238, appendix B: the SHA-1 vectors (secret "12345678901234567890",
    /// eight digits).
    #[test]
    fn the_rfc_6238_test_vectors_come_out() {
        let secret = b"12345678901234567890";
        for (time, expected) in [
            (59u64, 94287082u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            assert_eq!(hotp(secret, time / 30, 8), expected, "at {time}");
        }
    }

    #[test]
    fn rfc_4226_counts_give_its_six_digit_values() {
        let secret = b"12345678901234567890";
        let expected = [755224, 287082, 359152, 969429, 338314];
        for (counter, value) in expected.iter().enumerate() {
            assert_eq!(hotp(secret, counter as u64, 6), *value);
        }
    }

    #[test]
    fn a_code_is_taken_one_step_either_side_and_no_further() {
        let secret = new_secret();
        let now = Utc::now();
        let step = step_at(now);
        for offset in [-1, 0, 1] {
            let code = code_at_step(&secret, step + offset);
            assert_eq!(matching_step(&secret, &code, now), Some(step + offset));
        }
        for offset in [-3, 3] {
            let code = code_at_step(&secret, step + offset);
            // A different step's code may collide by chance (one in a million).
            let found = matching_step(&secret, &code, now);
            assert!(found.is_none() || found.is_some_and(|s| (s - step).abs() <= 1));
        }
        assert_eq!(matching_step(&secret, "12345", now), None);
        assert_eq!(matching_step(&secret, "abcdef", now), None);
    }

    #[test]
    fn base32_matches_rfc_4648() {
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"fo"), "MZXQ");
        assert_eq!(base32(b"foo"), "MZXW6");
        assert_eq!(base32(b"foob"), "MZXW6YQ");
        assert_eq!(base32(b"fooba"), "MZXW6YTB");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
    }

    #[test]
    fn recovery_codes_are_read_without_case_or_dashes() {
        let code = new_recovery_code();
        assert_eq!(code.len(), 19);
        assert_eq!(
            recovery_digest(&code),
            recovery_digest(&code.to_uppercase().replace('-', " "))
        );
        assert_ne!(
            recovery_digest(&code),
            recovery_digest(&new_recovery_code())
        );
    }

    #[test]
    fn the_otpauth_address_names_the_issuer_and_the_user() {
        let uri = otpauth_uri("Example Telecom", "alice", b"12345678901234567890");
        assert!(uri.starts_with("otpauth://totp/Example%20Telecom%3Aalice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Example%20Telecom"), "{uri}");
    }
}
