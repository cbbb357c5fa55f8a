//! Counters per rule of the gateway, for the server's metrics and logs.

/// One counter per outcome and per rule that drops (ras-datagram-processing-q97559).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// LAN datagrams delivered to a client's unique name (per client).
    pub unique_forwarded: u64,
    /// LAN datagrams to a unique name dropped because the client's unique
    /// buffer was full (a safety bound, not a seed knob).
    pub unique_dropped_buffer_full: u64,
    /// Group datagrams delivered (per client).
    pub group_forwarded: u64,
    /// Broadcast datagrams delivered (per client).
    pub broadcast_forwarded: u64,
    /// Broadcast datagrams dropped by EnableBroadcast 0.
    pub dropped_enable_broadcast: u64,
    /// Broadcast and group datagrams dropped by MulticastForwardRate -1.
    pub dropped_forward_rate_never: u64,
    /// Broadcast and group datagrams dropped while the gate was closed.
    pub dropped_gate_closed: u64,
    /// Deliveries skipped by DisableMcastFwdWhenSessionTraffic (per client).
    pub dropped_session_traffic: u64,
    /// Datagrams dropped because RcvDgSubmittedperGroupName datagrams for
    /// their name were already received in the same batch.
    pub dropped_receives_exhausted: u64,
    /// Datagrams dropped by MaxDgBufferedPerGroupName.
    pub dropped_buffer_full: u64,
    /// LAN datagrams for a name no client holds.
    pub dropped_no_recipient: u64,
    /// LAN datagrams of a type the gateway does not forward (errors, queries).
    pub dropped_not_forwarded_type: u64,
    /// Clients' datagrams sent out on the LAN (NetbiosGatewayEnabled 1).
    pub client_to_lan: u64,
    /// Clients' datagrams delivered to the server's own names.
    pub client_to_server: u64,
    /// Clients' datagrams dropped by NetbiosGatewayEnabled 0.
    pub dropped_gateway_disabled: u64,
    /// Packets that did not parse, from either side.
    pub malformed: u64,
    /// Names registered on the LAN for clients.
    pub names_registered: u64,
    /// Registrations refused by the LAN (another host owns the name).
    pub names_refused_by_lan: u64,
    /// Registrations refused because another client holds the name in a conflicting way.
    pub names_refused_in_use: u64,
    /// Registrations refused by the per-client MaxNames.
    pub names_refused_client_limit: u64,
    /// Registrations refused by the total MaxNames.
    pub names_refused_total_limit: u64,
    /// Names released (by the client or at the end of its session).
    pub names_released: u64,
    /// LAN name queries answered for clients' unique names.
    pub queries_answered: u64,
    /// LAN registrations of a client's name refused with ACT_ERR.
    pub names_defended: u64,
}

impl Counters {
    /// Every counter with a stable metric name.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> {
        [
            ("unique_forwarded", self.unique_forwarded),
            (
                "unique_dropped_buffer_full",
                self.unique_dropped_buffer_full,
            ),
            ("group_forwarded", self.group_forwarded),
            ("broadcast_forwarded", self.broadcast_forwarded),
            ("dropped_enable_broadcast", self.dropped_enable_broadcast),
            (
                "dropped_forward_rate_never",
                self.dropped_forward_rate_never,
            ),
            ("dropped_gate_closed", self.dropped_gate_closed),
            ("dropped_session_traffic", self.dropped_session_traffic),
            (
                "dropped_receives_exhausted",
                self.dropped_receives_exhausted,
            ),
            ("dropped_buffer_full", self.dropped_buffer_full),
            ("dropped_no_recipient", self.dropped_no_recipient),
            (
                "dropped_not_forwarded_type",
                self.dropped_not_forwarded_type,
            ),
            ("client_to_lan", self.client_to_lan),
            ("client_to_server", self.client_to_server),
            ("dropped_gateway_disabled", self.dropped_gateway_disabled),
            ("malformed", self.malformed),
            ("names_registered", self.names_registered),
            ("names_refused_by_lan", self.names_refused_by_lan),
            ("names_refused_in_use", self.names_refused_in_use),
            (
                "names_refused_client_limit",
                self.names_refused_client_limit,
            ),
            ("names_refused_total_limit", self.names_refused_total_limit),
            ("names_released", self.names_released),
            ("queries_answered", self.queries_answered),
            ("names_defended", self.names_defended),
        ]
        .into_iter()
    }
}
