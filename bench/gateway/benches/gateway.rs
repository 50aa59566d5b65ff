//! The gateway's pure per-request work, without I/O: route match
//! (`RouteTable::find`) with 10 and 10 000 routes, the payload 2.0 event of the seed's
//! request, the mapping of the seed's answer, and the three together. Run with
//! `make bench-gateway` or `cargo bench -p portico-bench-gateway`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use portico_bench_gateway::{requests, route_table, seed_context, seed_headers, seed_request, SEED_ANSWER};
use portico_gateway::payload::Format;

const SIZES: [usize; 2] = [10, 10_000];

fn route(c: &mut Criterion) {
    for n in SIZES {
        let table = route_table(n);
        let mut group = c.benchmark_group(format!("route/{n}"));
        for (name, method, path) in requests(n) {
            group.bench_function(name, |b| b.iter(|| black_box(table.find(black_box(method), black_box(&path)))));
        }
        group.finish();
    }
}

fn payload(c: &mut Criterion) {
    let headers = seed_headers();
    let vars = BTreeMap::new();
    let req = seed_request(&headers);
    let ctx = seed_context("$default", &[], &vars);
    c.bench_function("event/v2/seed", |b| b.iter(|| black_box(Format::V2.event(black_box(&req), black_box(&ctx)))));
    c.bench_function("response/v2/seed", |b| {
        b.iter(|| black_box(Format::V2.response(black_box(SEED_ANSWER)).expect("a valid answer")))
    });
}

/// Route match + event build + response map of the seed request, as the gateway runs
/// them (the function's run between the last two is not part of it).
fn request(c: &mut Criterion) {
    let headers = seed_headers();
    let vars = BTreeMap::new();
    for n in SIZES {
        let table = route_table(n);
        c.bench_function(&format!("request/{n}/seed"), |b| {
            b.iter(|| {
                let req = seed_request(black_box(&headers));
                let found = table.find(req.method, req.raw_path).expect("GET /hello");
                let event = Format::V2.event(&req, &seed_context(found.route_key, &found.path_parameters, &vars));
                black_box(event);
                black_box(Format::V2.response(black_box(SEED_ANSWER)).expect("a valid answer"))
            })
        });
    }
}

criterion_group! {
    name = benches;
    // Shorter than criterion's defaults (3 s + 5 s): the figures settle well within this.
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = route, payload, request
}
criterion_main!(benches);
