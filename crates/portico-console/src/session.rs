//! Console sessions: who signed in, kept in memory (a restart signs everyone out).
//!
//! A session is named by a random 256-bit token carried only in an `HttpOnly`,
//! `SameSite=Strict` cookie, so page scripts never see it and other sites' pages never
//! send it. Each session also has its own random CSRF token, which the console's script
//! reads from the session document and sends as `X-CSRF-Token` on every state change:
//! a request forged from elsewhere has the cookie at most, never the token.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;
use subtle::ConstantTimeEq;

/// How long a session lasts from sign-in (AWS's console signs out after 12 hours).
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Most sessions kept at once; past it the oldest is dropped (bounds memory).
const MAX_SESSIONS: usize = 10_000;
/// The session cookie's name.
pub const COOKIE: &str = "portico_console";

/// One signed-in session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The signed-in key's account.
    pub account_id: String,
    /// The key it signed in with.
    pub access_key_id: String,
    /// The region chosen at sign-in (a request may name another).
    pub region: String,
    /// The token state-changing requests must echo in `X-CSRF-Token`.
    pub csrf_token: String,
    created: Instant,
}

impl Session {
    /// Whether `token` is this session's CSRF token (constant-time).
    pub fn csrf_matches(&self, token: &str) -> bool {
        bool::from(self.csrf_token.as_bytes().ct_eq(token.as_bytes()))
    }
}

/// The live sessions.
#[derive(Debug, Default)]
pub struct Sessions {
    by_token: Mutex<HashMap<String, Session>>,
}

/// 32 random bytes, hex-encoded.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // The map holds plain data: a panic elsewhere cannot leave it half-updated.
        self.by_token.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a session; returns its cookie token and the session.
    pub fn start(&self, account_id: String, access_key_id: String, region: String) -> (String, Session) {
        let session =
            Session { account_id, access_key_id, region, csrf_token: random_token(), created: Instant::now() };
        let token = random_token();
        let mut map = self.lock();
        map.retain(|_, s| s.created.elapsed() < SESSION_TTL);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map.iter().min_by_key(|(_, s)| s.created).map(|(t, _)| t.clone()) {
                map.remove(&oldest);
            }
        }
        map.insert(token.clone(), session.clone());
        (token, session)
    }

    /// The live session named by `token`.
    pub fn get(&self, token: &str) -> Option<Session> {
        let mut map = self.lock();
        match map.get(token) {
            Some(s) if s.created.elapsed() < SESSION_TTL => Some(s.clone()),
            Some(_) => {
                map.remove(token);
                None
            }
            None => None,
        }
    }

    /// Ends the session named by `token`.
    pub fn end(&self, token: &str) {
        self.lock().remove(token);
    }
}

/// The session token in a `Cookie` header's value, if any.
pub fn token_from_cookies<'a>(cookies: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    cookies
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

/// The `Set-Cookie` value that stores `token` (or, with `None`, removes it).
pub fn set_cookie(token: Option<&str>) -> String {
    match token {
        Some(t) => format!("{COOKIE}={t}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}", SESSION_TTL.as_secs()),
        None => format!("{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_start_find_and_end() {
        let sessions = Sessions::default();
        let (token, s) = sessions.start("123456789012".into(), "AKIA1".into(), "us-east-1".into());
        assert_eq!(token.len(), 64);
        assert_ne!(token, s.csrf_token);
        let found = sessions.get(&token).expect("live session");
        assert_eq!(found.account_id, "123456789012");
        assert!(found.csrf_matches(&s.csrf_token));
        assert!(!found.csrf_matches(""));
        assert!(!found.csrf_matches(&token));
        assert!(sessions.get("nope").is_none());
        sessions.end(&token);
        assert!(sessions.get(&token).is_none());
    }

    #[test]
    fn cookie_token_is_read_among_others() {
        let headers = ["a=1; portico_console=abc ; b=2"];
        assert_eq!(token_from_cookies(headers.iter().copied()), Some("abc"));
        assert_eq!(token_from_cookies(["portico_consolex=1", "x=portico_console"].iter().copied()), None);
        assert_eq!(token_from_cookies(["portico_console="].iter().copied()), None);
        let c = set_cookie(Some("t"));
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Path=/console"));
        assert!(set_cookie(None).contains("Max-Age=0"));
    }
}
