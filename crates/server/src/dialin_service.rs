//! Dial-in PPP on serial lines: one task per configured device, answering
//! calls one after another (a line carries one call at a time), with the
//! same hooks (users, pool, router) and TUN sink as the tunnel services.
//!
//! With modem emulation a call starts with the dialer's AT commands and
//! `ATD<number>`, answered `CONNECT`; without it, PPP starts at once.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ppp::link::LinkConfig;
use tokio::sync::watch;
use tunnel::modem::ModemAnswer;
use tunnel::ppp_over_serial::{self, DialError, SerialSessionConfig};
use tunnel::serial::SerialPort;
use tunnel::{PacketSink, ServerHooks, SessionInfo};

use crate::SessionId;

/// The speed reported in CONNECT (a V.90-era figure; a pty has none).
const CONNECT_SPEED: u32 = 115_200;
/// After a call ends or the device fails, wait this long before
/// answering again (a hung-up pty reads EOF until someone reopens it).
const REARM_DELAY: Duration = Duration::from_millis(500);

/// Everything the dial-in lines share.
#[derive(Clone)]
pub struct DialinService {
    /// The PPP settings of the server role.
    pub link: LinkConfig,
    /// Emulate a modem before PPP.
    pub modem: bool,
    /// Numbers answered (empty: any).
    pub numbers: Vec<String>,
    pub hooks: Arc<dyn ServerHooks>,
    pub sink: Arc<dyn PacketSink>,
}

impl DialinService {
    /// Answer calls on `device` until `shutdown` turns true.
    pub async fn run(self, device: PathBuf, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            match self.one_call(&device, shutdown.clone()).await {
                Ok(()) => {}
                Err(DialError::Stopped) => return,
                Err(e) => tracing::debug!(device = %device.display(), "dial-in line: {e}"),
            }
            tokio::select! {
                _ = tokio::time::sleep(REARM_DELAY) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Open the line, wait for a call, run its PPP session.
    async fn one_call(
        &self,
        device: &std::path::Path,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), DialError> {
        let mut port = SerialPort::open(device)?;
        let (number, initial) = if self.modem {
            let mut modem = ModemAnswer::new(&self.numbers, CONNECT_SPEED);
            let (number, initial) =
                ppp_over_serial::answer(&mut port, &mut modem, &mut shutdown).await?;
            (Some(number), initial)
        } else {
            (None, Vec::new())
        };
        let info = SessionInfo {
            id: SessionId::next().raw(),
            peer: match &number {
                Some(n) => format!("{} (dialed {n})", device.display()),
                None => device.display().to_string(),
            },
            user: None,
        };
        let id = info.id;
        tracing::info!(session_id = id, device = %device.display(), number = number.as_deref().unwrap_or("none"), "dial-in call");
        let config = SerialSessionConfig {
            link: self.link.clone(),
        };
        let outcome = ppp_over_serial::run(
            port,
            &initial,
            config,
            tunnel::Owner::Server(self.hooks.clone()),
            self.sink.clone(),
            info,
            shutdown,
        )
        .await;
        tracing::info!(
            session_id = id,
            device = %device.display(),
            bytes_in = outcome.stats.bytes_in,
            bytes_out = outcome.stats.bytes_out,
            "dial-in session ended: {}",
            outcome.reason
        );
        Ok(())
    }
}
