//! `examples/cluster.rs` runs under `cargo test`: process workers serving HTTP on one port,
//! counting in a shared buffer (docs/semantics.md X4), so a broken example fails the suite.
//!
//! `harness = false`: `main` calls `process::init` first, as every program using process
//! workers must, so each child (this binary re-executed) serves there.
#![cfg(target_os = "linux")]

#[path = "../examples/cluster.rs"]
#[allow(dead_code)] // the example's own `main` (argument parsing) is not used here
mod example;
mod process_support;

use example::cluster;

fn cluster_example_counts_every_request() {
    cluster::run(2, 50).expect("the cluster example failed");
}

fn main() {
    sharedbuf::process::init(&[&cluster::SERVE]); // children serve here and exit

    // A hang detector, not a speed measurement: a hang fails the run instead of stalling it.
    std::thread::spawn(|| {
        std::thread::sleep(5 * process_support::WATCHDOG);
        eprintln!("cluster: the run hung; aborting");
        std::process::exit(1);
    });
    process_support::run_tests(&[(
        "cluster_example_counts_every_request",
        cluster_example_counts_every_request,
    )]);
}
