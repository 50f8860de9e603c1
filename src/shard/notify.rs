//! Publishing keyspace events (crate::notify): the events a command
//! recorded on the keyspace go out, in order, after it ran, through the
//! Pub/Sub directory, so subscribers on every shard receive them.

use super::*;

impl Shard {
    /// Publishes the keyspace events recorded since the last call.
    pub(crate) fn publish_events(&mut self) {
        if self.ks.events.is_empty() {
            return;
        }
        let f = self.ks.notify_flags;
        for (db, event, key) in std::mem::take(&mut self.ks.events) {
            if f & crate::notify::KEYSPACE != 0 {
                let mut ch = format!("__keyspace@{db}__:").into_bytes();
                ch.extend_from_slice(&key);
                self.ps_publish(false, &ch, event.as_bytes());
            }
            if f & crate::notify::KEYEVENT != 0 {
                let ch = format!("__keyevent@{db}__:{event}");
                self.ps_publish(false, ch.as_bytes(), &key);
            }
        }
    }
}
