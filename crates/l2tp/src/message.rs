//! Control messages (RFC 2661 §3.2, §6): a Message Type AVP first
//! (§4.4.1), then the message's AVPs.

use std::fmt;

use thiserror::Error;

use crate::avp::{decode_avps, encode_avps, Avp, AvpError, AvpValue, ResultCode};

/// Control message types (§3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// 1: Start-Control-Connection-Request.
    Sccrq,
    /// 2: Start-Control-Connection-Reply.
    Sccrp,
    /// 3: Start-Control-Connection-Connected.
    Scccn,
    /// 4: Stop-Control-Connection-Notification.
    StopCcn,
    /// 6: Hello.
    Hello,
    /// 7: Outgoing-Call-Request.
    Ocrq,
    /// 8: Outgoing-Call-Reply.
    Ocrp,
    /// 9: Outgoing-Call-Connected.
    Occn,
    /// 10: Incoming-Call-Request.
    Icrq,
    /// 11: Incoming-Call-Reply.
    Icrp,
    /// 12: Incoming-Call-Connected.
    Iccn,
    /// 14: Call-Disconnect-Notify.
    Cdn,
    /// 15: WAN-Error-Notify.
    Wen,
    /// 16: Set-Link-Info.
    Sli,
    /// Any other value (5 and 13 are reserved).
    Unknown(u16),
}

impl MessageType {
    /// The wire value.
    pub fn value(self) -> u16 {
        use MessageType::*;
        match self {
            Sccrq => 1,
            Sccrp => 2,
            Scccn => 3,
            StopCcn => 4,
            Hello => 6,
            Ocrq => 7,
            Ocrp => 8,
            Occn => 9,
            Icrq => 10,
            Icrp => 11,
            Iccn => 12,
            Cdn => 14,
            Wen => 15,
            Sli => 16,
            Unknown(v) => v,
        }
    }

    /// From the wire value.
    pub fn from_value(v: u16) -> Self {
        use MessageType::*;
        match v {
            1 => Sccrq,
            2 => Sccrp,
            3 => Scccn,
            4 => StopCcn,
            6 => Hello,
            7 => Ocrq,
            8 => Ocrp,
            9 => Occn,
            10 => Icrq,
            11 => Icrp,
            12 => Iccn,
            14 => Cdn,
            15 => Wen,
            16 => Sli,
            v => Unknown(v),
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use MessageType::*;
        let s = match self {
            Sccrq => "SCCRQ",
            Sccrp => "SCCRP",
            Scccn => "SCCCN",
            StopCcn => "StopCCN",
            Hello => "HELLO",
            Ocrq => "OCRQ",
            Ocrp => "OCRP",
            Occn => "OCCN",
            Icrq => "ICRQ",
            Icrp => "ICRP",
            Iccn => "ICCN",
            Cdn => "CDN",
            Wen => "WEN",
            Sli => "SLI",
            Unknown(v) => return write!(f, "message type {v}"),
        };
        f.write_str(s)
    }
}

/// Why a control message body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MessageError {
    /// An AVP could not be read.
    #[error(transparent)]
    Avp(#[from] AvpError),
    /// §4.4.1: the Message Type AVP must come first.
    #[error("control message does not start with a Message Type AVP")]
    NoMessageType,
}

/// A control message other than a ZLB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlMessage {
    /// The message type.
    pub message_type: MessageType,
    /// Whether the Message Type AVP had the M bit: an unknown type with
    /// it set tears the tunnel down (§4.4.1).
    pub mandatory_type: bool,
    /// The AVPs after the Message Type AVP.
    pub avps: Vec<Avp>,
}

impl ControlMessage {
    /// A message with the given AVPs.
    pub fn new(message_type: MessageType, avps: Vec<Avp>) -> Self {
        ControlMessage {
            message_type,
            mandatory_type: true,
            avps,
        }
    }

    /// Decodes a message body (the AVP octets after the header).
    pub fn decode(body: &[u8], secret: Option<&[u8]>) -> Result<Self, MessageError> {
        let mut avps = decode_avps(body, secret)?;
        if avps.is_empty() {
            return Err(MessageError::NoMessageType);
        }
        let first = avps.remove(0);
        match first.value {
            AvpValue::MessageType(t) if !first.hidden => Ok(ControlMessage {
                message_type: MessageType::from_value(t),
                mandatory_type: first.mandatory,
                avps,
            }),
            _ => Err(MessageError::NoMessageType),
        }
    }

