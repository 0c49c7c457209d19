//! A loopback TCP proxy that delays every byte by a fixed time in each direction: a remote
//! database (PostgreSQL on RDS is 0.3–1 ms of round trip from its clients) simulated on one
//! machine, for the `readers` section.
//!
//! It runs as a child process of the benchmark (`athens-bench --delay-proxy HOST:PORT
//! --delay-rtt-ms R`), so its CPU is not counted as Athens'. Each connection gets two delay lines,
//! one per direction: a thread reads what arrives and stamps it with its due time (arrival + half
//! the round trip); another writes it out once due. Bytes are delayed, not throttled: a message
//! sent while earlier ones are in flight is not held behind them longer than its own delay, as on
//! a network. Blocking threads, not tokio timers: tokio's timer wheel rounds sleeps up to whole
//! milliseconds, too coarse for a 0.25 ms one-way delay; the kernel's timers add tens of
//! microseconds, which is why the section measures the round trip it got rather than trusting
//! the setting.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;

/// Serves the proxy in this process until it is killed: listens on an ephemeral loopback port,
/// prints it on standard output, and forwards every connection to `target` with `rtt_ms` of added
/// round trip.
pub fn serve(target: &str, rtt_ms: f64) -> anyhow::Result<()> {
    let target: SocketAddr = target
        .parse()
        .with_context(|| format!("--delay-proxy {target} is not HOST:PORT"))?;
    let one_way = Duration::from_secs_f64(rtt_ms.max(0.0) / 2_000.0);
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let mut out = std::io::stdout();
    writeln!(out, "{}", listener.local_addr()?)?;
    out.flush()?;
    for client in listener.incoming() {
        let client = client?;
        // A refused connection is the client's error to see, not the end of the proxy.
        let Ok(server) = TcpStream::connect(target) else {
            continue;
        };
        client.set_nodelay(true)?;
        server.set_nodelay(true)?;
        delay_line(client.try_clone()?, server.try_clone()?, one_way);
        delay_line(server, client, one_way);
    }
    Ok(())
}

/// Copies `from` to `to`, each chunk written `delay` after it arrived; at the end of `from`, shuts
/// down the writing half of `to`.
fn delay_line(mut from: TcpStream, mut to: TcpStream, delay: Duration) {
    let (sender, receiver) = mpsc::channel::<(Instant, Vec<u8>)>();
    thread::spawn(move || {
        let mut buffer = vec![0_u8; 64 * 1024];
        while let Ok(read) = from.read(&mut buffer) {
            if read == 0
                || sender
                    .send((Instant::now() + delay, buffer[..read].to_vec()))
                    .is_err()
            {
                break;
            }
        }
    });
    thread::spawn(move || {
        for (due, bytes) in receiver {
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
            if to.write_all(&bytes).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

/// A running proxy child process; killed when dropped.
pub struct DelayProxy {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Whether it runs with a real-time priority (`chrt -f`): its wake-ups then do not wait
    /// behind the machine's other work, as a network's delay does not.
    pub realtime: bool,
}

impl DelayProxy {
    /// Starts this binary as a proxy in front of `target` with `rtt_ms` of added round trip, with
    /// a real-time priority when `chrt` may give it one (on a busy machine a sleeping thread
    /// otherwise wakes up milliseconds late: measured 4 ms of round trip for 0.5 ms asked at a
    /// load average of 9), else with the normal one.
    pub fn start(target: &str, rtt_ms: f64) -> anyhow::Result<DelayProxy> {
        let exe = std::env::current_exe()?;
        let args = [
            "--delay-proxy".to_owned(),
            target.to_owned(),
            "--delay-rtt-ms".to_owned(),
            rtt_ms.to_string(),
        ];
        let mut realtime = Command::new("chrt");
        realtime.args(["-f", "10"]).arg(&exe).args(&args);
        if let Ok(proxy) = DelayProxy::spawn(realtime, true) {
            return Ok(proxy);
        }
        let mut normal = Command::new(exe);
        normal.args(&args);
        DelayProxy::spawn(normal, false)
    }

    fn spawn(mut command: Command, realtime: bool) -> anyhow::Result<DelayProxy> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start the delay proxy")?;
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            BufReader::new(stdout).read_line(&mut line)?;
        }
        let addr = match line.trim().parse() {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                anyhow::bail!("the delay proxy did not say where it listens: {line:?}");
            }
        };
        Ok(DelayProxy {
            child,
            addr,
            realtime,
        })
    }

    /// The proxy process's id (its CPU is read from `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server behind a delay line: a round trip takes at least the delay twice.
    #[test]
    fn a_round_trip_takes_the_added_delay_and_keeps_the_bytes() {
        let echo = TcpListener::bind("127.0.0.1:0").unwrap();
        let echo_addr = echo.local_addr().unwrap();
        thread::spawn(move || {
            let (mut stream, _) = echo.accept().unwrap();
            let mut buffer = [0_u8; 16];
            while let Ok(read) = stream.read(&mut buffer) {
                if read == 0 || stream.write_all(&buffer[..read]).is_err() {
                    break;
                }
            }
        });
        let front = TcpListener::bind("127.0.0.1:0").unwrap();
        let front_addr = front.local_addr().unwrap();
        let one_way = Duration::from_millis(20);
        thread::spawn(move || {
            let (client, _) = front.accept().unwrap();
            let server = TcpStream::connect(echo_addr).unwrap();
            delay_line(
                client.try_clone().unwrap(),
                server.try_clone().unwrap(),
                one_way,
            );
            delay_line(server, client, one_way);
        });
        let mut client = TcpStream::connect(front_addr).unwrap();
        let started = Instant::now();
        client.write_all(b"ping").unwrap();
        let mut answer = [0_u8; 4];
        client.read_exact(&mut answer).unwrap();
        let elapsed = started.elapsed();
        assert_eq!(&answer, b"ping");
        assert!(elapsed >= 2 * one_way, "round trip of {elapsed:?}");
        assert!(elapsed < 20 * one_way, "round trip of {elapsed:?}");
    }
}
