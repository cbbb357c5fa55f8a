//! Fuzz Microsoft CBCP in both roles.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use ppp::cbcp::{
    parse_callback_options, CbcpClient, CbcpClientConfig, CbcpServer, CbcpServerConfig,
};

fuzz_target!(|data: &[u8]| {
    let _ = parse_callback_options(data);
    let now = Instant::now();
    let mut server = CbcpServer::new(CbcpServerConfig::user_number_allowed());
    server.start(now);
    let mut client = CbcpClient::new(CbcpClientConfig::no_callback());
    for chunk in data.split(|&b| b == 0xa5) {
        let _ = server.handle_packet(now, chunk);
        let _ = client.handle_packet(now, chunk);
        while server.poll_transmit().is_some() {}
        while client.poll_transmit().is_some() {}
        while server.poll_event().is_some() {}
        while client.poll_event().is_some() {}
    }
});
