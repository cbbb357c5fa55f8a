//! PPTP control messages (RFC 2637 §2) and a streaming deframer for the TCP
//! control connection.
//!
//! Every control message starts with the same 12-octet header (RFC 2637 §2):
//!
//! ```text
//! | Length (16) | PPTP Message Type (16) = 1 |
//! | Magic Cookie (32) = 0x1A2B3C4D           |
//! | Control Message Type (16) | Reserved0 (16) |
//! ```
//!
//! and every control message type has one fixed length, which the decoder
//! enforces. Reserved fields are written as zero and ignored on receipt.
//! Text fields (host name, vendor, phone numbers, call statistics) are
//! NUL-padded fixed-size octet strings: decoding stops at the first NUL and
//! encoding truncates to the field size.

use std::collections::VecDeque;

use thiserror::Error;

/// Length of the common control message header.
pub const HEADER_LEN: usize = 12;
/// The Magic Cookie every control message carries (RFC 2637 §1.4).
pub const MAGIC_COOKIE: u32 = 0x1A2B_3C4D;
/// PPTP Message Type 1: Control Message (RFC 2637 §1.4).
pub const PPTP_MESSAGE_TYPE_CONTROL: u16 = 1;
/// PPTP Message Type 2: Management Message (RFC 2637 §1.4, never defined).
pub const PPTP_MESSAGE_TYPE_MANAGEMENT: u16 = 2;
/// The only protocol version defined: 1.0 (RFC 2637 §2.1).
pub const PROTOCOL_VERSION: u16 = 0x0100;
/// The longest control message (Incoming-Call-Request, 220 octets).
pub const MAX_MESSAGE_LEN: usize = 220;

/// Size of the host name and vendor string fields (RFC 2637 §2.1).
pub const HOST_NAME_LEN: usize = 64;
/// Size of the phone number / subaddress fields (RFC 2637 §2.7, §2.9).
pub const PHONE_LEN: usize = 64;
/// Size of the Call Statistics field (RFC 2637 §2.13).
pub const CALL_STATS_LEN: usize = 128;

/// Framing capability bit: asynchronous framing (RFC 2637 §2.1).
pub const FRAMING_ASYNC: u32 = 1;
/// Framing capability bit: synchronous framing (RFC 2637 §2.1).
pub const FRAMING_SYNC: u32 = 2;
/// Bearer capability bit: analog access (RFC 2637 §2.1).
pub const BEARER_ANALOG: u32 = 1;
/// Bearer capability bit: digital access (RFC 2637 §2.1).
pub const BEARER_DIGITAL: u32 = 2;

/// Errors decoding a control message or the control byte stream.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// Fewer octets than the header or the Length field announces.
    #[error("truncated control message: need {need} octets, have {have}")]
    Truncated {
        /// Octets needed.
        need: usize,
        /// Octets available.
        have: usize,
    },
    /// The PPTP Message Type is not 1 (control).
    #[error("unsupported PPTP message type {0}")]
    UnsupportedPptpMessageType(u16),
    /// The Magic Cookie is not 0x1A2B3C4D.
    #[error("bad magic cookie {0:#010x}")]
    BadMagicCookie(u32),
    /// The Control Message Type is not one of the fifteen of RFC 2637 §2.
    #[error("unknown control message type {0}")]
    UnknownMessageType(u16),
    /// The Length field does not match the message type's fixed length, or
    /// no message type has that length.
    #[error("bad length {length} for control message type {message_type}")]
    BadLength {
        /// The Length field.
        length: u16,
        /// The Control Message Type (0 when not yet known).
        message_type: u16,
    },
    /// The deframer saw an error earlier; the stream cannot be resynchronised.
    #[error("control stream already failed")]
    Poisoned,
}

/// Writes a code's doc text ("Call failed due to no carrier detected.") as
/// words ("call failed due to no carrier detected (code 3)").
fn write_code_words(
    f: &mut std::fmt::Formatter<'_>,
    doc: &str,
    value: impl std::fmt::Display,
) -> std::fmt::Result {
    let text = doc.trim().trim_end_matches('.');
    let mut chars = text.chars();
    if let Some(first) = chars.next() {
        write!(f, "{}{}", first.to_lowercase(), chars.as_str())?;
    }
    write!(f, " (code {value})")
}

macro_rules! code_enum {
    (
        $(#[$meta:meta])*
        $name:ident : $repr:ty { $( #[doc = $doc:literal] $variant:ident = $value:expr ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( #[doc = $doc] $variant, )+
            /// A value this implementation does not know.
            Other($repr),
        }

        /// The RFC's words for the code, then its value: what a person
        /// reads in a log line or an error message.
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self {
                    $( Self::$variant => write_code_words(f, $doc, $value), )+
                    Self::Other(v) => write!(f, "unknown code {v}"),
                }
            }
        }

        impl $name {
            /// Maps a wire value to the enum (unknown values to `Other`).
            pub fn from_wire(v: $repr) -> Self {
                match v {
                    $( $value => Self::$variant, )+
                    other => Self::Other(other),
                }
            }

            /// The wire value.
            pub fn to_wire(self) -> $repr {
                match self {
                    $( Self::$variant => $value, )+
                    Self::Other(v) => v,
                }
            }
        }
    };
}

