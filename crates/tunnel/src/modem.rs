//! A minimal Hayes (AT) command exchange, sans-IO, both ends of the line:
//!
//! * [`ModemAnswer`]: what a dial-in server emulates on its tty, so a
//!   dialer can "dial" the access number from its profile or phone book:
//!   every `AT…` command line gets `OK`, `ATD[T|P]<number>` gets
//!   `CONNECT <speed>` (or `NO CARRIER` when the number is not one we
//!   answer), and after CONNECT the line carries PPP.
//! * [`ModemDialer`]: what the dialer sends: `AT`, then `ATDT<number>`,
//!   and the result codes it understands (V.250 §6.3.1 / §5.7.1: OK,
//!   CONNECT, RING, NO CARRIER, ERROR, NO DIALTONE, BUSY, NO ANSWER).
//!
//! Command lines end with CR (V.250 §5.2.1, S3 = 13); LF is ignored. A
//! line longer than [`MAX_LINE`] is discarded and answered with ERROR, so
//! input from the line never grows memory.

/// Longest command or result line kept (V.250 requires at least 40
/// characters of command line).
pub const MAX_LINE: usize = 256;

/// What the answering side reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerEvent {
    /// A dial command was accepted and CONNECT sent: the line now carries
    /// PPP. `number` is what was dialed (dial modifiers removed).
    Connected { number: String },
    /// A dial command for a number we do not answer (NO CARRIER sent).
    Refused { number: String },
}

/// The answering (server) side.
#[derive(Debug, Clone)]
pub struct ModemAnswer {
    /// Numbers answered; empty: any.
    numbers: Vec<String>,
    speed: u32,
    line: Vec<u8>,
    overflow: bool,
    connected: bool,
    transmit: Vec<u8>,
    events: std::collections::VecDeque<AnswerEvent>,
}

impl ModemAnswer {
    /// Answer `numbers` (dial strings compared after removing everything
    /// but digits, `*` and `#`; empty: answer any number), reporting
    /// `speed` in CONNECT.
    pub fn new(numbers: &[String], speed: u32) -> Self {
        ModemAnswer {
            numbers: numbers.iter().map(|n| dial_digits(n)).collect(),
            speed,
            line: Vec::new(),
            overflow: false,
            connected: false,
            transmit: Vec::new(),
            events: Default::default(),
        }
    }

    /// True after CONNECT: the rest of the input is PPP.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Take octets from the line; returns how many were command-mode
    /// input. Once connected, the rest (`&data[n..]`) is PPP.
    pub fn handle_input(&mut self, data: &[u8]) -> usize {
        for (i, &b) in data.iter().enumerate() {
            if self.connected {
                return i;
            }
            match b {
                b'\r' => {
                    let line = std::mem::take(&mut self.line);
                    if std::mem::take(&mut self.overflow) {
                        self.reply("ERROR");
                    } else {
                        self.command(&line);
                    }
                }
                b'\n' => {}
                _ if self.line.len() >= MAX_LINE => self.overflow = true,
                _ => self.line.push(b),
            }
        }
        data.len()
    }

    fn command(&mut self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let text = text.trim();
        let upper = text.to_ascii_uppercase();
        // V.250 §5.2.1: a command line starts with "AT"; anything else is
        // noise on the line (or a peer that starts PPP without dialing).
        let Some(body) = upper.strip_prefix("AT") else {
            return;
        };
        if let Some(dial) = body.strip_prefix('D') {
            let number = dial_digits(dial);
            if self.numbers.is_empty() || self.numbers.contains(&number) {
                self.reply(&format!("CONNECT {}", self.speed));
                self.connected = true;
                self.events.push_back(AnswerEvent::Connected { number });
            } else {
                self.reply("NO CARRIER");
                self.events.push_back(AnswerEvent::Refused { number });
            }
        } else {
            // ATZ, ATE0, AT&F, ATH, ATS0=0, init strings: all fine.
            self.reply("OK");
        }
    }

    fn reply(&mut self, text: &str) {
        // V.250 §5.7.1, verbose result codes: <CR><LF>text<CR><LF>.
        self.transmit.extend_from_slice(b"\r\n");
        self.transmit.extend_from_slice(text.as_bytes());
        self.transmit.extend_from_slice(b"\r\n");
    }

    /// Octets to write to the line.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.transmit.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.transmit))
        }
    }

    pub fn poll_event(&mut self) -> Option<AnswerEvent> {
        self.events.pop_front()
    }
}

/// The digits of a dial string: V.250 §6.3.1 dial modifiers (T, P, W,
/// `,`, `!`, `@`, `;`), spaces and punctuation removed.
pub fn dial_digits(dial: &str) -> String {
    let dial = dial.trim_start_matches(['T', 't', 'P', 'p']);
    dial.chars()
        .filter(|c| c.is_ascii_digit() || *c == '*' || *c == '#' || *c == '+')
        .collect()
}

/// Where the dialing side stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialState {
    /// `AT` sent, waiting for OK.
    Init,
    /// `ATDT…` sent, waiting for CONNECT.
    Dialing,
    /// CONNECT received (the text after it, e.g. the speed).
    Connected(String),
    /// A failure result code (NO CARRIER, BUSY, ERROR, …).
    Failed(String),
}

/// The dialing (client) side.
#[derive(Debug, Clone)]
pub struct ModemDialer {
    number: String,
    state: DialState,
    line: Vec<u8>,
    overflow: bool,
    transmit: Vec<u8>,
}

impl ModemDialer {
    /// Dial `number` (tone dialing).
    pub fn new(number: &str) -> Self {
        ModemDialer {
            number: number.to_owned(),
            state: DialState::Init,
            line: Vec::new(),
            overflow: false,
            transmit: b"AT\r".to_vec(),
        }
    }

