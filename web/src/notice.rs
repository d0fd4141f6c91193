//! A one-line message that a page shows after a redirect ("3 calls priced").
//! It travels in the query string, signed with the secret key, so a page
//! shows only what the server itself said: a link someone else made, with
//! their own words in it, shows nothing.

use switchboard_core::keys::SecretKey;

const PURPOSE: &str = "notice";

/// `name=<text>&name_sig=<tag>`, for a redirect's query string.
pub fn query(key: &SecretKey, name: &str, text: &str) -> String {
    let tag = key.sign(PURPOSE, format!("{name}\n{text}").as_bytes());
    serde_urlencoded::to_string([(name.to_owned(), text), (format!("{name}_sig"), &tag)])
        .unwrap_or_default()
}

/// The message named `name`, when its tag is the server's.
pub fn read<'a>(
    key: &SecretKey,
    name: &str,
    text: Option<&'a str>,
    tag: Option<&str>,
) -> Option<&'a str> {
    let (text, tag) = (text?, tag?);
    key.verify(PURPOSE, format!("{name}\n{text}").as_bytes(), tag)
        .then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_reads_back_only_with_the_servers_tag() {
        let key = SecretKey::generate();
        let query = query(&key, "priced", "3 calls priced");
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&query).expect("a query");
        let tag = pairs[1].1.as_str();
        assert_eq!(
            read(&key, "priced", Some("3 calls priced"), Some(tag)),
            Some("3 calls priced")
        );
        assert_eq!(
            read(&key, "priced", Some("Your account is closed"), Some(tag)),
            None
        );
        assert_eq!(
            read(&key, "imported", Some("3 calls priced"), Some(tag)),
            None
        );
        assert_eq!(read(&key, "priced", Some("3 calls priced"), None), None);
        assert_eq!(
            read(
                &SecretKey::generate(),
                "priced",
                Some("3 calls priced"),
                Some(tag)
            ),
            None
        );
    }
}
