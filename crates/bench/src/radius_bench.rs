//! `ras-bench radius`: RADIUS authentications per second from our client
//! (`server::radius_io`, the code `ras server` uses) against a real
//! FreeRADIUS on loopback in a network namespace, with many requests
//! outstanding at once. FreeRADIUS runs as the tests run it (`-X`, which is
//! single-threaded): the figure is the pair's, and FreeRADIUS's debug
//! logging is most of its cost.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use interop::freeradius::{self, FreeRadius};
use interop::netns::Topology;
use radius::microsoft::MsChap2Response;
use radius::{AccessOutcome, ClientConfig, Outcome, Request, Secret};
use server::radius_io::RadiusHandle;

#[derive(clap::Args, Clone)]
pub struct RadiusArgs {
    /// Access-Requests per method.
    #[arg(long, default_value_t = 3000)]
    requests: usize,
    /// Requests outstanding at once.
    #[arg(long, default_value_t = 32)]
    parallel: usize,
}

pub fn run(args: RadiusArgs) -> anyhow::Result<()> {
    let topo = Topology::create("rasbrd").map_err(anyhow::Error::msg)?;
    let dir = tempfile::tempdir()?;
    let srv = topo.ns("srv");
    let _fr = FreeRadius::start(dir.path(), Some(&srv), Ipv4Addr::LOCALHOST)
        .map_err(anyhow::Error::msg)
        .context("starting FreeRADIUS")?;
    let results = topo
        .in_ns("srv", move || -> anyhow::Result<Vec<(String, f64, f64)>> {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let server: SocketAddr = "127.0.0.1:1812".parse()?;
                let handle = RadiusHandle::start(
                    vec![server],
                    ClientConfig::new(Secret::new(freeradius::SECRET.as_bytes().to_vec()), None),
                )
                .await?;
                let mut out = Vec::new();
                for method in ["pap", "mschapv2"] {
                    let (rate, p99) =
                        measure(&handle, method, args.requests, args.parallel).await?;
                    out.push((method.to_owned(), rate, p99));
                }
                Ok(out)
            })
        })
        .map_err(anyhow::Error::msg)??;
    println!("RADIUS authentications against FreeRADIUS 3.2 (-X) on loopback, {} requests, {} outstanding:", args.requests, args.parallel);
    for (method, rate, p99) in results {
        println!("  {method:9} {rate:8.0} auth/s   p99 latency {p99:.2} ms");
    }
    Ok(())
}

fn request(method: &str) -> Request {
    match method {
        "pap" => Request::pap(b"test", b"test123"),
        _ => {
            let auth_challenge = [7u8; 16];
            let peer_challenge = [9u8; 16];
            let hash = ppp::crypto::mschap::nt_password_hash("test123");
            let nt = ppp::crypto::mschap::generate_nt_response(
                &auth_challenge,
                &peer_challenge,
                b"test",
                &hash,
            );
            Request::mschapv2(
                b"test",
                &auth_challenge,
                &MsChap2Response {
                    ident: 1,
                    flags: 0,
                    peer_challenge,
                    response: nt,
                },
            )
        }
    }
}

async fn measure(
    handle: &RadiusHandle,
    method: &str,
    requests: usize,
    parallel: usize,
) -> anyhow::Result<(f64, f64)> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..parallel {
        let handle = handle.clone();
        let next = next.clone();
        let method = method.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < requests {
                let t = Instant::now();
                let answer = handle.request(request(&method)).await?;
                match answer.outcome {
                    Outcome::Access(AccessOutcome::Accept(_)) => {}
                    other => anyhow::bail!("{method}: expected Access-Accept, got {other:?}"),
                }
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let p99 = all.get(all.len() * 99 / 100).copied().unwrap_or(0.0);
    Ok((all.len() as f64 / secs, p99))
}