    pub fn state(&self) -> &DialState {
        &self.state
    }

    /// Take octets from the line; returns how many were result-code text.
    /// Once connected, the rest (`&data[n..]`) is PPP.
    pub fn handle_input(&mut self, data: &[u8]) -> usize {
        for (i, &b) in data.iter().enumerate() {
            if matches!(self.state, DialState::Connected(_) | DialState::Failed(_)) {
                // The LF of CONNECT's CR LF is text too (PPP would skip it
                // anyway while hunting for a flag).
                return if b == b'\n' { i + 1 } else { i };
            }
            match b {
                b'\r' | b'\n' => {
                    let line = std::mem::take(&mut self.line);
                    if !std::mem::take(&mut self.overflow) {
                        self.result(&line);
                    }
                }
                _ if self.line.len() >= MAX_LINE => self.overflow = true,
                _ => self.line.push(b),
            }
        }
        data.len()
    }

    fn result(&mut self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let text = text.trim();
        let upper = text.to_ascii_uppercase();
        if upper.is_empty() || upper.starts_with("AT") {
            // Blank lines between result codes, or the modem's echo.
            return;
        }
        match (&self.state, upper.as_str()) {
            (DialState::Init, "OK") => {
                self.transmit
                    .extend_from_slice(format!("ATDT{}\r", self.number).as_bytes());
                self.state = DialState::Dialing;
            }
            (DialState::Dialing, u) if u.starts_with("CONNECT") => {
                self.state = DialState::Connected(text[7..].trim().to_owned());
            }
            (_, "NO CARRIER" | "ERROR" | "NO DIALTONE" | "BUSY" | "NO ANSWER") => {
                self.state = DialState::Failed(text.to_owned());
            }
            // RING, unsolicited text: not ours to act on.
            _ => {}
        }
    }

    /// Octets to write to the line.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.transmit.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.transmit))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs both sides against each other, returning the dialer's state
    /// and the answering side's events.
    fn exchange(numbers: &[&str], dial: &str) -> (DialState, Vec<AnswerEvent>, Vec<u8>) {
        let numbers: Vec<String> = numbers.iter().map(|s| s.to_string()).collect();
        let mut answer = ModemAnswer::new(&numbers, 115_200);
        let mut dialer = ModemDialer::new(dial);
        let mut events = Vec::new();
        let mut ppp_seen = Vec::new();
        for _ in 0..10 {
            if let Some(out) = dialer.poll_transmit() {
                let n = answer.handle_input(&out);
                assert_eq!(n, out.len());
            }
            while let Some(e) = answer.poll_event() {
                events.push(e);
            }
            if let Some(mut out) = answer.poll_transmit() {
                if answer.is_connected() {
                    // PPP right behind CONNECT, in the same write.
                    out.extend_from_slice(&[0x7e, 0xff, 0x7d, 0x23]);
                }
                let n = dialer.handle_input(&out);
                ppp_seen.extend_from_slice(&out[n..]);
            }
        }
        (dialer.state().clone(), events, ppp_seen)
    }

    #[test]
    fn dialing_a_number_we_answer_connects() {
        let (state, events, ppp) = exchange(&["555-1234"], "5551234");
        assert_eq!(state, DialState::Connected("115200".into()));
        assert_eq!(
            events,
            vec![AnswerEvent::Connected {
                number: "5551234".into()
            }]
        );
        assert_eq!(ppp, vec![0x7e, 0xff, 0x7d, 0x23], "PPP after CONNECT kept");
    }

    #[test]
    fn any_number_is_answered_without_a_list() {
        let (state, events, _) = exchange(&[], "9,5550100");
        assert!(matches!(state, DialState::Connected(_)));
        assert_eq!(
            events,
            vec![AnswerEvent::Connected {
                number: "95550100".into()
            }]
        );
    }

    #[test]
    fn a_wrong_number_gets_no_carrier() {
        let (state, events, _) = exchange(&["5551234"], "5550000");
        assert_eq!(state, DialState::Failed("NO CARRIER".into()));
        assert_eq!(
            events,
            vec![AnswerEvent::Refused {
                number: "5550000".into()
            }]
        );
    }

    #[test]
    fn init_strings_get_ok_and_overlong_lines_error() {
        let mut a = ModemAnswer::new(&[], 9600);
        a.handle_input(b"ATZ\r\nAT&F E0\r");
        assert_eq!(a.poll_transmit().unwrap(), b"\r\nOK\r\n\r\nOK\r\n");
        let long = vec![b'A'; MAX_LINE * 4];
        a.handle_input(&long);
        a.handle_input(b"\r");
        assert_eq!(a.poll_transmit().unwrap(), b"\r\nERROR\r\n");
        // Noise that is not a command is ignored.
        a.handle_input(b"hello\r");
        assert!(a.poll_transmit().is_none());
        assert!(!a.is_connected());
    }

    #[test]
    fn dialer_ignores_echo_and_ring_and_reads_busy() {
        let mut d = ModemDialer::new("1");
        assert_eq!(d.poll_transmit().unwrap(), b"AT\r");
        d.handle_input(b"AT\r\r\nOK\r\n");
        assert_eq!(d.poll_transmit().unwrap(), b"ATDT1\r");
        d.handle_input(b"ATDT1\r\r\nRING\r\n");
        assert_eq!(d.state(), &DialState::Dialing);
        d.handle_input(b"\r\nBUSY\r\n");
        assert_eq!(d.state(), &DialState::Failed("BUSY".into()));
    }

    #[test]
    fn dial_digits_drop_modifiers() {
        assert_eq!(dial_digits("T 9,(425) 555-0134"), "94255550134");
        assert_eq!(dial_digits("P*70#"), "*70#");
    }
}
