//! Route selection for an HTTP API: which route key a request's method and path select,
//! and the values of the route's path variables.
//!
//! The rules are those of API Gateway HTTP APIs ("Routing API requests" in AWS's
//! "Create routes for HTTP APIs" page): the most specific route wins and `$default`
//! catches everything else. Precisely:
//!
//! - Paths are compared segment by segment from the left; at each segment a literal
//!   beats `{var}`, which beats a greedy `{var+}`. So `GET /pets/dog/1` beats
//!   `GET /pets/dog/{id}`, which beats `GET /pets/{proxy+}`.
//! - For the same path, a route naming the request's method beats `ANY`. A more
//!   specific path wins even when it only matches through `ANY`.
//! - A route only matches a method it names or `ANY`: `HEAD` does not fall back to
//!   `GET` (AWS documents no such fallback). Methods and literal segments are
//!   case-sensitive.
//! - `{var}` matches one non-empty segment. `{var+}` matches one or more remaining
//!   segments but never nothing: `/a/{proxy+}` matches neither `/a` nor `/a/`, and
//!   `ANY /{proxy+}` does not match `/` (AWS's advice is to add a `/` route or
//!   `$default` for the root).
//! - A trailing slash is a segment of its own (an empty one): `/hello/` does not match
//!   `GET /hello`. Empty segments (`/a//b`) match no literal and no `{var}`; a greedy
//!   variable takes them as part of its value. AWS's routes page documents nothing
//!   about trailing or repeated slashes (only that a greedy variable "catches all child
//!   resources of a route" and must end the path), so this is Portico's reading: users'
//!   reports, not AWS documentation, say HTTP APIs do not fold `/hello/` into `/hello`.
//! - Path variable values are percent-decoded, as AWS notes that "API Gateway decodes
//!   URL-encoded request parameters before passing them to your backend integration".
//!   Literal segments are compared with the decoded segment too. `+` in a path is a
//!   literal `+` (form decoding applies to query strings only).
//!
//! This module knows nothing of stages, HTTP types or integrations: the caller hands in
//! the path with any stage prefix already removed.
//!
//! The table is a trie of path segments, so a lookup walks at most one path per
//! candidate shape and its cost does not grow with the number of routes.

use std::borrow::Cow;
use std::collections::HashMap;

use percent_encoding::percent_decode_str;
use portico_model::api::validate_route_key;

/// Index of `ANY` in [`Methods::slots`]; the other methods come first.
const ANY: usize = 7;

/// Slot of a method named in a route key, `ANY` included.
fn route_method_slot(method: &str) -> Option<usize> {
    match method {
        "ANY" => Some(ANY),
        other => request_method_slot(other),
    }
}

/// Slot of a request's method; methods no route key can name (`PROPFIND`, `get`)
/// have none and match `ANY` routes only.
fn request_method_slot(method: &str) -> Option<usize> {
    Some(match method {
        "GET" => 0,
        "POST" => 1,
        "PUT" => 2,
        "PATCH" => 3,
        "DELETE" => 4,
        "HEAD" => 5,
        "OPTIONS" => 6,
        _ => return None,
    })
}

/// The routes ending at one place of the trie, one per method.
#[derive(Debug, Default)]
struct Methods {
    /// Indexes into [`RouteTable::routes`]; see [`request_method_slot`] and [`ANY`].
    slots: [Option<usize>; 8],
}

impl Methods {
    fn get(&self, method: &str) -> Option<usize> {
        request_method_slot(method).and_then(|slot| self.slots[slot]).or(self.slots[ANY])
    }
}

/// One position in the path: what may come next.
#[derive(Debug, Default)]
struct Node {
    literal: HashMap<Box<str>, Node>,
    /// The `{var}` child, shared by every variable name used at this position (the
    /// names live on the routes).
    param: Option<Box<Node>>,
    /// Routes whose greedy `{var+}` starts at this position.
    greedy: Methods,
    /// Routes whose path ends exactly here.
    end: Methods,
}

