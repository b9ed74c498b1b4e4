//! View access costs, each beside its plain-Rust peer in the same run:
//!
//! - `element_get` / `element_set`: a loop over every element of a `Uint32Array` (fixed
//!   length, and length-tracking) vs the same loop on a `Vec<u32>` and on a `Vec<AtomicU32>`
//!   with relaxed operations. Goals: the fixed view within 1.2x of `Vec<AtomicU32>`, the
//!   length-tracking view's slow path (every index past the view's length when made, so each
//!   access loads the buffer's length) within 1.5x; beside it the same loop through a fixed
//!   snapshot of the tracking view's length taken once per loop (`subarray(..len())`, looped
//!   over in the by-reference function below), and the tracking view's plain-Rust twin: the
//!   `Vec<AtomicU32>` loop that, like the view, loads a relaxed atomic length before each
//!   element and checks the index against it, and the floor under both: the `Vec<AtomicU32>`
//!   loop plus one relaxed length load per element with no check at all. Each loop runs
//!   twice: on a view behind `black_box` in the measured closure (the compiler knows nothing
//!   of it between `len()` and the loop, so a fixed view keeps one comparison per element: a
//!   tracking `len()` may write), and in an `#[inline(never)]` function that takes the view
//!   (or the `[AtomicU32]`) by reference, as user code receives one (there the fixed view's
//!   loop is the slice's loop).
//! - `bulk_in` / `bulk_out`: copying 1 MiB and 64 MiB into and out of a `Uint8Array` vs
//!   `copy_from_slice` between two `Vec<u8>`. Goal: at least 0.8x of memcpy's bandwidth.
//! - `fill`: `Uint8Array::fill` and `Uint32Array::fill` of 1 MiB and 64 MiB vs `slice::fill`
//!   on a `Vec` and `ptr::write_bytes` (both memset). Goal: at least 0.8x of memset's bandwidth.
//! - `slice`: `SharedBuffer::slice` of 1 MiB and 64 MiB (a new buffer and the copy) vs cloning a
//!   `Vec<u8>` (a new allocation and the copy) and a plain memcpy into an existing `Vec`. Goal:
//!   at least 0.8x of memcpy's bandwidth. A 64 MiB copy lands in fresh pages (the allocator
//!   maps blocks that large anew), whose first-touch faults cost the slice and the `Vec` clone
//!   alike several times the copy itself. The memcpy peer writes into pages made resident
//!   before the measurement, which no operation that returns new memory can do: the kernel
//!   zeroes every fresh page it hands out. `fresh_mapping_memcpy` (64 MiB) is the slice's own
//!   work in plain Rust (a fresh mapping with huge pages advised, the copy, the unmap): the
//!   floor for a copy into new memory.
//!
//! Run: `cargo bench --bench views -- --warm-up-time 1 --measurement-time 3`.
#![cfg(not(loom))]
// Index loops are the thing measured: the same shape for the view and its peers.
#![allow(clippy::needless_range_loop)]
// `criterion_group!` generates an undocumented `pub fn`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::Relaxed};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sharedbuf::{SharedBuffer, Uint32Array, Uint8Array};

/// Elements per loop: 16 KiB of u32, so the data sits in L1 and the loop itself is measured.
const ELEMENTS: usize = 4096;

/// The `get` loop as a function over a borrowed view, the way user code receives one.
#[inline(never)]
fn sum_view(view: &Uint32Array) -> u32 {
    let mut sum = 0u32;
    for i in 0..view.len() {
        sum = sum.wrapping_add(view.get(i).unwrap());
    }
    sum
}

/// The same loop over borrowed `AtomicU32`s.
#[inline(never)]
fn sum_atomics(v: &[AtomicU32]) -> u32 {
    let mut sum = 0u32;
    for i in 0..v.len() {
        sum = sum.wrapping_add(v[i].load(Relaxed));
    }
    sum
}