code_enum! {
    /// Result Code of Start-Control-Connection-Reply (RFC 2637 §2.2).
    StartResult: u8 {
        /// Successful channel establishment.
        Success = 1,
        /// General error, see the Error Code.
        GeneralError = 2,
        /// Command channel already exists.
        AlreadyExists = 3,
        /// Requester is not authorized to establish a command channel.
        NotAuthorized = 4,
        /// The protocol version of the requester is not supported.
        UnsupportedVersion = 5,
    }
}

code_enum! {
    /// Reason of Stop-Control-Connection-Request (RFC 2637 §2.3).
    StopReason: u8 {
        /// General request to clear the control connection.
        None = 1,
        /// Can't support the peer's version of the protocol.
        StopProtocol = 2,
        /// Requester is being shut down.
        LocalShutdown = 3,
    }
}

code_enum! {
    /// Result Code of Stop-Control-Connection-Reply (RFC 2637 §2.4).
    StopResult: u8 {
        /// Control connection closed.
        Ok = 1,
        /// Control connection not closed, see the Error Code.
        GeneralError = 2,
    }
}

code_enum! {
    /// Result Code of Echo-Reply (RFC 2637 §2.6).
    EchoResult: u8 {
        /// The Echo-Reply is valid.
        Ok = 1,
        /// Echo-Request not accepted, see the Error Code.
        GeneralError = 2,
    }
}

code_enum! {
    /// Result Code of Outgoing-Call-Reply (RFC 2637 §2.8).
    OutgoingCallResult: u8 {
        /// Call established with no errors.
        Connected = 1,
        /// Call not established, see the Error Code.
        GeneralError = 2,
        /// Call failed due to no carrier detected.
        NoCarrier = 3,
        /// Call failed due to detection of a busy signal.
        Busy = 4,
        /// Call failed due to lack of a dial tone.
        NoDialTone = 5,
        /// Call was not established within the time allotted by the PAC.
        TimeOut = 6,
        /// Call was administratively prohibited.
        DoNotAccept = 7,
    }
}

code_enum! {
    /// Result Code of Incoming-Call-Reply (RFC 2637 §2.10).
    IncomingCallResult: u8 {
        /// The PAC should answer the incoming call.
        Connect = 1,
        /// The incoming call should not be established, see the Error Code.
        GeneralError = 2,
        /// The PAC should not accept the incoming call.
        DoNotAccept = 3,
    }
}

code_enum! {
    /// Result Code of Call-Disconnect-Notify (RFC 2637 §2.13).
    DisconnectResult: u8 {
        /// Call disconnected due to loss of carrier.
        LostCarrier = 1,
        /// Call disconnected, see the Error Code.
        GeneralError = 2,
        /// Call disconnected for administrative reasons.
        AdminShutdown = 3,
        /// Call disconnected due to a received Call-Clear-Request.
        Request = 4,
    }
}

code_enum! {
    /// General Error Codes (RFC 2637 §2.16).
    ErrorCode: u8 {
        /// No general error.
        None = 0,
        /// No control connection exists yet for this PAC-PNS pair.
        NotConnected = 1,
        /// Length is wrong or Magic Cookie value is incorrect.
        BadFormat = 2,
        /// One of the field values was out of range or a reserved field was non-zero.
        BadValue = 3,
        /// Insufficient resources to handle this command now.
        NoResource = 4,
        /// The Call ID is invalid in this context.
        BadCallId = 5,
        /// A generic vendor-specific error occurred in the PAC.
        PacError = 6,
    }
}

/// Start-Control-Connection-Request, type 1, 156 octets (RFC 2637 §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartControlConnectionRequest {
    /// Protocol Version (0x0100 for 1.0).
    pub protocol_version: u16,
    /// Framing Capabilities ([`FRAMING_ASYNC`] | [`FRAMING_SYNC`]).
    pub framing_capabilities: u32,
    /// Bearer Capabilities ([`BEARER_ANALOG`] | [`BEARER_DIGITAL`]).
    pub bearer_capabilities: u32,
    /// Maximum Channels (0 from a PNS).
    pub maximum_channels: u16,
    /// Firmware Revision.
    pub firmware_revision: u16,
    /// Host Name (up to 64 octets).
    pub host_name: Vec<u8>,
    /// Vendor String (up to 64 octets).
    pub vendor_string: Vec<u8>,
}

/// Start-Control-Connection-Reply, type 2, 156 octets (RFC 2637 §2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartControlConnectionReply {
    /// Protocol Version.
    pub protocol_version: u16,
    /// Result Code.
    pub result: StartResult,
    /// Error Code.
    pub error: ErrorCode,
    /// Framing Capabilities.
    pub framing_capabilities: u32,
    /// Bearer Capabilities.
    pub bearer_capabilities: u32,
    /// Maximum Channels.
    pub maximum_channels: u16,
    /// Firmware Revision.
    pub firmware_revision: u16,
    /// Host Name (up to 64 octets).
    pub host_name: Vec<u8>,
    /// Vendor String (up to 64 octets).
    pub vendor_string: Vec<u8>,
}

