//! This instance's fan-out: one small broadcast channel per member with live subscribers,
//! so an event wakes only its member's subscriptions (not every open subscription), and a
//! member's channel disappears with its last subscriber.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use tokio::sync::broadcast;
use uuid::Uuid;

use super::{Delivery, Event};

/// Deliveries a subscriber may fall behind by before it is told to resync.
const PER_MEMBER_BUFFER: usize = 64;

/// Hears every batch the hub delivers — with Redis, every instance's — and every resync.
pub trait Observer: Send + Sync + 'static {
    fn delivered(&self, batch: &[Event]);
    /// Events may have been lost.
    fn resynced(&self);
}

#[derive(Default)]
pub struct Hub {
    /// A std Mutex: held only to look up or insert, never across an await.
    members: Mutex<HashMap<Uuid, broadcast::Sender<Delivery>>>,
    /// Added while the app is built, read on every delivery (a read lock, never contended
    /// once serving).
    observers: RwLock<Vec<Arc<dyn Observer>>>,
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, HashMap<Uuid, broadcast::Sender<Delivery>>> {
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Has `observer` hear every delivery and resync from now on, after the observers added
    /// before it.
    pub fn observe(&self, observer: Arc<dyn Observer>) {
        self.observers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(observer);
    }

    fn observers(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<dyn Observer>>> {
        self.observers.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands each event to its member's subscribers on this instance.
    pub fn deliver(&self, batch: &[Event]) {
        for o in self.observers().iter() {
            o.delivered(batch);
        }
        let members = self.lock();
        for e in batch {
            if let Some(tx) = members.get(&e.member) {
                // An error only means the last subscriber just left.
                let _ = tx.send(Delivery::Event(*e));
            }
        }
    }

    /// Tells every subscriber on this instance that events may have been lost.
    pub fn resync_all(&self) {
        for o in self.observers().iter() {
            o.resynced();
        }
        for tx in self.lock().values() {
            let _ = tx.send(Delivery::Resync);
        }
    }

    pub fn subscribe(self: &Arc<Self>, member: Uuid) -> MemberEvents {
        let rx = self
            .lock()
            .entry(member)
            .or_insert_with(|| broadcast::channel(PER_MEMBER_BUFFER).0)
            .subscribe();
        MemberEvents {
            rx: Some(rx),
            member,
            hub: self.clone(),
        }
    }

    pub fn members(&self) -> usize {
        self.lock().len()
    }

    pub fn receivers(&self) -> usize {
        self.lock().values().map(|tx| tx.receiver_count()).sum()
    }
}

/// One subscriber's deliveries; leaving (drop) removes the member's channel when it was the
/// last one.
pub struct MemberEvents {
    rx: Option<broadcast::Receiver<Delivery>>,
    member: Uuid,
    hub: Arc<Hub>,
}

impl MemberEvents {
    /// The next delivery; a subscriber that fell behind gets `Resync` instead of what it
    /// missed.
    pub async fn recv(&mut self) -> Delivery {
        let Some(rx) = self.rx.as_mut() else {
            return std::future::pending().await;
        };
        match rx.recv().await {
            Ok(d) => d,
            Err(broadcast::error::RecvError::Lagged(_)) => Delivery::Resync,
            // The sender lives in the hub for as long as this receiver does.
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }

    pub fn member(&self) -> Uuid {
        self.member
    }
}

impl Drop for MemberEvents {
    fn drop(&mut self) {
        let mut members = self.hub.lock();
        // Drop the receiver under the lock, so a concurrent subscribe cannot slip between
        // the count and the removal.
        self.rx = None;
        if members
            .get(&self.member)
            .is_some_and(|tx| tx.receiver_count() == 0)
        {
            members.remove(&self.member);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Kind;

    #[tokio::test]
    async fn events_reach_only_their_member_and_channels_go_with_their_last_subscriber() {
        let hub = Arc::new(Hub::default());
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let mut a1 = hub.subscribe(a);
        let mut a2 = hub.subscribe(a);
        let mut b1 = hub.subscribe(b);
        assert_eq!(hub.members(), 2);
        let e = Event::new(a, Kind::EarningCreated, Uuid::now_v7());
        hub.deliver(&[e]);
        assert_eq!(a1.recv().await, Delivery::Event(e));
        assert_eq!(a2.recv().await, Delivery::Event(e));
        let nothing = tokio::time::timeout(std::time::Duration::from_millis(20), b1.recv()).await;
        assert!(nothing.is_err(), "b received a's event");
        drop(a1);
        assert_eq!(hub.members(), 2);
        drop(a2);
        assert_eq!(hub.members(), 1);
        drop(b1);
        assert_eq!(hub.members(), 0);
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_told_to_resync() {
        let hub = Arc::new(Hub::default());
        let a = Uuid::now_v7();
        let mut slow = hub.subscribe(a);
        let batch: Vec<Event> = (0..PER_MEMBER_BUFFER + 5)
            .map(|_| Event::new(a, Kind::EarningSettled, Uuid::now_v7()))
            .collect();
        hub.deliver(&batch);
        assert_eq!(slow.recv().await, Delivery::Resync);
    }
}