fn element_get(c: &mut Criterion) {
    let mut group = c.benchmark_group("element_get");
    group.throughput(Throughput::Elements(ELEMENTS as u64));

    let buf = SharedBuffer::new(ELEMENTS * 4).unwrap();
    let view = Uint32Array::new(&buf).unwrap();
    view.copy_from_slice(0, &(0..ELEMENTS as u32).collect::<Vec<_>>())
        .unwrap();
    group.bench_function("view_u32", |b| {
        b.iter(|| {
            let view = black_box(&view);
            let mut sum = 0u32;
            for i in 0..view.len() {
                sum = sum.wrapping_add(view.get(i).unwrap());
            }
            sum
        })
    });

    // Made empty, then grown: every access is past the view's initial length, so each one
    // checks the buffer's atomic length (the slow path of a length-tracking view).
    let growable = SharedBuffer::growable(0, ELEMENTS * 8).unwrap();
    let tracking = Uint32Array::new(&growable).unwrap();
    growable.grow(ELEMENTS * 4).unwrap();
    group.bench_function("view_u32_length_tracking", |b| {
        b.iter(|| {
            let view = black_box(&tracking);
            let mut sum = 0u32;
            for i in 0..ELEMENTS {
                sum = sum.wrapping_add(view.get(i).unwrap());
            }
            sum
        })
    });
    // The same tracking view through a fixed snapshot of its length taken once per loop (the
    // idiom its docs give for hot loops), looped over by reference as user code receives it.
    group.bench_function("view_u32_length_tracking_snapshot_by_ref", |b| {
        b.iter(|| {
            let tracking = black_box(&tracking);
            sum_view(&tracking.subarray(..tracking.len()).unwrap())
        })
    });

    let atomics: Vec<AtomicU32> = (0..ELEMENTS as u32).map(AtomicU32::new).collect();
    group.bench_function("vec_atomic_u32_relaxed", |b| {
        b.iter(|| {
            let v = black_box(&atomics);
            let mut sum = 0u32;
            for i in 0..v.len() {
                sum = sum.wrapping_add(v[i].load(Relaxed));
            }
            sum
        })
    });
    // The tracking view's peer doing the same work in plain Rust: before each element, a relaxed
    // load of a length that another thread may raise, and a check against it.
    let length = AtomicUsize::new(ELEMENTS * 4);
    group.bench_function(
        "vec_atomic_u32_relaxed_checked_against_atomic_length",
        |b| {
            b.iter(|| {
                let (v, length) = black_box((&atomics[..ELEMENTS], &length));
                let mut sum = 0u32;
                for i in 0..ELEMENTS {
                    assert!(i * 4 + 4 <= length.load(Relaxed));
                    sum = sum.wrapping_add(v[i].load(Relaxed));
                }
                sum
            })
        },
    );

    // The floor under any loop that reads an atomic length before each element: the
    // `Vec<AtomicU32>` loop plus one relaxed load of a length per element, added to the sum
    // (no check, no branch). Both loops are bound by loads: this one issues two per element
    // where the plain loop issues one, so no tracking `get` can come under this figure.
    group.bench_function("vec_atomic_u32_relaxed_plus_a_length_load", |b| {
        b.iter(|| {
            let (v, length) = black_box((&atomics[..ELEMENTS], &length));
            let mut sum = 0u32;
            for i in 0..ELEMENTS {
                sum = sum.wrapping_add(v[i].load(Relaxed) ^ length.load(Relaxed) as u32);
            }
            sum
        })
    });

    // The same two loops in functions that take the view and the slice by reference, as user
    // code receives them.
    group.bench_function("view_u32_by_ref", |b| b.iter(|| sum_view(black_box(&view))));
    group.bench_function("vec_atomic_u32_relaxed_by_ref", |b| {
        b.iter(|| sum_atomics(black_box(&atomics)))
    });

    let plain: Vec<u32> = (0..ELEMENTS as u32).collect();
    group.bench_function("vec_u32", |b| {
        b.iter(|| {
            let v = black_box(&plain);
            let mut sum = 0u32;
            for i in 0..v.len() {
                sum = sum.wrapping_add(v[i]);
            }
            sum
        })
    });
    group.finish();
}

/// The `set` loop as a function over a borrowed view.
#[inline(never)]
fn number_view(view: &Uint32Array) {
    for i in 0..view.len() {
        view.set(i, i as u32).unwrap();
    }
}

