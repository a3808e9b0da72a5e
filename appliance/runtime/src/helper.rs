//! A shard's helper thread: pinned off the shard cores, it serves the shard's requests in the
//! order they were handed over, so that what blocks (file system calls, fsyncs, reads) never
//! runs on a shard core. The shard hands a request over and picks the answer up later without
//! waiting, or waits for it when it cannot go on without it. The flush writer's thread is a
//! glommio executor rather than a plain thread; it is a helper all the same ([`Helper::start`]).

use crate::{RuntimeError, ThreadFailure};
use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};

/// Joins a helper's thread once its request channel is closed.
type Join = Box<dyn FnOnce() + Send>;

pub struct Helper<Q, A> {
    name: String,
    to: Option<Sender<Q>>,
    from: Receiver<A>,
    /// Requests handed over whose answer was not picked up yet.
    outstanding: usize,
    join: Option<Join>,
}

/// The helper thread's end of the channels: requests in order, answers back.
pub struct Requests<Q, A> {
    pub requests: Receiver<Q>,
    pub answers: Sender<A>,
}

/// Pins the calling helper thread off the shard cores, or says why it could not.
pub fn pin_helper(name: &str, shard_cpus: &[usize]) {
    if !crate::run::pin_off(shard_cpus) {
        eprintln!("chronicle: {name}: every core is a shard core; not pinned");
    }
}

impl<Q: Send + 'static, A: Send + 'static> Helper<Q, A> {
    /// Starts thread `name` (pinned to the cores that are not `shard_cpus`), answering each
    /// request with `serve`.
    pub fn spawn(
        name: String,
        shard_cpus: Vec<usize>,
        mut serve: impl FnMut(Q) -> A + Send + 'static,
    ) -> Result<Self, RuntimeError> {
        let thread_name = name.clone();
        Self::start(name.clone(), |ends| {
            let thread = std::thread::Builder::new()
                .name(name.clone())
                .spawn(move || {
                    pin_helper(&thread_name, &shard_cpus);
                    for q in ends.requests {
                        if ends.answers.send(serve(q)).is_err() {
                            return;
                        }
                    }
                })
                .map_err(|e| RuntimeError::thread(name, ThreadFailure::Spawn(e.to_string())))?;
            Ok(Box::new(move || {
                let _ = thread.join();
            }))
        })
    }

    /// A helper whose thread `launch` starts (and returns the joiner of), serving the
    /// [`Requests`] it is given: for a thread that is not a plain one (the flush writer's
    /// glommio executor).
    pub fn start(
        name: String,
        launch: impl FnOnce(Requests<Q, A>) -> Result<Join, RuntimeError>,
    ) -> Result<Self, RuntimeError> {
        let (to, requests) = channel::<Q>();
        let (answers, from) = channel::<A>();
        let join = launch(Requests { requests, answers })?;
        Ok(Self {
            name,
            to: Some(to),
            from,
            outstanding: 0,
            join: Some(join),
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
        RuntimeError::thread(self.name.clone(), ThreadFailure::Ended)
    }
}

impl<Q, A> Drop for Helper<Q, A> {
    fn drop(&mut self) {
        self.to = None;
        if let Some(join) = self.join.take() {
            join();
        }
    }
}
