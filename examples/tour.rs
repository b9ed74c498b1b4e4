//! A short tour of sharedbuf: run it with `cargo run --release --example tour`.
//!
//! It prints each step as it goes: a shared buffer, typed views over it, a DataView, a growable
//! buffer, and the Atomics API used from several threads at once.

use std::thread;

use sharedbuf::{atomics, DataView, Error, Float64Array, Int32Array, SharedBuffer, Uint8Array};

fn main() -> Result<(), Error> {
    println!("== SharedBuffer: zeroed bytes, shared by clone()");
    let buf = SharedBuffer::new(16)?;
    let bytes = Uint8Array::new(&buf)?;
    let ints = Int32Array::new(&buf)?;
    println!("new SharedBuffer(16): {:?}", bytes.to_vec());

    println!("\n== Typed views over the same bytes");
    ints.set(0, 0x0403_0201)?;
    println!(
        "Int32Array[0] = 0x04030201 -> Uint8Array shows {:?}",
        &bytes.to_vec()[..4]
    );
    println!(
        "Int32Array[4] -> {:?} (out of range is None, never a panic)",
        ints.get(4)
    );
    println!("Int32Array.set(4, 1) -> {}", ints.set(4, 1).unwrap_err());
    println!(
        "Int32Array at byte offset 2 -> {}",
        Int32Array::with_range(&buf, 2, None).unwrap_err()
    );

    println!("\n== DataView: any type, any offset, either byte order");
    let dv = DataView::new(&buf)?;
    dv.set_float64(5, std::f64::consts::PI, false)?;
    println!(
        "setFloat64(5, PI, big-endian) -> bytes {:?}",
        &bytes.to_vec()[5..13]
    );
    println!("getFloat64(5, big-endian) -> {}", dv.get_float64(5, false)?);

    println!("\n== Growable buffers: reserved once, never moved");
    let g = SharedBuffer::growable(8, 64)?;
    let tracking = Float64Array::new(&g)?;
    println!(
        "growable(8, 64): a length-tracking Float64Array has {} elements",
        tracking.len()
    );
    g.grow(32)?;
    println!(
        "grow(32): now {} elements, the new ones read {:?}",
        tracking.len(),
        tracking.to_vec()
    );
    println!("grow(16) -> {}", g.grow(16).unwrap_err());
    println!("grow(128) -> {}", g.grow(128).unwrap_err());
    let copy = buf.slice(0..4)?;
    println!(
        "slice(0..4) copies: {:?}, shares memory: {}",
        Uint8Array::new(&copy)?.to_vec(),
        copy.same_memory(&buf)
    );

    println!("\n== Atomics from four threads");
    let counter = Int32Array::new(&SharedBuffer::new(4)?)?;
    thread::scope(|s| {
        for _ in 0..4 {
            let counter = counter.clone();
            s.spawn(move || {
                for _ in 0..10_000 {
                    atomics::add(&counter, 0, 1).expect("index 0 is in range");
                }
            });
        }
    });
    println!(
        "4 threads x 10000 atomics::add -> {}",
        atomics::load(&counter, 0)?
    );
    println!(
        "compare_exchange(0, 40000 -> 7) returned {}",
        atomics::compare_exchange(&counter, 0, 40_000, 7)?
    );
    println!(
        "Atomics.isLockFree(4) = {}, (3) = {}",
        atomics::is_lock_free(4),
        atomics::is_lock_free(3)
    );

    println!("\n== wait / notify: a handoff between two threads");
    let cell = Int32Array::new(&SharedBuffer::new(8)?)?;
    let peer = cell.clone();
    let ponger = thread::spawn(move || -> Result<u32, sharedbuf::Error> {
        // Answer each odd number with the next even one, sleeping in between.
        let mut answered = 0;
        for round in 0..1000 {
            while atomics::load(&peer, 0)? != 2 * round + 1 {
                atomics::wait(&peer, 0, 2 * round, None)?;
            }
            atomics::store(&peer, 0, 2 * round + 2)?;
            atomics::notify(&peer, 0, None)?;
            answered += 1;
        }
        Ok(answered)
    });
    let started = std::time::Instant::now();
    for round in 0..1000 {
        atomics::store(&cell, 0, 2 * round + 1)?;
        atomics::notify(&cell, 0, None)?;
        while atomics::load(&cell, 0)? != 2 * round + 2 {
            atomics::wait(&cell, 0, 2 * round + 1, None)?;
        }
    }
    let answered = ponger.join().expect("the ponger does not panic")?;
    println!(
        "{answered} round trips through atomics::wait/notify, {:?} each",
        started.elapsed() / 1000
    );
    println!(
        "wait with a mismatched value -> {:?}; with a 10 ms timeout -> {:?}",
        atomics::wait(&cell, 1, 5, None)?,
        atomics::wait(&cell, 1, 0, Some(std::time::Duration::from_millis(10)))?
    );
    println!(
        "notify with nobody waiting woke {} (no lock taken)",
        atomics::notify(&cell, 1, None)?
    );
    Ok(())
}