/// Outgoing-Call-Request, type 7, 168 octets (RFC 2637 §2.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingCallRequest {
    /// Call ID assigned by the PNS.
    pub call_id: u16,
    /// Call Serial Number.
    pub call_serial_number: u16,
    /// Minimum BPS.
    pub minimum_bps: u32,
    /// Maximum BPS.
    pub maximum_bps: u32,
    /// Bearer Type (1 analog, 2 digital, 3 any).
    pub bearer_type: u32,
    /// Framing Type (1 async, 2 sync, 3 any).
    pub framing_type: u32,
    /// Packet Recv. Window Size: the PNS's receive window (§4.2).
    pub recv_window_size: u16,
    /// Packet Processing Delay, in 1/10 seconds.
    pub processing_delay: u16,
    /// Phone Number (up to 64 octets; its length is the Phone Number Length field).
    pub phone_number: Vec<u8>,
    /// Subaddress (up to 64 octets).
    pub subaddress: Vec<u8>,
}

/// Outgoing-Call-Reply, type 8, 32 octets (RFC 2637 §2.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingCallReply {
    /// Call ID assigned by the PAC.
    pub call_id: u16,
    /// Peer's Call ID: the PNS's Call ID from the request.
    pub peer_call_id: u16,
    /// Result Code.
    pub result: OutgoingCallResult,
    /// Error Code.
    pub error: ErrorCode,
    /// Cause Code (Q.931 cause, 0 if none).
    pub cause_code: u16,
    /// Connect Speed in bits per second.
    pub connect_speed: u32,
    /// Packet Recv. Window Size: the PAC's receive window (§4.2).
    pub recv_window_size: u16,
    /// Packet Processing Delay, in 1/10 seconds.
    pub processing_delay: u16,
    /// Physical Channel ID.
    pub physical_channel_id: u32,
}

/// Incoming-Call-Request, type 9, 220 octets (RFC 2637 §2.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingCallRequest {
    /// Call ID assigned by the PAC.
    pub call_id: u16,
    /// Call Serial Number.
    pub call_serial_number: u16,
    /// Call Bearer Type (1 analog, 2 digital).
    pub bearer_type: u32,
    /// Physical Channel ID.
    pub physical_channel_id: u32,
    /// Dialed Number (up to 64 octets).
    pub dialed_number: Vec<u8>,
    /// Dialing Number (up to 64 octets).
    pub dialing_number: Vec<u8>,
    /// Subaddress (up to 64 octets).
    pub subaddress: Vec<u8>,
}

/// Incoming-Call-Reply, type 10, 24 octets (RFC 2637 §2.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingCallReply {
    /// Call ID assigned by the PNS.
    pub call_id: u16,
    /// Peer's Call ID: the PAC's Call ID from the request.
    pub peer_call_id: u16,
    /// Result Code.
    pub result: IncomingCallResult,
    /// Error Code.
    pub error: ErrorCode,
    /// Packet Recv. Window Size of the PNS.
    pub recv_window_size: u16,
    /// Packet Transmit Delay, in 1/10 seconds.
    pub transmit_delay: u16,
}

/// Incoming-Call-Connected, type 11, 28 octets (RFC 2637 §2.11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingCallConnected {
    /// Peer's Call ID: the PNS's Call ID.
    pub peer_call_id: u16,
    /// Connect Speed in bits per second.
    pub connect_speed: u32,
    /// Packet Recv. Window Size of the PAC.
    pub recv_window_size: u16,
    /// Packet Transmit Delay, in 1/10 seconds.
    pub transmit_delay: u16,
    /// Framing Type (1 async, 2 sync).
    pub framing_type: u32,
}

/// Call-Disconnect-Notify, type 13, 148 octets (RFC 2637 §2.13).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallDisconnectNotify {
    /// Call ID assigned by the PAC.
    pub call_id: u16,
    /// Result Code.
    pub result: DisconnectResult,
    /// Error Code.
    pub error: ErrorCode,
    /// Cause Code (Q.931 cause, 0 if none).
    pub cause_code: u16,
    /// Call Statistics (vendor-specific text, up to 128 octets).
    pub call_statistics: Vec<u8>,
}

/// WAN-Error-Notify, type 14, 40 octets (RFC 2637 §2.14).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WanErrorNotify {
    /// Peer's Call ID: the PNS's Call ID.
    pub peer_call_id: u16,
    /// CRC Errors.
    pub crc_errors: u32,
    /// Framing Errors.
    pub framing_errors: u32,
    /// Hardware Overruns.
    pub hardware_overruns: u32,
    /// Buffer Overruns.
    pub buffer_overruns: u32,
    /// Time-out Errors.
    pub timeout_errors: u32,
    /// Alignment Errors.
    pub alignment_errors: u32,
}

