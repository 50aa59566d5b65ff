//! Random identifiers in AWS's shapes.

use rand::Rng;

const ALNUM_LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

fn random_lower_alnum(len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len).map(|_| char::from(ALNUM_LOWER[rng.gen_range(0..ALNUM_LOWER.len())])).collect()
}

/// An HTTP API id: ten lower-case alphanumerics.
pub fn api_id() -> String {
    random_lower_alnum(10)
}

/// A route, integration or deployment id: seven lower-case alphanumerics.
pub fn sub_resource_id() -> String {
    random_lower_alnum(7)
}

/// A request id / revision id: a random UUID.
pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Whether `s` has the shape of an API id.
pub fn is_api_id(s: &str) -> bool {
    s.len() == 10 && s.bytes().all(|b| ALNUM_LOWER.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let id = api_id();
        assert!(is_api_id(&id), "{id}");
        assert_eq!(sub_resource_id().len(), 7);
        assert!(!is_api_id("ABCDEFGHIJ"));
    }
}
