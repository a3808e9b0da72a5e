//! A shard's helper thread: pinned off the shard cores, it serves the shard's requests in the
//! order they were handed over, so that what blocks (file system calls, fsyncs, reads) never
//! runs on a shard core. The shard hands a request over and picks the answer up later without
//! waiting, or waits for it when it cannot go on without it.

use crate::RuntimeError;
use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::thread::JoinHandle;

pub struct Helper<Q, A> {
    name: String,
    to: Option<Sender<Q>>,
    from: Receiver<A>,
    /// Requests handed over whose answer was not picked up yet.
    outstanding: usize,
    thread: Option<JoinHandle<()>>,
}

impl<Q: Send + 'static, A: Send + 'static> Helper<Q, A> {
    /// Starts thread `name` (pinned to the cores that are not `shard_cpus`), answering each
    /// request with `serve`.
    pub fn spawn(
        name: String,
        shard_cpus: Vec<usize>,
        mut serve: impl FnMut(Q) -> A + Send + 'static,
    ) -> Result<Self, RuntimeError> {
        let (to, requests) = channel::<Q>();
        let (back, from) = channel::<A>();
        let thread_name = name.clone();
        let thread = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                if !crate::run::pin_off(&shard_cpus) {
                    eprintln!("chronicle: {thread_name}: every core is a shard core; not pinned");
                }
                for q in requests {
                    if back.send(serve(q)).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| RuntimeError::Executor(format!("{name} thread: {e}")))?;
        Ok(Self {
            name,
            to: Some(to),
            from,
            outstanding: 0,
            thread: Some(thread),
        })
    }

    pub fn submit(&mut self, q: Q) -> Result<(), RuntimeError> {
        self.to
            .as_ref()
            .expect("not stopped")
            .send(q)
            .map_err(|_| self.died())?;
        self.outstanding += 1;
        Ok(())
    }

    /// Requests whose answer is still to pick up.
    pub fn outstanding(&self) -> usize {
        self.outstanding
    }

    /// The next answer, if there is one now (never waits).
    pub fn try_answer(&mut self) -> Result<Option<A>, RuntimeError> {
        if self.outstanding == 0 {
            return Ok(None);
        }
        match self.from.try_recv() {
            Ok(a) => {
                self.outstanding -= 1;
                Ok(Some(a))
            }
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(self.died()),
        }
    }

    /// Waits for the next answer (None: nothing outstanding).
    pub fn answer(&mut self) -> Result<Option<A>, RuntimeError> {
        if self.outstanding == 0 {
            return Ok(None);
        }
        let a = self.from.recv().map_err(|_| self.died())?;
        self.outstanding -= 1;
        Ok(Some(a))
    }

    fn died(&self) -> RuntimeError {
        RuntimeError::Executor(format!("the {} thread ended", self.name))
    }
}

impl<Q, A> Drop for Helper<Q, A> {
    fn drop(&mut self) {
        self.to = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