/// Set-Link-Info, type 15, 24 octets (RFC 2637 §2.15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetLinkInfo {
    /// Peer's Call ID: the PAC's Call ID.
    pub peer_call_id: u16,
    /// Send ACCM.
    pub send_accm: u32,
    /// Receive ACCM.
    pub receive_accm: u32,
}

/// A PPTP control message (RFC 2637 §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Start-Control-Connection-Request (§2.1).
    StartControlConnectionRequest(StartControlConnectionRequest),
    /// Start-Control-Connection-Reply (§2.2).
    StartControlConnectionReply(StartControlConnectionReply),
    /// Stop-Control-Connection-Request (§2.3).
    StopControlConnectionRequest {
        /// Reason.
        reason: StopReason,
    },
    /// Stop-Control-Connection-Reply (§2.4).
    StopControlConnectionReply {
        /// Result Code.
        result: StopResult,
        /// Error Code.
        error: ErrorCode,
    },
    /// Echo-Request (§2.5).
    EchoRequest {
        /// Identifier.
        identifier: u32,
    },
    /// Echo-Reply (§2.6).
    EchoReply {
        /// Identifier copied from the request.
        identifier: u32,
        /// Result Code.
        result: EchoResult,
        /// Error Code.
        error: ErrorCode,
    },
    /// Outgoing-Call-Request (§2.7).
    OutgoingCallRequest(OutgoingCallRequest),
    /// Outgoing-Call-Reply (§2.8).
    OutgoingCallReply(OutgoingCallReply),
    /// Incoming-Call-Request (§2.9).
    IncomingCallRequest(IncomingCallRequest),
    /// Incoming-Call-Reply (§2.10).
    IncomingCallReply(IncomingCallReply),
    /// Incoming-Call-Connected (§2.11).
    IncomingCallConnected(IncomingCallConnected),
    /// Call-Clear-Request (§2.12).
    CallClearRequest {
        /// Call ID assigned by the PNS.
        call_id: u16,
    },
    /// Call-Disconnect-Notify (§2.13).
    CallDisconnectNotify(CallDisconnectNotify),
    /// WAN-Error-Notify (§2.14).
    WanErrorNotify(WanErrorNotify),
    /// Set-Link-Info (§2.15).
    SetLinkInfo(SetLinkInfo),
}

/// Control Message Type values (RFC 2637 §1.4) with their fixed lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum MessageType {
    /// 1: Start-Control-Connection-Request.
    StartControlConnectionRequest = 1,
    /// 2: Start-Control-Connection-Reply.
    StartControlConnectionReply = 2,
    /// 3: Stop-Control-Connection-Request.
    StopControlConnectionRequest = 3,
    /// 4: Stop-Control-Connection-Reply.
    StopControlConnectionReply = 4,
    /// 5: Echo-Request.
    EchoRequest = 5,
    /// 6: Echo-Reply.
    EchoReply = 6,
    /// 7: Outgoing-Call-Request.
    OutgoingCallRequest = 7,
    /// 8: Outgoing-Call-Reply.
    OutgoingCallReply = 8,
    /// 9: Incoming-Call-Request.
    IncomingCallRequest = 9,
    /// 10: Incoming-Call-Reply.
    IncomingCallReply = 10,
    /// 11: Incoming-Call-Connected.
    IncomingCallConnected = 11,
    /// 12: Call-Clear-Request.
    CallClearRequest = 12,
    /// 13: Call-Disconnect-Notify.
    CallDisconnectNotify = 13,
    /// 14: WAN-Error-Notify.
    WanErrorNotify = 14,
    /// 15: Set-Link-Info.
    SetLinkInfo = 15,
}

impl std::fmt::Display for MessageType {
    /// RFC 2637 §2's name of the message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use MessageType::*;
        f.write_str(match self {
            StartControlConnectionRequest => "Start-Control-Connection-Request",
            StartControlConnectionReply => "Start-Control-Connection-Reply",
            StopControlConnectionRequest => "Stop-Control-Connection-Request",
            StopControlConnectionReply => "Stop-Control-Connection-Reply",
            EchoRequest => "Echo-Request",
            EchoReply => "Echo-Reply",
            OutgoingCallRequest => "Outgoing-Call-Request",
            OutgoingCallReply => "Outgoing-Call-Reply",
            IncomingCallRequest => "Incoming-Call-Request",
            IncomingCallReply => "Incoming-Call-Reply",
            IncomingCallConnected => "Incoming-Call-Connected",
            CallClearRequest => "Call-Clear-Request",
            CallDisconnectNotify => "Call-Disconnect-Notify",
            WanErrorNotify => "WAN-Error-Notify",
            SetLinkInfo => "Set-Link-Info",
        })
    }
}