    /// Appends the AVP octets of this message to `out`.
    pub fn encode(&self, secret: Option<&[u8]>, out: &mut Vec<u8>) -> Result<(), AvpError> {
        encode_avps(
            &[Avp {
                mandatory: self.mandatory_type,
                hidden: false,
                value: AvpValue::MessageType(self.message_type.value()),
            }],
            None,
            out,
        )?;
        encode_avps(&self.avps, secret, out)
    }

    /// The first AVP matching `f`.
    pub fn find<T>(&self, f: impl Fn(&AvpValue) -> Option<T>) -> Option<T> {
        self.avps.iter().find_map(|a| f(&a.value))
    }

    /// Assigned Tunnel ID.
    pub fn assigned_tunnel_id(&self) -> Option<u16> {
        self.find(|v| match v {
            AvpValue::AssignedTunnelId(id) => Some(*id),
            _ => None,
        })
    }

    /// Assigned Session ID.
    pub fn assigned_session_id(&self) -> Option<u16> {
        self.find(|v| match v {
            AvpValue::AssignedSessionId(id) => Some(*id),
            _ => None,
        })
    }

    /// Challenge.
    pub fn challenge(&self) -> Option<Vec<u8>> {
        self.find(|v| match v {
            AvpValue::Challenge(c) => Some(c.clone()),
            _ => None,
        })
    }

    /// Challenge Response.
    pub fn challenge_response(&self) -> Option<[u8; 16]> {
        self.find(|v| match v {
            AvpValue::ChallengeResponse(c) => Some(*c),
            _ => None,
        })
    }

    /// Result Code.
    pub fn result_code(&self) -> Option<ResultCode> {
        self.find(|v| match v {
            AvpValue::ResultCode(r) => Some(r.clone()),
            _ => None,
        })
    }

    /// Host Name.
    pub fn host_name(&self) -> Option<Vec<u8>> {
        self.find(|v| match v {
            AvpValue::HostName(h) => Some(h.clone()),
            _ => None,
        })
    }

    /// Protocol Version.
    pub fn protocol_version(&self) -> Option<(u8, u8)> {
        self.find(|v| match v {
            AvpValue::ProtocolVersion(a, b) => Some((*a, *b)),
            _ => None,
        })
    }

    /// Receive Window Size.
    pub fn receive_window_size(&self) -> Option<u16> {
        self.find(|v| match v {
            AvpValue::ReceiveWindowSize(w) => Some(*w),
            _ => None,
        })
    }

    /// Whether Sequencing Required is present.
    pub fn sequencing_required(&self) -> bool {
        self.avps
            .iter()
            .any(|a| a.value == AvpValue::SequencingRequired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_round_trips() {
        let m = ControlMessage::new(
            MessageType::Sccrq,
            vec![
                Avp::mandatory(AvpValue::ProtocolVersion(1, 0)),
                Avp::mandatory(AvpValue::HostName(b"lac".to_vec())),
                Avp::mandatory(AvpValue::AssignedTunnelId(5)),
            ],
        );
        let mut out = Vec::new();
        m.encode(None, &mut out).unwrap();
        assert_eq!(&out[..8], &[0x80, 8, 0, 0, 0, 0, 0, 1]);
        let back = ControlMessage::decode(&out, None).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.assigned_tunnel_id(), Some(5));
        assert_eq!(back.protocol_version(), Some((1, 0)));
    }

    #[test]
    fn message_type_must_come_first() {
        let mut out = Vec::new();
        encode_avps(
            &[Avp::mandatory(AvpValue::HostName(b"x".to_vec()))],
            None,
            &mut out,
        )
        .unwrap();
        assert_eq!(
            ControlMessage::decode(&out, None),
            Err(MessageError::NoMessageType)
        );
        assert_eq!(
            ControlMessage::decode(&[], None),
            Err(MessageError::NoMessageType)
        );
    }

    #[test]
    fn type_values_round_trip() {
        for v in 0..20 {
            assert_eq!(MessageType::from_value(v).value(), v);
        }
        assert_eq!(MessageType::Icrq.to_string(), "ICRQ");
    }
}
