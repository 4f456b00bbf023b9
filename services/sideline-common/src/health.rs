//! Readiness of a service: named components (e.g. `mqtt`, `kafka`, `roster`), each ready or not.
//! `/readyz` answers 200 only when all are ready; `/healthz` only says the process serves.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Shared readiness flags; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Health {
    components: Arc<BTreeMap<&'static str, AtomicBool>>,
}

impl Health {
    /// A health with these components, all not ready.
    pub fn new(components: &[&'static str]) -> Self {
        Health {
            components: Arc::new(
                components
                    .iter()
                    .map(|c| (*c, AtomicBool::new(false)))
                    .collect(),
            ),
        }
    }

    /// Mark a component ready or not (unknown names are ignored).
    pub fn set(&self, component: &str, ready: bool) {
        if let Some(flag) = self.components.get(component) {
            flag.store(ready, Ordering::Relaxed);
        }
    }

    /// Is this component ready?
    pub fn get(&self, component: &str) -> bool {
        self.components
            .get(component)
            .is_some_and(|f| f.load(Ordering::Relaxed))
    }

    /// All components ready?
    pub fn ready(&self) -> bool {
        self.components.values().all(|f| f.load(Ordering::Relaxed))
    }

    /// Component → ready, for the `/readyz` body.
    pub fn snapshot(&self) -> BTreeMap<&'static str, bool> {
        self.components
            .iter()
            .map(|(k, v)| (*k, v.load(Ordering::Relaxed)))
            .collect()
    }
}
