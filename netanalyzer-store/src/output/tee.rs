use netanalyzer_core::{Control, Sink};

/// Fans every item out to several sinks, in order.
///
/// A sink that returns [`Control::Stop`] is not fed again; the tee itself
/// returns `Stop` once every sink has. The first error stops the write and
/// is returned; [`Sink::close`] closes every sink and returns the first
/// error, so one broken output does not keep the others from flushing.
#[derive(Debug)]
pub struct Tee<S> {
    sinks: Vec<S>,
    stopped: Vec<bool>,
}

impl<S> Tee<S> {
    /// A tee over `sinks`.
    pub fn new(sinks: Vec<S>) -> Self {
        let stopped = vec![false; sinks.len()];
        Tee { sinks, stopped }
    }

    /// The sinks, in the order given.
    pub fn sinks(&self) -> &[S] {
        &self.sinks
    }

    /// Gives the sinks back.
    pub fn into_inner(self) -> Vec<S> {
        self.sinks
    }
}

impl<T: ?Sized, S: Sink<T>> Sink<T> for Tee<S> {
    type Error = S::Error;

    fn write(&mut self, item: &T) -> Result<Control, S::Error> {
        let mut live = false;
        for (sink, stopped) in self.sinks.iter_mut().zip(self.stopped.iter_mut()) {
            if *stopped {
                continue;
            }
            match sink.write(item)? {
                Control::Continue => live = true,
                Control::Stop => *stopped = true,
            }
        }
        Ok(if live {
            Control::Continue
        } else {
            Control::Stop
        })
    }

    fn tick(&mut self) -> Result<(), S::Error> {
        self.sinks.iter_mut().try_for_each(|s| s.tick())
    }

    fn flush(&mut self) -> Result<(), S::Error> {
        self.sinks.iter_mut().try_for_each(|s| s.flush())
    }

    fn close(&mut self) -> Result<(), S::Error> {
        let mut first = Ok(());
        for s in &mut self.sinks {
            let r = s.close();
            if first.is_ok() {
                first = r;
            }
        }
        first
    }
}