/// What a route records besides its place in the trie.
#[derive(Debug)]
struct Entry<T> {
    route_key: Box<str>,
    value: T,
    /// The route's variable names, left to right (a greedy one last).
    params: Box<[Box<str>]>,
}

/// Where a path variable's value lies in the request path.
#[derive(Debug, Clone, Copy)]
enum Capture {
    /// The segment with this index.
    Segment(usize),
    /// Everything from this byte offset of the path (leading `/` removed) to its end.
    Rest(usize),
}

/// A request path cut into segments, each percent-decoded once.
struct Segments<'p> {
    /// The path without its leading `/`.
    path: &'p str,
    /// Byte offset in `path` of each segment, and the segment decoded.
    items: Vec<(usize, Cow<'p, str>)>,
}

impl<'p> Segments<'p> {
    fn new(path: &'p str) -> Segments<'p> {
        let path = path.strip_prefix('/').unwrap_or(path);
        let mut items = Vec::new();
        // "/" is the root (no segment), while "/a/" ends with an empty segment.
        if !path.is_empty() {
            let mut start = 0;
            for seg in path.split('/') {
                items.push((start, percent_decode_str(seg).decode_utf8_lossy()));
                start += seg.len() + 1;
            }
        }
        Segments { path, items }
    }
}

/// The routes of one HTTP API, compiled for matching requests.
#[derive(Debug)]
pub struct RouteTable<T> {
    root: Node,
    routes: Vec<Entry<T>>,
    /// The `$default` route, if any.
    default: Option<usize>,
}

/// The route a request selected.
#[derive(Debug)]
pub struct RouteMatch<'a, T> {
    /// The value stored with the route.
    pub value: &'a T,
    /// The route key as given to [`RouteTable::build`] (`GET /pets/{id}`, `$default`).
    pub route_key: &'a str,
    /// Each path variable's name and its percent-decoded value, left to right; empty
    /// for `$default`.
    pub path_parameters: Vec<(&'a str, String)>,
}

/// One segment of a route key's path.
enum Pattern<'k> {
    Literal(&'k str),
    Param(&'k str),
    Greedy(&'k str),
}

fn parse_segment(seg: &str) -> Pattern<'_> {
    match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
        Some(inner) => match inner.strip_suffix('+') {
            Some(name) => Pattern::Greedy(name),
            None => Pattern::Param(inner),
        },
        None => Pattern::Literal(seg),
    }
}

impl<T> RouteTable<T> {
    /// Compiles `(route key, value)` pairs. Keys that are not valid HTTP API route keys
    /// are skipped (the control plane has validated them already); when two keys have
    /// the same method and path shape, the first one is kept.
    pub fn build(routes: impl IntoIterator<Item = (String, T)>) -> RouteTable<T> {
        let mut table = RouteTable { root: Node::default(), routes: Vec::new(), default: None };
        for (key, value) in routes {
            table.insert(key, value);
        }
        table
    }

    fn insert(&mut self, key: String, value: T) {
        if validate_route_key(&key).is_err() {
            return;
        }
        let index = self.routes.len();
        if key == "$default" {
            if self.default.is_none() {
                self.default = Some(index);
                self.routes.push(Entry { route_key: key.into_boxed_str(), value, params: Box::default() });
            }
            return;
        }
        let Some((method, path)) = key.split_once(' ') else {
            return;
        };
        let Some(slot) = route_method_slot(method) else {
            return;
        };
        let mut params = Vec::new();
        let mut node = &mut self.root;
        let mut greedy = false;
        let trimmed = &path[1..];
        if !trimmed.is_empty() {
            for seg in trimmed.split('/') {
                match parse_segment(seg) {
                    Pattern::Literal(lit) => node = node.literal.entry(lit.into()).or_default(),
                    Pattern::Param(name) => {
                        params.push(Box::from(name));
                        node = node.param.get_or_insert_with(Box::default);
                    }
                    Pattern::Greedy(name) => {
                        // Validation guarantees the greedy variable is the last segment.
                        params.push(Box::from(name));
                        greedy = true;
                    }
                }
            }
        }
        let methods = if greedy { &mut node.greedy } else { &mut node.end };
        if methods.slots[slot].is_some() {
            return;
        }
        methods.slots[slot] = Some(index);
        self.routes.push(Entry { route_key: key.into_boxed_str(), value, params: params.into_boxed_slice() });
    }

