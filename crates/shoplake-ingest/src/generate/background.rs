//! Writing on a second thread, so that generating the next lines overlaps with compressing
//! and copying the previous ones into the file (the kernel's page-cache copy alone costs
//! about as much as generating plain CSV).

use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

/// Buffers in flight between the two threads.
const IN_FLIGHT: usize = 4;

/// A writer whose `write_all` hands a copy of the bytes to a thread that writes them to the
/// inner writer; `finish` waits for it and returns the inner writer.
pub(crate) struct BackgroundWriter<W: Write + Send + 'static> {
    send: Option<SyncSender<Vec<u8>>>,
    recycled: Receiver<Vec<u8>>,
    thread: Option<JoinHandle<io::Result<W>>>,
}

impl<W: Write + Send + 'static> BackgroundWriter<W> {
    pub(crate) fn new(mut inner: W) -> Self {
        let (send, receive) = sync_channel::<Vec<u8>>(IN_FLIGHT);
        let (give_back, recycled) = sync_channel::<Vec<u8>>(IN_FLIGHT + 2);
        let thread = std::thread::spawn(move || -> io::Result<W> {
            for buf in receive {
                inner.write_all(&buf)?;
                // A full return queue only means the buffer is dropped.
                let _ = give_back.try_send(buf);
            }
            inner.flush()?;
            Ok(inner)
        });
        BackgroundWriter {
            send: Some(send),
            recycled,
            thread: Some(thread),
        }
    }

    /// Writes what is queued and returns the inner writer, or the first error.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        drop(self.send.take());
        self.join()
    }

    fn join(&mut self) -> io::Result<W> {
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the writer thread panicked")),
            None => Err(io::Error::other("the writer was already finished")),
        }
    }
}

impl<W: Write + Send + 'static> Write for BackgroundWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let mut owned = self.recycled.try_recv().unwrap_or_default();
        owned.clear();
        owned.extend_from_slice(buf);
        let sent = self.send.as_ref().map(|s| s.send(owned));
        match sent {
            Some(Ok(())) => Ok(()),
            // The thread stopped: it failed, and joining it gives the error.
            _ => {
                drop(self.send.take());
                Err(self
                    .join()
                    .err()
                    .unwrap_or_else(|| io::Error::other("the writer thread stopped")))
            }
        }
    }

    /// Queued bytes are written by `finish`; flushing here would need a round trip.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_everything_in_order() {
        let mut w = BackgroundWriter::new(Vec::new());
        for i in 0..1000u32 {
            w.write_all(format!("{i},").as_bytes()).unwrap();
        }
        let out = String::from_utf8(w.finish().unwrap()).unwrap();
        let expected: String = (0..1000u32).map(|i| format!("{i},")).collect();
        assert_eq!(out, expected);
    }

    struct Failing;
    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("disk full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn reports_the_writer_error() {
        let mut w = BackgroundWriter::new(Failing);
        let mut failed = None;
        for _ in 0..100 {
            if let Err(e) = w.write_all(b"x") {
                failed = Some(e);
                break;
            }
        }
        let e = failed.unwrap_or_else(|| w.finish().err().unwrap());
        assert!(e.to_string().contains("disk full"), "{e}");
    }
}
