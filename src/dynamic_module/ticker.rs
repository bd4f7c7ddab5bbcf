//! The native build's timer. Envoy gives an HTTP filter configuration no timer, only a scheduler
//! whose `commit`, callable from any thread, runs `on_http_filter_config_scheduled` on the main
//! thread. A thread of ours commits once a second; the main thread then writes a heartbeat when
//! one is due. Dropping the ticker stops the thread, waits for it, and deletes the scheduler.

use std::ffi::c_void;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use super::abi::{
    envoy_dynamic_module_callback_http_filter_config_scheduler_commit as commit,
    envoy_dynamic_module_callback_http_filter_config_scheduler_delete as delete,
    envoy_dynamic_module_callback_http_filter_config_scheduler_new as new, ConfigEnvoyPtr,
};

/// Envoy's scheduler, moved to the ticking thread.
struct Scheduler(*mut c_void);

// SAFETY: Envoy documents the scheduler's `commit` as callable from any thread; the pointer is
// only committed to by the ticking thread and deleted after that thread has ended.
unsafe impl Send for Scheduler {}

pub struct Ticker {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<Scheduler>>,
}

impl Ticker {
    /// Starts ticking every `every` for the configuration `config`; `None` when Envoy gives no
    /// scheduler or the thread cannot start (heartbeats are then not written, and the main
    /// thread logs why).
    pub fn start(config: ConfigEnvoyPtr, every: Duration) -> Option<Ticker> {
        // SAFETY: called on the main thread during `config_new`, with Envoy's configuration
        // pointer, as the ABI requires.
        let raw = unsafe { new(config) };
        if raw.is_null() {
            return None;
        }
        let scheduler = Scheduler(raw);
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("pmg-heartbeat".into())
            .spawn(move || {
                let s = scheduler;
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    // SAFETY: `s.0` is a live scheduler: it is deleted only after this thread
                    // returns it (`Drop`).
                    unsafe { commit(s.0, 0) };
                }
                s
            });
        match thread {
            Ok(thread) => Some(Ticker {
                stop: Some(stop),
                thread: Some(thread),
            }),
            Err(_) => {
                // SAFETY: the scheduler was made above and nothing else holds it.
                unsafe { delete(raw) };
                None
            }
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        // Closing the channel wakes the thread at once.
        drop(self.stop.take());
        if let Some(Ok(scheduler)) = self.thread.take().map(JoinHandle::join) {
            // SAFETY: the ticking thread has ended: nothing commits to the scheduler any more.
            unsafe { delete(scheduler.0) };
        }
    }
}
