//! A session's answers for the server's own end of its link (ICMPv6 echo
//! and Neighbor Discovery on its link-local address, see the `icmpv6`
//! crate), taken out of the data path before packets reach the sink.

use std::time::Instant;

use icmpv6::{Responder, Verdict};

/// The responder and the replies it has for the peer.
pub(crate) struct LocalAnswer {
    responder: Responder,
    reply: Vec<u8>,
    replies: std::collections::VecDeque<Vec<u8>>,
}

/// Replies waiting before the peer's further questions are dropped: a
/// peer that floods questions faster than the loop comes round costs a
/// bounded amount of memory.
const MAX_REPLIES: usize = 64;

impl LocalAnswer {
    pub(crate) fn new(responder: Responder) -> LocalAnswer {
        LocalAnswer {
            responder,
            reply: Vec::new(),
            replies: Default::default(),
        }
    }

    /// True when `packet` was for the server's end of the link (answered
    /// or dropped): it goes no further.
    pub(crate) fn intercept(&mut self, now: Instant, packet: &[u8]) -> bool {
        match self.responder.handle(now, packet, &mut self.reply) {
            Verdict::Pass => false,
            Verdict::Drop => true,
            Verdict::Reply => {
                if self.replies.len() < MAX_REPLIES {
                    self.replies.push_back(std::mem::take(&mut self.reply));
                }
                true
            }
        }
    }

    /// The next reply to send to the peer.
    pub(crate) fn pop_reply(&mut self) -> Option<Vec<u8>> {
        self.replies.pop_front()
    }
}