/// The same loop over borrowed `AtomicU32`s.
#[inline(never)]
fn number_atomics(v: &[AtomicU32]) {
    for i in 0..v.len() {
        v[i].store(i as u32, Relaxed);
    }
}

fn element_set(c: &mut Criterion) {
    let mut group = c.benchmark_group("element_set");
    group.throughput(Throughput::Elements(ELEMENTS as u64));

    let buf = SharedBuffer::new(ELEMENTS * 4).unwrap();
    let view = Uint32Array::new(&buf).unwrap();
    group.bench_function("view_u32", |b| {
        b.iter(|| {
            let view = black_box(&view);
            for i in 0..view.len() {
                view.set(i, i as u32).unwrap();
            }
        })
    });

    // Made empty, then grown: every access is past the view's initial length, so each one
    // checks the buffer's atomic length (the slow path of a length-tracking view).
    let growable = SharedBuffer::growable(0, ELEMENTS * 8).unwrap();
    let tracking = Uint32Array::new(&growable).unwrap();
    growable.grow(ELEMENTS * 4).unwrap();
    group.bench_function("view_u32_length_tracking", |b| {
        b.iter(|| {
            let view = black_box(&tracking);
            for i in 0..ELEMENTS {
                view.set(i, i as u32).unwrap();
            }
        })
    });
    group.bench_function("view_u32_length_tracking_snapshot_by_ref", |b| {
        b.iter(|| {
            let tracking = black_box(&tracking);
            number_view(&tracking.subarray(..tracking.len()).unwrap())
        })
    });

    let atomics: Vec<AtomicU32> = (0..ELEMENTS).map(|_| AtomicU32::new(0)).collect();
    group.bench_function("vec_atomic_u32_relaxed", |b| {
        b.iter(|| {
            let v = black_box(&atomics);
            for i in 0..v.len() {
                v[i].store(i as u32, Relaxed);
            }
        })
    });
    let length = AtomicUsize::new(ELEMENTS * 4);
    group.bench_function(
        "vec_atomic_u32_relaxed_checked_against_atomic_length",
        |b| {
            b.iter(|| {
                let (v, length) = black_box((&atomics[..ELEMENTS], &length));
                for i in 0..ELEMENTS {
                    assert!(i * 4 + 4 <= length.load(Relaxed));
                    v[i].store(i as u32, Relaxed);
                }
            })
        },
    );
    // The floor, as for `get`: the `Vec<AtomicU32>` loop plus one relaxed length load per
    // element, stored with the element (no check, no branch).
    group.bench_function("vec_atomic_u32_relaxed_plus_a_length_load", |b| {
        b.iter(|| {
            let (v, length) = black_box((&atomics[..ELEMENTS], &length));
            for i in 0..ELEMENTS {
                v[i].store(i as u32 ^ length.load(Relaxed) as u32, Relaxed);
            }
        })
    });

    // The same two loops in functions that take the view and the slice by reference.
    group.bench_function("view_u32_by_ref", |b| {
        b.iter(|| number_view(black_box(&view)))
    });
    group.bench_function("vec_atomic_u32_relaxed_by_ref", |b| {
        b.iter(|| number_atomics(black_box(&atomics)))
    });

    let mut plain = vec![0u32; ELEMENTS];
    group.bench_function("vec_u32", |b| {
        b.iter(|| {
            let v = black_box(&mut plain);
            for i in 0..v.len() {
                v[i] = i as u32;
            }
        })
    });
    group.finish();
}

const MIB: usize = 1024 * 1024;