impl MessageType {
    /// Maps a Control Message Type value.
    pub fn from_u16(v: u16) -> Option<Self> {
        use MessageType::*;
        Some(match v {
            1 => StartControlConnectionRequest,
            2 => StartControlConnectionReply,
            3 => StopControlConnectionRequest,
            4 => StopControlConnectionReply,
            5 => EchoRequest,
            6 => EchoReply,
            7 => OutgoingCallRequest,
            8 => OutgoingCallReply,
            9 => IncomingCallRequest,
            10 => IncomingCallReply,
            11 => IncomingCallConnected,
            12 => CallClearRequest,
            13 => CallDisconnectNotify,
            14 => WanErrorNotify,
            15 => SetLinkInfo,
            _ => return None,
        })
    }

    /// The fixed total length (header included) of this message type, from
    /// the layouts of RFC 2637 §2.1–§2.15.
    pub fn length(self) -> usize {
        use MessageType::*;
        match self {
            StartControlConnectionRequest | StartControlConnectionReply => 156,
            StopControlConnectionRequest | StopControlConnectionReply => 16,
            EchoRequest => 16,
            EchoReply => 20,
            OutgoingCallRequest => 168,
            OutgoingCallReply => 32,
            IncomingCallRequest => 220,
            IncomingCallReply => 24,
            IncomingCallConnected => 28,
            CallClearRequest => 16,
            CallDisconnectNotify => 148,
            WanErrorNotify => 40,
            SetLinkInfo => 24,
        }
    }
}

/// Is `len` the fixed length of some control message type?
fn is_known_length(len: usize) -> bool {
    matches!(len, 16 | 20 | 24 | 28 | 32 | 40 | 148 | 156 | 168 | 220)
}

impl Message {
    /// This message's Control Message Type.
    pub fn message_type(&self) -> MessageType {
        use MessageType as T;
        match self {
            Message::StartControlConnectionRequest(_) => T::StartControlConnectionRequest,
            Message::StartControlConnectionReply(_) => T::StartControlConnectionReply,
            Message::StopControlConnectionRequest { .. } => T::StopControlConnectionRequest,
            Message::StopControlConnectionReply { .. } => T::StopControlConnectionReply,
            Message::EchoRequest { .. } => T::EchoRequest,
            Message::EchoReply { .. } => T::EchoReply,
            Message::OutgoingCallRequest(_) => T::OutgoingCallRequest,
            Message::OutgoingCallReply(_) => T::OutgoingCallReply,
            Message::IncomingCallRequest(_) => T::IncomingCallRequest,
            Message::IncomingCallReply(_) => T::IncomingCallReply,
            Message::IncomingCallConnected(_) => T::IncomingCallConnected,
            Message::CallClearRequest { .. } => T::CallClearRequest,
            Message::CallDisconnectNotify(_) => T::CallDisconnectNotify,
            Message::WanErrorNotify(_) => T::WanErrorNotify,
            Message::SetLinkInfo(_) => T::SetLinkInfo,
        }
    }

