//! One direction's body, streamed through a `Redactor` as the proxy hands it over chunk by chunk.
//!
//! The redactor may hold back a short tail it cannot decide yet. While it does, the chunk's settled
//! bytes are handed back to the proxy with "pause" (Envoy buffers them, in order), so that if
//! trailers come instead of more data the tail can still be appended before them. Once the proxy
//! holds `PAUSE_LIMIT` bytes this way the data is let go, and only the tail waits, in the redactor.
//! A host that can add body bytes when the trailers arrive (`Host::adds_body_at_trailers`: the
//! native build) is never asked to pause: the settled bytes go on at once, and a tail still held
//! when the trailers come is added then.

use crate::host::{Direction, Host, LogLevel};
use crate::pan::{Counts, Redactor};

/// Most body bytes the filter asks the proxy to hold back at once.
pub const PAUSE_LIMIT: usize = 64 * 1024;

/// What the proxy should do with the body after a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Continue,
    /// Buffer the data and call again with more (Envoy's StopIterationAndBuffer).
    Pause,
    /// The body could not be redacted safely; the stream must be aborted.
    Failed,
}

pub struct BodyStream {
    dir: Direction,
    redactor: Redactor,
    /// Bytes at the front of the proxy's body buffer that were already redacted and handed back
    /// with a pause; the proxy passes them in again, followed by new data.
    paused: usize,
    /// The last callback paused: the proxy is buffering this body (possibly zero bytes of it).
    buffering: bool,
    /// While the proxy buffers this body: the bytes it holds (handed back with a pause), then the
    /// output of the current callback; reused so that chunks allocate nothing once warm.
    out: Vec<u8>,
    /// The stream has ended (end of data, or trailers): everything has been released.
    done: bool,
}

impl BodyStream {
    pub fn new(dir: Direction, redactor: Redactor) -> BodyStream {
        BodyStream {
            dir,
            redactor,
            paused: 0,
            buffering: false,
            out: Vec::new(),
            done: false,
        }
    }

    pub fn counts(&self) -> &Counts {
        self.redactor.counts()
    }

    pub fn tokens(&self) -> Option<&crate::pan::Tokens> {
        self.redactor.tokens()
    }

    /// A body callback: `size` bytes are in the proxy's buffer; `end` marks the end of the stream.
    /// The first `paused` of them are the bytes handed back last time (kept in `out`); only the
    /// bytes after them are read.
    pub fn on_data<H: Host>(&mut self, host: &H, size: usize, end: bool) -> Step {
        if self.done {
            return Step::Continue;
        }
        let paused = self.paused.min(size);
        self.out.truncate(paused);
        let mut new = if size > paused {
            match host.body(self.dir, paused, size - paused) {
                Some(d) => d,
                None => return self.fail(host, "cannot read the body"),
            }
        } else {
            Vec::new()
        };
        if paused == 0 && end && self.redactor.passes_last(&new) {
            // Unchanged, and nothing is left to release.
            let _ = self.redactor.finish();
            self.done = true;
            return Step::Continue;
        }
        if paused == 0 {
            let edits_before = self.redactor.edits();
            if let Some(n) = self.redactor.push_in_place(&mut new, end) {
                return self.in_place(host, size, end, &new, n, edits_before);
            }
        }
        let (held_before, edits_before) = (self.redactor.held(), self.redactor.edits());
        let released = self.redactor.push(&new).len();
        // Nothing held back before or after, nothing rewritten: the proxy's buffer is already
        // what it should be, and nothing is copied or written back.
        let unchanged = held_before == 0
            && self.redactor.held() == 0
            && released == new.len()
            && self.redactor.edits() == edits_before;
        let out_len = if unchanged {
            if end {
                // Nothing is held, so nothing is left to release.
                let _ = self.redactor.finish();
                self.done = true;
            }
            size
        } else if paused == 0 && self.redactor.held() == 0 {
            // The redactor's output is the whole new buffer: written from where it lies.
            if host
                .set_body(self.dir, 0, size, self.redactor.last_output())
                .is_err()
            {
                return self.fail(host, "cannot write the body");
            }
            if end {
                let _ = self.redactor.finish();
                self.done = true;
            }
            released
        } else {
            self.out.extend_from_slice(self.redactor.last_output());
            if end {
                self.out.extend_from_slice(self.redactor.finish());
                self.done = true;
            }
            if host.set_body(self.dir, 0, size, &self.out).is_err() {
                return self.fail(host, "cannot write the body");
            }
            self.out.len()
        };
        if end
            || self.redactor.held() == 0
            || out_len >= PAUSE_LIMIT
            || host.adds_body_at_trailers()
        {
            self.paused = 0;
            self.buffering = false;
            self.out.clear();
            Step::Continue
        } else {
            // Only the last branch above holds bytes back, and `out` holds what it handed back.
            self.paused = out_len;
            self.buffering = true;
            Step::Pause
        }
    }

    /// After the redactor masked the whole chunk where it lies: `new[..n]` is the output and the
    /// rest of it is held.
    fn in_place<H: Host>(
        &mut self,
        host: &H,
        size: usize,
        end: bool,
        new: &[u8],
        n: usize,
        edits_before: u64,
    ) -> Step {
        if end {
            self.done = true;
        }
        let output = new.get(..n).unwrap_or(new);
        if (self.redactor.edits() != edits_before || n != size)
            && host.set_body(self.dir, 0, size, output).is_err()
        {
            return self.fail(host, "cannot write the body");
        }
        if end || self.redactor.held() == 0 || n >= PAUSE_LIMIT || host.adds_body_at_trailers() {
            self.paused = 0;
            self.buffering = false;
            Step::Continue
        } else {
            self.out.clear();
            self.out.extend_from_slice(output);
            self.paused = n;
            self.buffering = true;
            Step::Pause
        }
    }

    /// Trailers arrived: the body is over. The held tail is appended to what the proxy buffers.
    pub fn on_trailers<H: Host>(&mut self, host: &H) -> Step {
        if self.done {
            return Step::Continue;
        }
        self.done = true;
        let paused = self.paused;
        let tail = self.redactor.finish();
        if tail.is_empty() {
            return Step::Continue;
        }
        if !self.buffering && !host.adds_body_at_trailers() {
            // The proxy let this body go already, so the tail has nowhere to go.
            return self.fail(host, "trailers arrived while body bytes were held");
        }
        let tail = tail.to_vec();
        if host.set_body(self.dir, paused, 0, &tail).is_err() {
            return self.fail(host, "cannot append the body's last bytes");
        }
        Step::Continue
    }

    fn fail<H: Host>(&mut self, host: &H, why: &str) -> Step {
        self.done = true;
        host.log(
            LogLevel::Error,
            &format!(
                "{} {:?} body: {why}; stream aborted",
                crate::filter::LOG_PREFIX,
                self.dir
            ),
        );
        Step::Failed
    }
}
