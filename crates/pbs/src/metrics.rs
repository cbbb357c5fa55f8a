//! The service's counters, as the Windows service's "PBServer Monitor"
//! had them (TechNet cc977807: full upgrade, delta upgrade and error hits,
//! plus no-upgrade), exposed in the Prometheus text format.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;

/// The counters (lock-free increments on the hot path).
pub struct Metrics {
    pub full_hits: Counter,
    pub delta_hits: Counter,
    pub no_update_hits: Counter,
    pub error_hits: Counter,
    pub cabinet_downloads: Counter,
    pub posts: Counter,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("pbs");
        let m = Metrics {
            full_hits: Counter::default(),
            delta_hits: Counter::default(),
            no_update_hits: Counter::default(),
            error_hits: Counter::default(),
            cabinet_downloads: Counter::default(),
            posts: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "full_hits",
            "Queries answered with the full phone book",
            m.full_hits.clone(),
        );
        registry.register(
            "delta_hits",
            "Queries answered with a delta",
            m.delta_hits.clone(),
        );
        registry.register(
            "no_update_hits",
            "Queries answered with no update",
            m.no_update_hits.clone(),
        );
        registry.register(
            "error_hits",
            "Malformed queries and unknown phone books",
            m.error_hits.clone(),
        );
        registry.register(
            "cabinet_downloads",
            "Cabinet files served",
            m.cabinet_downloads.clone(),
        );
        registry.register("posts", "Versions installed by a post", m.posts.clone());
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}
