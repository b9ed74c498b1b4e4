use sharedbuf::pool::*;
use std::sync::Arc;
use std::time::Duration;

#[test]
fn smoke() {
    let pool = WorkerPool::builder()
        .max_threads(4)
        .max_queue(MaxQueue::Unbounded)
        .build()
        .unwrap();
    let h = pool.run(|_| 1 + 1).unwrap();
    assert_eq!(h.join().unwrap(), 2);
    let hs: Vec<_> = (0..1000)
        .map(|i| pool.run(move |_| i * 2).unwrap())
        .collect();
    for (i, h) in hs.into_iter().enumerate() {
        assert_eq!(h.join().unwrap(), i * 2);
    }
    let p = pool.run(|_| -> u8 { panic!("boom") }).unwrap();
    assert_eq!(p.join(), Err(TaskError::Panicked("boom".into())));
    let r = pool.map(0..100_000u64, |x| x * x).unwrap();
    assert_eq!(r.len(), 100_000);
    assert!(r
        .iter()
        .enumerate()
        .all(|(i, &v)| v == (i as u64) * (i as u64)));
    let b = pool.broadcast(|ctx| ctx.worker_index()).unwrap();
    println!("{b:?}");
    let t = pool
        .run_with(
            TaskOptions::new().timeout(Duration::from_millis(5)),
            |ctx| {
                while !ctx.is_cancelled() {
                    std::hint::spin_loop()
                }
                5
            },
        )
        .unwrap();
    assert_eq!(t.join(), Err(TaskError::TimedOut));
    println!("{:#?}", pool.stats());
    let pool = Arc::new(pool);
    let inner = pool.clone();
    let h = pool
        .run(move |_| {
            let s = inner.run(|_| 20).unwrap();
            s.join().unwrap() + 22
        })
        .unwrap();
    assert_eq!(h.join().unwrap(), 42);
    pool.close(Some(Duration::from_secs(5))).unwrap();
    println!("{:#?}", pool.stats());
}

#[test]
fn one_thread_nested() {
    let pool = Arc::new(WorkerPool::builder().max_threads(1).build().unwrap());
    let inner = pool.clone();
    let h = pool
        .run(move |_| {
            let s = inner.run(|_| 20).unwrap();
            s.join().unwrap() + 22
        })
        .unwrap();
    assert_eq!(h.join().unwrap(), 42);
}