    /// Appends the encoded message (header included) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let ty = self.message_type();
        let start = out.len();
        let len = ty.length();
        out.reserve(len);
        put_u16(out, len as u16);
        put_u16(out, PPTP_MESSAGE_TYPE_CONTROL);
        put_u32(out, MAGIC_COOKIE);
        put_u16(out, ty as u16);
        put_u16(out, 0); // Reserved0
        match self {
            Message::StartControlConnectionRequest(m) => {
                put_u16(out, m.protocol_version);
                put_u16(out, 0); // Reserved1
                put_u32(out, m.framing_capabilities);
                put_u32(out, m.bearer_capabilities);
                put_u16(out, m.maximum_channels);
                put_u16(out, m.firmware_revision);
                put_text(out, &m.host_name, HOST_NAME_LEN);
                put_text(out, &m.vendor_string, HOST_NAME_LEN);
            }
            Message::StartControlConnectionReply(m) => {
                put_u16(out, m.protocol_version);
                out.push(m.result.to_wire());
                out.push(m.error.to_wire());
                put_u32(out, m.framing_capabilities);
                put_u32(out, m.bearer_capabilities);
                put_u16(out, m.maximum_channels);
                put_u16(out, m.firmware_revision);
                put_text(out, &m.host_name, HOST_NAME_LEN);
                put_text(out, &m.vendor_string, HOST_NAME_LEN);
            }
            Message::StopControlConnectionRequest { reason } => {
                out.push(reason.to_wire());
                out.push(0); // Reserved1
                put_u16(out, 0); // Reserved2
            }
            Message::StopControlConnectionReply { result, error } => {
                out.push(result.to_wire());
                out.push(error.to_wire());
                put_u16(out, 0); // Reserved1
            }
            Message::EchoRequest { identifier } => put_u32(out, *identifier),
            Message::EchoReply {
                identifier,
                result,
                error,
            } => {
                put_u32(out, *identifier);
                out.push(result.to_wire());
                out.push(error.to_wire());
                put_u16(out, 0); // Reserved1
            }
            Message::OutgoingCallRequest(m) => {
                put_u16(out, m.call_id);
                put_u16(out, m.call_serial_number);
                put_u32(out, m.minimum_bps);
                put_u32(out, m.maximum_bps);
                put_u32(out, m.bearer_type);
                put_u32(out, m.framing_type);
                put_u16(out, m.recv_window_size);
                put_u16(out, m.processing_delay);
                put_u16(out, m.phone_number.len().min(PHONE_LEN) as u16);
                put_u16(out, 0); // Reserved1
                put_text(out, &m.phone_number, PHONE_LEN);
                put_text(out, &m.subaddress, PHONE_LEN);
            }
            Message::OutgoingCallReply(m) => {
                put_u16(out, m.call_id);
                put_u16(out, m.peer_call_id);
                out.push(m.result.to_wire());
                out.push(m.error.to_wire());
                put_u16(out, m.cause_code);
                put_u32(out, m.connect_speed);
                put_u16(out, m.recv_window_size);
                put_u16(out, m.processing_delay);
                put_u32(out, m.physical_channel_id);
            }
            Message::IncomingCallRequest(m) => {
                put_u16(out, m.call_id);
                put_u16(out, m.call_serial_number);
                put_u32(out, m.bearer_type);
                put_u32(out, m.physical_channel_id);
                put_u16(out, m.dialed_number.len().min(PHONE_LEN) as u16);
                put_u16(out, m.dialing_number.len().min(PHONE_LEN) as u16);
                put_text(out, &m.dialed_number, PHONE_LEN);
                put_text(out, &m.dialing_number, PHONE_LEN);
                put_text(out, &m.subaddress, PHONE_LEN);
            }
            Message::IncomingCallReply(m) => {
                put_u16(out, m.call_id);
                put_u16(out, m.peer_call_id);
                out.push(m.result.to_wire());
                out.push(m.error.to_wire());
                put_u16(out, m.recv_window_size);
                put_u16(out, m.transmit_delay);
                put_u16(out, 0); // Reserved1
            }
            Message::IncomingCallConnected(m) => {
                put_u16(out, m.peer_call_id);
                put_u16(out, 0); // Reserved1
                put_u32(out, m.connect_speed);
                put_u16(out, m.recv_window_size);
                put_u16(out, m.transmit_delay);
                put_u32(out, m.framing_type);
            }
            Message::CallClearRequest { call_id } => {
                put_u16(out, *call_id);
                put_u16(out, 0); // Reserved1
            }
            Message::CallDisconnectNotify(m) => {
                put_u16(out, m.call_id);
                out.push(m.result.to_wire());
                out.push(m.error.to_wire());
                put_u16(out, m.cause_code);
                put_u16(out, 0); // Reserved1
                put_text(out, &m.call_statistics, CALL_STATS_LEN);
            }
            Message::WanErrorNotify(m) => {
                put_u16(out, m.peer_call_id);
                put_u16(out, 0); // Reserved1
                put_u32(out, m.crc_errors);
                put_u32(out, m.framing_errors);
                put_u32(out, m.hardware_overruns);
                put_u32(out, m.buffer_overruns);
                put_u32(out, m.timeout_errors);
                put_u32(out, m.alignment_errors);
            }
            Message::SetLinkInfo(m) => {
                put_u16(out, m.peer_call_id);
                put_u16(out, 0); // Reserved1
                put_u32(out, m.send_accm);
                put_u32(out, m.receive_accm);
            }
        }
        debug_assert_eq!(out.len() - start, len);
    }

    /// Encodes into a new vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.message_type().length());
        self.encode(&mut v);
        v
    }

    /// Decodes exactly one control message; `buf` must hold exactly the
    /// octets the Length field announces.
    pub fn decode(buf: &[u8]) -> Result<Message, DecodeError> {
        let ty = check_header(buf)?;
        let need = ty.length();
        if buf.len() != need {
            if buf.len() < need {
                return Err(DecodeError::Truncated {
                    need,
                    have: buf.len(),
                });
            }
            return Err(DecodeError::BadLength {
                length: buf.len().min(usize::from(u16::MAX)) as u16,
                message_type: ty as u16,
            });
        }
        let mut r = Reader {
            buf,
            pos: HEADER_LEN,
        };
        use MessageType as T;
        let msg = match ty {
            T::StartControlConnectionRequest => {
                let protocol_version = r.u16();
                r.skip(2);
                Message::StartControlConnectionRequest(StartControlConnectionRequest {
                    protocol_version,
                    framing_capabilities: r.u32(),
                    bearer_capabilities: r.u32(),
                    maximum_channels: r.u16(),
                    firmware_revision: r.u16(),
                    host_name: r.text(HOST_NAME_LEN, HOST_NAME_LEN),
                    vendor_string: r.text(HOST_NAME_LEN, HOST_NAME_LEN),
                })
            }
            T::StartControlConnectionReply => {
                Message::StartControlConnectionReply(StartControlConnectionReply {
                    protocol_version: r.u16(),
                    result: StartResult::from_wire(r.u8()),
                    error: ErrorCode::from_wire(r.u8()),
                    framing_capabilities: r.u32(),
                    bearer_capabilities: r.u32(),
                    maximum_channels: r.u16(),
                    firmware_revision: r.u16(),
                    host_name: r.text(HOST_NAME_LEN, HOST_NAME_LEN),
                    vendor_string: r.text(HOST_NAME_LEN, HOST_NAME_LEN),
                })
            }
            T::StopControlConnectionRequest => Message::StopControlConnectionRequest {
                reason: StopReason::from_wire(r.u8()),
            },
            T::StopControlConnectionReply => Message::StopControlConnectionReply {
                result: StopResult::from_wire(r.u8()),
                error: ErrorCode::from_wire(r.u8()),
            },
            T::EchoRequest => Message::EchoRequest {
                identifier: r.u32(),
            },
            T::EchoReply => Message::EchoReply {
                identifier: r.u32(),
                result: EchoResult::from_wire(r.u8()),
                error: ErrorCode::from_wire(r.u8()),
            },
            T::OutgoingCallRequest => {
                let call_id = r.u16();
                let call_serial_number = r.u16();
                let minimum_bps = r.u32();
                let maximum_bps = r.u32();
                let bearer_type = r.u32();
                let framing_type = r.u32();
                let recv_window_size = r.u16();
                let processing_delay = r.u16();
                let phone_len = usize::from(r.u16());
                r.skip(2);
                Message::OutgoingCallRequest(OutgoingCallRequest {
                    call_id,
                    call_serial_number,
                    minimum_bps,
                    maximum_bps,
                    bearer_type,
                    framing_type,
                    recv_window_size,
                    processing_delay,
                    phone_number: r.text(PHONE_LEN, phone_len),
                    subaddress: r.text(PHONE_LEN, PHONE_LEN),
                })
            }
            T::OutgoingCallReply => Message::OutgoingCallReply(OutgoingCallReply {
                call_id: r.u16(),
                peer_call_id: r.u16(),
                result: OutgoingCallResult::from_wire(r.u8()),
                error: ErrorCode::from_wire(r.u8()),
                cause_code: r.u16(),
                connect_speed: r.u32(),
                recv_window_size: r.u16(),
                processing_delay: r.u16(),
                physical_channel_id: r.u32(),
            }),
            T::IncomingCallRequest => {
                let call_id = r.u16();
                let call_serial_number = r.u16();
                let bearer_type = r.u32();
                let physical_channel_id = r.u32();
                let dialed_len = usize::from(r.u16());
                let dialing_len = usize::from(r.u16());
                Message::IncomingCallRequest(IncomingCallRequest {
                    call_id,
                    call_serial_number,
                    bearer_type,
                    physical_channel_id,
                    dialed_number: r.text(PHONE_LEN, dialed_len),
                    dialing_number: r.text(PHONE_LEN, dialing_len),
                    subaddress: r.text(PHONE_LEN, PHONE_LEN),
                })
            }
            T::IncomingCallReply => Message::IncomingCallReply(IncomingCallReply {
                call_id: r.u16(),
                peer_call_id: r.u16(),
                result: IncomingCallResult::from_wire(r.u8()),
                error: ErrorCode::from_wire(r.u8()),
                recv_window_size: r.u16(),
                transmit_delay: r.u16(),
            }),
            T::IncomingCallConnected => {
                let peer_call_id = r.u16();
                r.skip(2);
                Message::IncomingCallConnected(IncomingCallConnected {
                    peer_call_id,
                    connect_speed: r.u32(),
                    recv_window_size: r.u16(),
                    transmit_delay: r.u16(),
                    framing_type: r.u32(),
                })
            }
            T::CallClearRequest => Message::CallClearRequest { call_id: r.u16() },
            T::CallDisconnectNotify => {
                let call_id = r.u16();
                let result = DisconnectResult::from_wire(r.u8());
                let error = ErrorCode::from_wire(r.u8());
                let cause_code = r.u16();
                r.skip(2);
                Message::CallDisconnectNotify(CallDisconnectNotify {
                    call_id,
                    result,
                    error,
                    cause_code,
                    call_statistics: r.text(CALL_STATS_LEN, CALL_STATS_LEN),
                })
            }
            T::WanErrorNotify => {
                let peer_call_id = r.u16();
                r.skip(2);
                Message::WanErrorNotify(WanErrorNotify {
                    peer_call_id,
                    crc_errors: r.u32(),
                    framing_errors: r.u32(),
                    hardware_overruns: r.u32(),
                    buffer_overruns: r.u32(),
                    timeout_errors: r.u32(),
                    alignment_errors: r.u32(),
                })
            }
            T::SetLinkInfo => {
                let peer_call_id = r.u16();
                r.skip(2);
                Message::SetLinkInfo(SetLinkInfo {
                    peer_call_id,
                    send_accm: r.u32(),
                    receive_accm: r.u32(),
                })
            }
        };
        Ok(msg)
    }
}