    /// Selects the route for a request. `path` is the request path without the query
    /// string and without any stage prefix, exactly as sent (not yet decoded).
    pub fn find(&self, method: &str, path: &str) -> Option<RouteMatch<'_, T>> {
        let segments = Segments::new(path);
        let mut captures = Vec::new();
        let Some(index) = lookup(&self.root, method, &segments, 0, &mut captures) else {
            let entry = &self.routes[self.default?];
            return Some(RouteMatch { value: &entry.value, route_key: &entry.route_key, path_parameters: Vec::new() });
        };
        let entry = &self.routes[index];
        // The route was found along the very variable positions captured, so the names
        // and the captures pair up one to one.
        let path_parameters = entry
            .params
            .iter()
            .zip(captures)
            .map(|(name, capture)| {
                let value = match capture {
                    Capture::Segment(i) => segments.items[i].1.clone().into_owned(),
                    Capture::Rest(offset) => {
                        percent_decode_str(&segments.path[offset..]).decode_utf8_lossy().into_owned()
                    }
                };
                (&**name, value)
            })
            .collect();
        Some(RouteMatch { value: &entry.value, route_key: &entry.route_key, path_parameters })
    }
}

/// Depth-first search in priority order (literal, then `{var}`, then greedy), so the
/// first route found is the most specific one. Recursion depth is bounded by the depth
/// of the trie, not by the length of the request path.
fn lookup(
    node: &Node,
    method: &str,
    segments: &Segments<'_>,
    depth: usize,
    captures: &mut Vec<Capture>,
) -> Option<usize> {
    let Some((offset, seg)) = segments.items.get(depth) else {
        return node.end.get(method);
    };
    if let Some(child) = node.literal.get(seg.as_ref()) {
        if let Some(found) = lookup(child, method, segments, depth + 1, captures) {
            return Some(found);
        }
    }
    if let (Some(child), false) = (&node.param, seg.is_empty()) {
        captures.push(Capture::Segment(depth));
        if let Some(found) = lookup(child, method, segments, depth + 1, captures) {
            return Some(found);
        }
        captures.pop();
    }
    // A greedy variable needs something to catch: "/a/" leaves nothing after "/a/".
    if segments.path.len() > *offset {
        if let Some(found) = node.greedy.get(method) {
            captures.push(Capture::Rest(*offset));
            return Some(found);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(keys: &[&str]) -> RouteTable<String> {
        RouteTable::build(keys.iter().map(|k| (k.to_string(), k.to_string())))
    }

    /// Checks which route `method path` selects (`None`: no route) and its parameters.
    fn check(t: &RouteTable<String>, method: &str, path: &str, want: Option<&str>, params: &[(&str, &str)]) {
        let got = t.find(method, path);
        assert_eq!(got.as_ref().map(|m| m.route_key), want, "{method} {path}");
        if let Some(m) = got {
            assert_eq!(m.value, m.route_key);
            let got: Vec<(&str, &str)> = m.path_parameters.iter().map(|(n, v)| (*n, v.as_str())).collect();
            assert_eq!(got, params, "{method} {path}");
        }
    }

    #[test]
    fn aws_routing_example() {
        // The example table of AWS's "Routing API requests" section.
        let t = table(&["GET /pets/dog/1", "GET /pets/dog/{id}", "GET /pets/{proxy+}", "ANY /{proxy+}", "$default"]);
        check(&t, "GET", "/pets/dog/1", Some("GET /pets/dog/1"), &[]);
        check(&t, "GET", "/pets/dog/2", Some("GET /pets/dog/{id}"), &[("id", "2")]);
        check(&t, "GET", "/pets/cat/1", Some("GET /pets/{proxy+}"), &[("proxy", "cat/1")]);
        check(&t, "POST", "/pets/cat/1", Some("ANY /{proxy+}"), &[("proxy", "pets/cat/1")]);
        check(&t, "GET", "/", Some("$default"), &[]);
    }

    #[test]
    fn literal_beats_param_beats_greedy_from_the_left() {
        let t = table(&["GET /a/{x}/c", "GET /{y}/b/c", "GET /a/{proxy+}", "GET /a/b/{z}"]);
        // Compared from the left: "a" (literal) then "b" (literal) wins over "{x}".
        check(&t, "GET", "/a/b/c", Some("GET /a/b/{z}"), &[("z", "c")]);
        check(&t, "GET", "/a/q/c", Some("GET /a/{x}/c"), &[("x", "q")]);
        check(&t, "GET", "/q/b/c", Some("GET /{y}/b/c"), &[("y", "q")]);
        // Backtracking: the literal branch "a/b" dead-ends, "{x}" does not fit, greedy does.
        check(&t, "GET", "/a/b/c/d", Some("GET /a/{proxy+}"), &[("proxy", "b/c/d")]);
        check(&t, "GET", "/z/z/z", None, &[]);
    }

    #[test]
    fn method_specificity() {
        let t = table(&["ANY /items", "GET /items", "HEAD /other", "ANY /{proxy+}", "POST /items/{id}"]);
        check(&t, "GET", "/items", Some("GET /items"), &[]);
        check(&t, "POST", "/items", Some("ANY /items"), &[]);
        check(&t, "HEAD", "/items", Some("ANY /items"), &[]);
        // HEAD does not fall back to GET, nor GET to HEAD.
        check(&t, "HEAD", "/other", Some("HEAD /other"), &[]);
        check(&t, "GET", "/other", Some("ANY /{proxy+}"), &[("proxy", "other")]);
        // A specific method on a less specific path loses to ANY on a more specific one
        // only when that path exists for the method: here POST /items/{id} is the match.
        check(&t, "POST", "/items/7", Some("POST /items/{id}"), &[("id", "7")]);
        check(&t, "DELETE", "/items/7", Some("ANY /{proxy+}"), &[("proxy", "items/7")]);
        // Methods are case-sensitive and unknown ones only match ANY.
        check(&t, "get", "/items", Some("ANY /items"), &[]);
        check(&t, "PROPFIND", "/items", Some("ANY /items"), &[]);
    }

    #[test]
    fn more_specific_path_through_any_beats_method_on_greedy() {
        let t = table(&["ANY /pets/{id}", "GET /pets/{proxy+}"]);
        check(&t, "GET", "/pets/1", Some("ANY /pets/{id}"), &[("id", "1")]);
        check(&t, "GET", "/pets/1/toys", Some("GET /pets/{proxy+}"), &[("proxy", "1/toys")]);
    }

    #[test]
    fn default_route_and_no_match() {
        let t = table(&["GET /hello", "$default"]);
        check(&t, "POST", "/hello", Some("$default"), &[]);
        check(&t, "GET", "/nope", Some("$default"), &[]);
        let t = table(&["GET /hello"]);
        check(&t, "POST", "/hello", None, &[]);
        check(&t, "GET", "/Hello", None, &[]);
    }

    #[test]
    fn root_trailing_slash_and_empty_segments() {
        let t = table(&["GET /", "GET /hello", "GET /a/{proxy+}", "GET /p/{id}"]);
        check(&t, "GET", "/", Some("GET /"), &[]);
        check(&t, "GET", "", Some("GET /"), &[]);
        check(&t, "GET", "/hello", Some("GET /hello"), &[]);
        check(&t, "GET", "/hello/", None, &[]);
        check(&t, "GET", "/a", None, &[]);
        check(&t, "GET", "/a/", None, &[]);
        check(&t, "GET", "/a/b/", Some("GET /a/{proxy+}"), &[("proxy", "b/")]);
        check(&t, "GET", "/a//b", Some("GET /a/{proxy+}"), &[("proxy", "/b")]);
        check(&t, "GET", "/p/", None, &[]);
        check(&t, "GET", "//hello", None, &[]);
        let t = table(&["ANY /{proxy+}"]);
        check(&t, "GET", "/", None, &[]);
        check(&t, "GET", "/x", Some("ANY /{proxy+}"), &[("proxy", "x")]);
    }

    #[test]
    fn percent_decoded_parameters() {
        let t = table(&["GET /users/{name}", "GET /files/{path+}", "GET /café"]);
        check(&t, "GET", "/users/J%C3%BCrgen%20M", Some("GET /users/{name}"), &[("name", "Jürgen M")]);
        check(&t, "GET", "/users/a+b", Some("GET /users/{name}"), &[("name", "a+b")]);
        // An encoded slash stays inside its segment.
        check(&t, "GET", "/users/a%2Fb", Some("GET /users/{name}"), &[("name", "a/b")]);
        check(&t, "GET", "/files/a%20b/c", Some("GET /files/{path+}"), &[("path", "a b/c")]);
        check(&t, "GET", "/caf%C3%A9", Some("GET /café"), &[]);
        // Invalid UTF-8 is replaced rather than rejected.
        check(&t, "GET", "/users/%FF", Some("GET /users/{name}"), &[("name", "\u{FFFD}")]);
    }

    #[test]
    fn different_variable_names_at_one_position() {
        let t = table(&["GET /pets/{petId}", "DELETE /pets/{id}", "PUT /pets/{a}/{b+}"]);
        check(&t, "GET", "/pets/4", Some("GET /pets/{petId}"), &[("petId", "4")]);
        check(&t, "DELETE", "/pets/4", Some("DELETE /pets/{id}"), &[("id", "4")]);
        check(&t, "PUT", "/pets/4/x/y", Some("PUT /pets/{a}/{b+}"), &[("a", "4"), ("b", "x/y")]);
    }

    #[test]
    fn invalid_and_duplicate_keys_are_skipped() {
        let t = RouteTable::build(vec![
            ("FETCH /x".to_string(), 1),
            ("GET /{a+}/b".to_string(), 2),
            ("GET /x".to_string(), 3),
            ("GET /x".to_string(), 4),
            ("$default".to_string(), 5),
            ("$default".to_string(), 6),
        ]);
        assert_eq!(t.find("GET", "/x").map(|m| *m.value), Some(3));
        assert_eq!(t.find("FETCH", "/x").map(|m| *m.value), Some(5));
        assert_eq!(t.find("GET", "/q/b").map(|m| *m.value), Some(5));
    }

    #[test]
    fn ten_thousand_routes() {
        let mut keys = Vec::new();
        for i in 0..2_500 {
            keys.push((format!("GET /svc{i}/items"), i * 4));
            keys.push((format!("POST /svc{i}/items/{{id}}"), i * 4 + 1));
            keys.push((format!("ANY /svc{i}/items/{{id}}/{{rest+}}"), i * 4 + 2));
            keys.push((format!("DELETE /svc{i}/{{kind}}/x"), i * 4 + 3));
        }
        assert_eq!(keys.len(), 10_000);
        let t = RouteTable::build(keys);
        for i in (0..2_500).step_by(7) {
            let m = t.find("GET", &format!("/svc{i}/items")).expect("GET route");
            assert_eq!(*m.value, i * 4);
            let m = t.find("POST", &format!("/svc{i}/items/42")).expect("POST route");
            assert_eq!((*m.value, m.path_parameters[0].1.as_str()), (i * 4 + 1, "42"));
            let m = t.find("PATCH", &format!("/svc{i}/items/42/a/b")).expect("ANY route");
            assert_eq!(*m.value, i * 4 + 2);
            assert_eq!(m.path_parameters, vec![("id", "42".to_string()), ("rest", "a/b".to_string())]);
            // "items" is a literal here, so DELETE backtracks into "{kind}".
            let m = t.find("DELETE", &format!("/svc{i}/items/x")).expect("DELETE route");
            assert_eq!((*m.value, m.route_key), (i * 4 + 3, &*format!("DELETE /svc{i}/{{kind}}/x")));
            assert!(t.find("GET", &format!("/svc{i}/items/42")).is_none());
        }
        assert!(t.find("GET", "/svc2500/items").is_none());
    }
}
