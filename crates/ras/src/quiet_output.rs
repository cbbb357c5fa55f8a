//! Output that never takes the process down. A daemon's (or a long-running
//! client's) standard output and error may go away under it (the reader of
//! a pipe exits, journald restarts and closes a service's stream, the
//! terminal of `ras connect` is closed): `println!` then panics ("failed
//! printing to stdout: Broken pipe"), and so does tracing-subscriber when
//! it reports its own write errors with `eprintln!`. Here every write is
//! fallible and its error dropped: a line nobody can read is lost, the
//! server keeps serving and the tunnel stays up. (SIGPIPE stays ignored, as the Rust runtime sets
//! it up, so writing to a closed pipe returns EPIPE instead of killing us.)

use std::io::{self, Write};

/// `println!` whose error is ignored: one line on standard output.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}
pub(crate) use say;

/// `eprintln!` whose error is ignored: one line on standard error. For the
/// long-running clients (`ras connect`, `ras dial`), whose terminal may go
/// away while the tunnel stays up.
macro_rules! say_err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}
pub(crate) use say_err;

/// A [`tracing_subscriber::fmt::MakeWriter`] for standard error that
/// reports every write as done, whatever happened to the stream.
#[derive(Clone, Copy, Default)]
pub struct QuietStderr;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for QuietStderr {
    type Writer = QuietWriter<io::StderrLock<'static>>;

    fn make_writer(&'a self) -> Self::Writer {
        QuietWriter(io::stderr().lock())
    }
}

/// A writer that swallows the errors of the one it wraps.
pub struct QuietWriter<W>(pub W);

impl<W: Write> Write for QuietWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // EPIPE, EIO, ENOSPC…: nobody is there to be told; the line is lost.
        let _ = self.0.write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = self.0.flush();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> io::Result<()> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
    }

    #[test]
    fn errors_are_swallowed() {
        let mut w = QuietWriter(Broken);
        assert_eq!(w.write(b"a line\n").unwrap(), 7);
        w.write_all(b"another\n").unwrap();
        w.flush().unwrap();
    }
}