fn bulk(c: &mut Criterion) {
    for (direction, into_view) in [("bulk_in", true), ("bulk_out", false)] {
        let mut group = c.benchmark_group(direction);
        for size in [MIB, 64 * MIB] {
            group.throughput(Throughput::Bytes(size as u64));
            if size > MIB {
                group.sample_size(10);
            }
            let label = format!("{}MiB", size / MIB);
            let buf = SharedBuffer::new(size).unwrap();
            let view = Uint8Array::new(&buf).unwrap();
            let mut private = vec![0x5Au8; size];
            view.fill(0xA5);
            group.bench_function(BenchmarkId::new("view", &label), |b| {
                if into_view {
                    b.iter(|| view.copy_from_slice(0, black_box(&private)).unwrap())
                } else {
                    b.iter(|| view.copy_to_slice(0, black_box(&mut private)).unwrap())
                }
            });
            let other = vec![0xA5u8; size];
            let mut other = other;
            group.bench_function(BenchmarkId::new("vec_copy_from_slice", &label), |b| {
                // The same direction of traffic: `private` is the source going in, the
                // destination coming out.
                if into_view {
                    b.iter(|| black_box(&mut other).copy_from_slice(black_box(&private)))
                } else {
                    b.iter(|| black_box(&mut private).copy_from_slice(black_box(&other)))
                }
            });
        }
        group.finish();
    }
}

fn fill(c: &mut Criterion) {
    let mut group = c.benchmark_group("fill");
    for size in [MIB, 64 * MIB] {
        group.throughput(Throughput::Bytes(size as u64));
        if size > MIB {
            group.sample_size(10);
        }
        let label = format!("{}MiB", size / MIB);
        let buf = SharedBuffer::new(size).unwrap();
        let bytes = Uint8Array::new(&buf).unwrap();
        let words = Uint32Array::new(&buf).unwrap();
        bytes.fill(1); // touch every page before measuring
        group.bench_function(BenchmarkId::new("view_u8", &label), |b| {
            b.iter(|| black_box(&bytes).fill(black_box(0xA5)))
        });
        group.bench_function(BenchmarkId::new("view_u32", &label), |b| {
            b.iter(|| black_box(&words).fill(black_box(0xA5A5_A5A5)))
        });
        let mut plain = vec![1u8; size];
        group.bench_function(BenchmarkId::new("vec_slice_fill", &label), |b| {
            b.iter(|| black_box(&mut plain[..]).fill(black_box(0xA5)))
        });
        group.bench_function(BenchmarkId::new("ptr_write_bytes", &label), |b| {
            b.iter(|| {
                let dst = black_box(&mut plain[..]);
                // SAFETY: `dst` is a live, exclusively borrowed allocation of `dst.len()` bytes.
                unsafe { std::ptr::write_bytes(dst.as_mut_ptr(), black_box(0xA5), dst.len()) }
            })
        });
    }
    group.finish();
}

fn slice(c: &mut Criterion) {
    let mut group = c.benchmark_group("slice");
    for size in [MIB, 64 * MIB] {
        group.throughput(Throughput::Bytes(size as u64));
        if size > MIB {
            group.sample_size(10);
        }
        let label = format!("{}MiB", size / MIB);
        let buf = SharedBuffer::new(size).unwrap();
        Uint8Array::new(&buf).unwrap().fill(0x5A);
        group.bench_function(BenchmarkId::new("buffer_slice", &label), |b| {
            b.iter(|| black_box(&buf).slice(..).unwrap())
        });
        let source = vec![0x5Au8; size];
        group.bench_function(BenchmarkId::new("vec_clone", &label), |b| {
            b.iter(|| black_box(&source).clone())
        });
        let mut target = vec![0u8; size];
        group.bench_function(BenchmarkId::new("memcpy", &label), |b| {
            b.iter(|| black_box(&mut target[..]).copy_from_slice(black_box(&source)))
        });
        // The slice's own work in plain Rust, for the sizes it maps (8 MiB and up; smaller
        // copies come from the allocator): fresh anonymous memory with huge pages advised,
        // written in full, then unmapped.
        if size >= 8 * MIB {
            group.bench_function(BenchmarkId::new("fresh_mapping_memcpy", &label), |b| {
                b.iter(|| {
                    let mut fresh = memmap2::MmapMut::map_anon(size).unwrap();
                    #[cfg(target_os = "linux")]
                    let _ = fresh.advise(memmap2::Advice::HugePage);
                    fresh.copy_from_slice(black_box(&source));
                    fresh
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, element_get, element_set, bulk, fill, slice);
criterion_main!(benches);
