//! Node's "cluster: scaling HTTP" with shared memory: N process workers accept HTTP requests on
//! one loopback port (each its own listening socket, joined by `SO_REUSEPORT`, so the kernel
//! spreads connections over them) and count what they serve in one shared buffer. The parent
//! sends a bounded burst of requests itself, then prints each worker's count and the total,
//! read from shared memory, and checks it against what it sent.
//!
//! ```text
//! cargo run --release --example cluster [workers] [requests]
//! ```
//!
//! `cargo test` runs it too, with 2 workers and 50 requests (tests/cluster.rs), so a broken
//! example fails the test suite.

/// The example itself (Linux only: process workers); `tests/cluster.rs` runs it too.
#[cfg(target_os = "linux")]
pub mod cluster {
    use std::io::{self, Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::time::{Duration, Instant};

    use sharedbuf::process::{self, Entry, ProcessContext, ProcessEvent, ProcessWorker};
    use sharedbuf::{atomics, Error, Int32Array, SharedBuffer};

    /// A worker: listens on the port (`args[1]`), counts at its index (`args[2]`) and at the
    /// total (the last counter), until the parent disconnects.
    fn serve(ctx: ProcessContext<(), ()>) -> Result<(), Box<dyn std::error::Error>> {
        let args: Vec<String> = std::env::args().collect();
        let (port, index): (u16, usize) = (args[1].parse()?, args[2].parse()?);
        let counters = Int32Array::new(&ctx.shared_buffers()[0])?;
        let total = counters.len() - 1;
        let listener = reuseport_socket(port, true)?;
        ctx.post_message(&())?; // "listening"
        loop {
            // Look at the link between connections: the parent's disconnect ends the worker.
            match ctx.try_recv() {
                Err(Error::Closed) => return Ok(()),
                Err(other) => return Err(other.into()),
                Ok(_) => {}
            }
            if !readable(&listener, Duration::from_millis(20))? {
                continue;
            }
            let (mut stream, _) = listener.accept()?;
            answer(&mut stream)?;
            atomics::add(&counters, index, 1)?;
            atomics::add(&counters, total, 1)?;
        }
    }
    /// The workers' entry: `process::init(&[&SERVE])` first in `main`.
    pub static SERVE: Entry<(), (), Result<(), Box<dyn std::error::Error>>> =
        Entry::new("serve", serve);

    /// Reads one request's head and sends a small response.
    fn answer(stream: &mut TcpStream) -> io::Result<()> {
        let mut request = Vec::new();
        let mut chunk = [0u8; 1024];
        while !request.ends_with(b"\r\n\r\n") {
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            request.extend_from_slice(&chunk[..n]);
        }
        let body = format!("served by process {}\n", std::process::id());
        write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    /// A TCP socket on 127.0.0.1:`port` with `SO_REUSEPORT` (std has no way to set it before
    /// `bind`), listening if `listen`. Port 0 picks a free one.
    fn reuseport_socket(port: u16, listen: bool) -> io::Result<TcpListener> {
        // SAFETY: plain integer arguments; the result is checked before use.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and is owned by nothing else.
        let socket = unsafe { OwnedFd::from_raw_fd(fd) };
        let one: libc::c_int = 1;
        // SAFETY: `one` is a valid c_int for the duration of the call.
        let set = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_REUSEPORT,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if set != 0 {
            return Err(io::Error::last_os_error());
        }
        let address = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be(),
            },
            sin_zero: [0; 8],
        };
        // SAFETY: `address` is a valid sockaddr_in of the size passed.
        let bound = unsafe {
            libc::bind(
                socket.as_raw_fd(),
                (&address as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        // SAFETY: `listen` on our own socket.
        if bound != 0 || (listen && unsafe { libc::listen(socket.as_raw_fd(), 128) } != 0) {
            return Err(io::Error::last_os_error());
        }
        Ok(TcpListener::from(socket))
    }

    /// Whether `listener` has a connection within `timeout`.
    fn readable(listener: &TcpListener, timeout: Duration) -> io::Result<bool> {
        let mut poll = libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut poll, 1, timeout.as_millis() as libc::c_int) };
        if n < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return Err(io::Error::last_os_error());
        }
        Ok(n > 0)
    }

    /// `cluster [workers] [requests]`: 4 workers and 400 requests by default.
    pub fn main() -> Result<(), Box<dyn std::error::Error>> {
        process::init(&[&SERVE]); // a worker runs `serve` here and exits

        let mut args = std::env::args().skip(1);
        let workers: usize = args.next().map_or(Ok(4), |a| a.parse())?;
        let requests: usize = args.next().map_or(Ok(400), |a| a.parse())?;
        run(workers, requests)
    }

    /// Starts `workers` process workers, sends `requests` requests, and checks the count in
    /// shared memory. `process::init(&[&SERVE])` must have been called first in `main`.
    pub fn run(workers: usize, requests: usize) -> Result<(), Box<dyn std::error::Error>> {
        let start = Instant::now();

        // The port: bound with SO_REUSEPORT but not listening (so it takes no connection),
        // held until every worker listens on it.
        let reserved = reuseport_socket(0, false)?;
        let port = reserved.local_addr()?.port();
        let counters = SharedBuffer::memfd("cluster-counters", 4 * (workers + 1))?;
        let pool: Vec<ProcessWorker<(), ()>> = (0..workers)
            .map(|i| {
                ProcessWorker::builder()
                    .name(format!("http-{i}"))
                    .args([port.to_string(), i.to_string()])
                    .share(&counters)
                    .spawn(&SERVE)
            })
            .collect::<Result<_, _>>()?;
        for worker in &pool {
            // Online, then "listening".
            for _ in 0..2 {
                match worker.recv_event_timeout(Duration::from_secs(10))? {
                    ProcessEvent::Online | ProcessEvent::Message(()) => {}
                    other => return Err(format!("{}: {other:?}", worker.name()).into()),
                }
            }
        }
        drop(reserved);

        let address = SocketAddr::from(([127, 0, 0, 1], port));
        for _ in 0..requests {
            let mut stream = TcpStream::connect(address)?;
            stream.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
            let mut response = String::new();
            stream.read_to_string(&mut response)?;
            assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
        }

        for worker in &pool {
            worker.disconnect();
        }
        for worker in pool {
            let name = worker.name().to_string();
            let exit = worker.join()?;
            assert!(exit.success(), "{name}: {exit}");
        }
        let view = Int32Array::new(&counters)?;
        for i in 0..workers {
            println!("worker {i}: {} requests", atomics::load(&view, i)?);
        }
        let total = atomics::load(&view, workers)?;
        println!(
            "total (from shared memory): {total} of {requests} sent, in {:?}",
            start.elapsed()
        );
        assert_eq!(total as usize, requests);
        Ok(())
    }
}

#[cfg(target_os = "linux")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    cluster::main()
}

#[cfg(not(target_os = "linux"))]
fn main() {
    println!("process workers need Linux");
}
