//! Route keys and route selection: `validate_route_key` on arbitrary keys, then
//! `RouteTable::build` and `find` with arbitrary requests.
//!
//! Keys and paths are either raw strings or built from a small vocabulary, so that
//! valid keys and matching paths are common. Checked on every match:
//! - the route is one of the inputs (first of duplicates), and its method is the
//!   request's or `ANY`;
//! - its path parameters are the key's variables, in order, holding the request's
//!   percent-decoded segments, and its literal segments are the request's segments;
//! - a literal route (`GET /a/b`) always wins for its own method and path.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use percent_encoding::percent_decode_str;
use portico_gateway::route::RouteTable;
use portico_model::api::validate_route_key;

const METHODS: [&str; 10] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY", "get", "FETCH"];
const WORDS: [&str; 10] = ["pets", "dog", "1", "a", "b", "é", "%41", "A", "", "a%2Fb"];
const NAMES: [&str; 6] = ["id", "x", "proxy", "a-b", "n.m", "bad name"];

#[derive(Arbitrary, Debug)]
enum Seg {
    Word(u8),
    Param(u8),
    Greedy(u8),
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum Key {
    Raw(String),
    Default,
    Built { method: u8, segs: Vec<Seg>, trailing_slash: bool },
}

#[derive(Arbitrary, Debug)]
enum Path {
    Raw(String),
    Built { segs: Vec<Seg>, trailing_slash: bool },
}

#[derive(Arbitrary, Debug)]
struct Input {
    keys: Vec<Key>,
    requests: Vec<(u8, Path)>,
}

fn pick<'a>(list: &[&'a str], i: u8) -> &'a str {
    list[usize::from(i) % list.len()]
}

fn seg_text(seg: &Seg) -> String {
    match seg {
        Seg::Word(i) => pick(&WORDS, *i).to_string(),
        Seg::Param(i) => format!("{{{}}}", pick(&NAMES, *i)),
        Seg::Greedy(i) => format!("{{{}+}}", pick(&NAMES, *i)),
        Seg::Raw(s) => s.clone(),
    }
}

fn join(segs: &[Seg], trailing_slash: bool) -> String {
    let mut path = String::new();
    for seg in segs {
        path.push('/');
        path.push_str(&seg_text(seg));
    }
    if trailing_slash || path.is_empty() {
        path.push('/');
    }
    path
}

impl Key {
    fn text(&self) -> String {
        match self {
            Key::Raw(s) => s.clone(),
            Key::Default => "$default".to_string(),
            Key::Built { method, segs, trailing_slash } => {
                format!("{} {}", pick(&METHODS, *method), join(segs, *trailing_slash))
            }
        }
    }
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Checks one match of `method path` against the key it names.
fn check_match(method: &str, path: &str, key: &str, params: &[(&str, String)]) {
    if key == "$default" {
        assert!(params.is_empty());
        return;
    }
    let (key_method, key_path) = key.split_once(' ').expect("a matched key is valid");
    assert!(key_method == method || key_method == "ANY", "{method} {path} matched {key}");
    let route: Vec<&str> = key_path[1..].split('/').filter(|s| !s.is_empty()).collect();
    let raw = path.strip_prefix('/').unwrap_or(path);
    let request: Vec<&str> = if raw.is_empty() { Vec::new() } else { raw.split('/').collect() };
    let mut want = Vec::new();
    for (i, seg) in route.iter().enumerate() {
        match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(inner) => match inner.strip_suffix('+') {
                Some(name) => {
                    // The greedy variable takes the rest, never nothing.
                    let rest = request.get(i..).expect("a greedy variable's segments exist").join("/");
                    assert!(!rest.is_empty(), "{method} {path} matched {key} with nothing for {{{name}+}}");
                    want.push((name, decode(&rest)));
                    assert_eq!(params, want, "{method} {path} matched {key}");
                    return;
                }
                None => {
                    let value = decode(request.get(i).expect("a variable's segment exists"));
                    assert!(!value.is_empty(), "{method} {path} matched {key} with an empty {{{inner}}}");
                    want.push((inner, value));
                }
            },
            None => {
                let got = request.get(i).expect("a literal's segment exists");
                assert_eq!(decode(got), *seg, "{method} {path} matched {key}");
            }
        }
    }
    assert_eq!(request.len(), route.len(), "{method} {path} matched {key}");
    assert_eq!(params, want, "{method} {path} matched {key}");
}

fuzz_target!(|input: Input| {
    let keys: Vec<String> = input.keys.iter().map(Key::text).collect();
    let mut valid = Vec::new();
    for key in &keys {
        if validate_route_key(key).is_ok() {
            let ok = key == "$default"
                || key.split_once(' ').is_some_and(|(m, p)| METHODS[..8].contains(&m) && p.starts_with('/'));
            assert!(ok, "validate_route_key accepted {key:?}");
            valid.push(key.as_str());
        }
    }
    let table = RouteTable::build(keys.iter().cloned().enumerate().map(|(i, k)| (k, i)));

    for (method, path) in &input.requests {
        let method = pick(&METHODS, *method);
        let path = match path {
            Path::Raw(s) => s.clone(),
            Path::Built { segs, trailing_slash } => join(segs, *trailing_slash),
        };
        if let Some(m) = table.find(method, &path) {
            assert!(valid.contains(&m.route_key), "{} is not a valid input key", m.route_key);
            // Of duplicate keys the first is kept.
            let first = keys.iter().position(|k| k == m.route_key).expect("an input key");
            assert_eq!(*m.value, first);
            let params: Vec<(&str, String)> = m.path_parameters.iter().map(|(n, v)| (*n, v.clone())).collect();
            check_match(method, &path, m.route_key, &params);
        }
    }

    // A literal route always wins for its own method and (undecoded) path.
    for key in &valid {
        let Some((method, path)) = key.split_once(' ') else { continue };
        if method == "ANY" || path.contains(['{', '%']) {
            continue;
        }
        let m = table.find(method, path).map(|m| m.route_key);
        assert_eq!(m, Some(*key), "{key} does not select itself");
    }
});