/// Validates the 12-octet header (RFC 2637 §2, §1.4) and returns the type.
/// `buf` may be longer than the header.
pub fn check_header(buf: &[u8]) -> Result<MessageType, DecodeError> {
    if buf.len() < HEADER_LEN {
        return Err(DecodeError::Truncated {
            need: HEADER_LEN,
            have: buf.len(),
        });
    }
    let length = u16::from_be_bytes([buf[0], buf[1]]);
    let pptp_type = u16::from_be_bytes([buf[2], buf[3]]);
    let cookie = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let ctrl_type = u16::from_be_bytes([buf[8], buf[9]]);
    if cookie != MAGIC_COOKIE {
        return Err(DecodeError::BadMagicCookie(cookie));
    }
    if pptp_type != PPTP_MESSAGE_TYPE_CONTROL {
        return Err(DecodeError::UnsupportedPptpMessageType(pptp_type));
    }
    let ty = MessageType::from_u16(ctrl_type).ok_or(DecodeError::UnknownMessageType(ctrl_type))?;
    if usize::from(length) != ty.length() {
        return Err(DecodeError::BadLength {
            length,
            message_type: ctrl_type,
        });
    }
    Ok(ty)
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_text(out: &mut Vec<u8>, text: &[u8], size: usize) {
    let n = text.len().min(size);
    out.extend_from_slice(&text[..n]);
    out.resize(out.len() + (size - n), 0);
}

/// A cursor over a buffer whose length was checked against the layout.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> &[u8] {
        // The caller checked the total length against the fixed layout, so
        // this never goes out of bounds; `get` keeps it panic-free anyway.
        let s = self.buf.get(self.pos..self.pos + n).unwrap_or(&[]);
        self.pos += n;
        s
    }
    fn skip(&mut self, n: usize) {
        self.pos += n;
    }
    fn u8(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }
    fn u16(&mut self) -> u16 {
        let s = self.take(2);
        if s.len() == 2 {
            u16::from_be_bytes([s[0], s[1]])
        } else {
            0
        }
    }
    fn u32(&mut self) -> u32 {
        let s = self.take(4);
        if s.len() == 4 {
            u32::from_be_bytes([s[0], s[1], s[2], s[3]])
        } else {
            0
        }
    }
    /// A NUL-padded text field of `size` octets, of which at most `limit`
    /// (a length field from the message) are meaningful.
    fn text(&mut self, size: usize, limit: usize) -> Vec<u8> {
        let s = self.take(size);
        let s = &s[..limit.min(s.len())];
        let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
        s[..end].to_vec()
    }
}

