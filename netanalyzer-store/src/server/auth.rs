//! Bearer-token authentication: which sensor a request speaks for.

use std::collections::BTreeMap;

/// Why a request was not let in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AuthError {
    /// No `Authorization` header, or not `Bearer <token>`: 401.
    Missing,
    /// A token no sensor has: 403.
    Unknown,
}

/// The configured tokens, checked in constant time per token.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tokens {
    /// `(token, sensor)` pairs.
    pairs: Vec<(String, String)>,
}

impl Tokens {
    /// From the config's `sensor -> token` map.
    pub(crate) fn new(by_sensor: &BTreeMap<String, String>) -> Self {
        Tokens {
            pairs: by_sensor
                .iter()
                .map(|(s, t)| (t.clone(), s.clone()))
                .collect(),
        }
    }

    /// Whether ingest is open (no token configured).
    pub(crate) fn is_open(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The sensor a request may speak for: `Ok(None)` when ingest is open,
    /// `Ok(Some(sensor))` for a known token.
    pub(crate) fn check(&self, authorization: Option<&[u8]>) -> Result<Option<&str>, AuthError> {
        if self.is_open() {
            return Ok(None);
        }
        let header = authorization.ok_or(AuthError::Missing)?;
        let token = bearer(header).ok_or(AuthError::Missing)?;
        // Compare against every token, without early exit, so the time
        // taken says nothing about how much of a token matched.
        let mut found = None;
        for (t, sensor) in &self.pairs {
            if ct_eq(t.as_bytes(), token) {
                found = Some(sensor.as_str());
            }
        }
        found.map(Some).ok_or(AuthError::Unknown)
    }
}

/// Checks a read token (the query API and the dashboard): `Ok` when
/// `tokens` is empty (reading is open) or when the bearer token of
/// `authorization`, else `query_token` (`?token=`, for a WebSocket that
/// cannot set headers), is one of `tokens`. Every token is compared in
/// constant time, without early exit.
pub(crate) fn check_read_token(
    tokens: &[String],
    authorization: Option<&[u8]>,
    query_token: Option<&str>,
) -> Result<(), AuthError> {
    if tokens.is_empty() {
        return Ok(());
    }
    let token = authorization
        .and_then(bearer)
        .or_else(|| query_token.map(str::as_bytes).filter(|t| !t.is_empty()))
        .ok_or(AuthError::Missing)?;
    let mut found = false;
    for t in tokens {
        found |= ct_eq(t.as_bytes(), token);
    }
    if found {
        Ok(())
    } else {
        Err(AuthError::Unknown)
    }
}

/// The token of `Bearer <token>` (scheme case-insensitive).
fn bearer(header: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = header.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") || rest.first() != Some(&b' ') {
        return None;
    }
    let token = rest[1..].trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Constant-time equality for equal lengths.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        let mut m = BTreeMap::new();
        m.insert("edge-1".to_owned(), "tok1".to_owned());
        m.insert("edge-2".to_owned(), "tok2".to_owned());
        Tokens::new(&m)
    }

    #[test]
    fn checks_bearer_tokens() {
        let t = tokens();
        assert_eq!(t.check(Some(b"Bearer tok1")), Ok(Some("edge-1")));
        assert_eq!(t.check(Some(b"bearer  tok2 ")), Ok(Some("edge-2")));
        assert_eq!(t.check(None), Err(AuthError::Missing));
        assert_eq!(t.check(Some(b"Basic dG9rMQ==")), Err(AuthError::Missing));
        assert_eq!(t.check(Some(b"Bearer ")), Err(AuthError::Missing));
        assert_eq!(t.check(Some(b"Bearertok1")), Err(AuthError::Missing));
        assert_eq!(t.check(Some(b"Bearer tok3")), Err(AuthError::Unknown));
        assert_eq!(t.check(Some(b"Bearer tok")), Err(AuthError::Unknown));
    }

    #[test]
    fn checks_read_tokens() {
        let t = vec!["r1".to_owned(), "r2".to_owned()];
        assert_eq!(check_read_token(&[], None, None), Ok(()));
        assert_eq!(check_read_token(&t, Some(b"Bearer r2"), None), Ok(()));
        assert_eq!(check_read_token(&t, None, Some("r1")), Ok(()));
        assert_eq!(check_read_token(&t, None, None), Err(AuthError::Missing));
        assert_eq!(
            check_read_token(&t, None, Some("")),
            Err(AuthError::Missing)
        );
        assert_eq!(
            check_read_token(&t, Some(b"Basic x"), None),
            Err(AuthError::Missing)
        );
        assert_eq!(
            check_read_token(&t, Some(b"Bearer r3"), Some("r1")),
            Err(AuthError::Unknown)
        );
        assert_eq!(
            check_read_token(&t, None, Some("r")),
            Err(AuthError::Unknown)
        );
    }

    #[test]
    fn open_without_tokens() {
        let t = Tokens::default();
        assert!(t.is_open());
        assert_eq!(t.check(None), Ok(None));
        assert_eq!(t.check(Some(b"Bearer anything")), Ok(None));
    }
}