/// Default bound on octets the deframer buffers.
pub const DEFAULT_DEFRAMER_CAPACITY: usize = 4096;

/// A streaming deframer for the TCP control connection.
///
/// Feed it the bytes read from TCP with [`Deframer::push`]; take whole
/// messages out with [`Deframer::next_message`]. Memory is bounded by the
/// capacity. A header is checked as soon as its 12 octets are in (and the
/// Length field as soon as its 2 octets are in), so a peer cannot make the
/// deframer wait for a body that no message type has. After an error the
/// deframer is poisoned: a TCP byte stream cannot be resynchronised.
#[derive(Debug)]
pub struct Deframer {
    buf: VecDeque<u8>,
    capacity: usize,
    failed: bool,
}

impl Default for Deframer {
    fn default() -> Self {
        Self::new()
    }
}

impl Deframer {
    /// A deframer buffering at most [`DEFAULT_DEFRAMER_CAPACITY`] octets.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_DEFRAMER_CAPACITY)
    }

    /// A deframer buffering at most `capacity` octets (at least one message).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: VecDeque::new(),
            capacity: capacity.max(MAX_MESSAGE_LEN),
            failed: false,
        }
    }

    /// Buffers as much of `data` as fits; returns how many octets were taken.
    /// The caller keeps the rest and offers it again after draining messages.
    pub fn push(&mut self, data: &[u8]) -> usize {
        if self.failed {
            return 0;
        }
        let room = self.capacity.saturating_sub(self.buf.len());
        let n = room.min(data.len());
        self.buf.extend(&data[..n]);
        n
    }

    /// Octets buffered and not yet returned as messages.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Has the deframer failed?
    pub fn is_poisoned(&self) -> bool {
        self.failed
    }

    /// The next whole message, `Ok(None)` when more octets are needed.
    pub fn next_message(&mut self) -> Result<Option<Message>, DecodeError> {
        if self.failed {
            return Err(DecodeError::Poisoned);
        }
        match self.try_next() {
            Err(e) => {
                self.failed = true;
                self.buf.clear();
                Err(e)
            }
            ok => ok,
        }
    }

    fn try_next(&mut self) -> Result<Option<Message>, DecodeError> {
        if self.buf.len() < 2 {
            return Ok(None);
        }
        let length = u16::from_be_bytes([self.buf[0], self.buf[1]]);
        if !is_known_length(usize::from(length)) {
            return Err(DecodeError::BadLength {
                length,
                message_type: 0,
            });
        }
        if self.buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let mut header = [0u8; HEADER_LEN];
        for (i, b) in header.iter_mut().enumerate() {
            *b = self.buf[i];
        }
        let ty = check_header(&header)?;
        let len = ty.length();
        if self.buf.len() < len {
            return Ok(None);
        }
        let bytes: Vec<u8> = self.buf.drain(..len).collect();
        Message::decode(&bytes).map(Some)
    }
}
