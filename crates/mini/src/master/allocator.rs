//! The allocator: offers the agent's free resources to one eligible framework
//! at a time, lowest dominant share first (DRF, as Mesos's hierarchical
//! allocator), and runs on every change instead of on an interval.

use mesos::v1::scheduler::{Event, Offers};
use mesos::v1::{Address, AllocationInfo, FrameworkId, Offer, OfferId, Url};

use super::{Clock, Master, Offered};
use crate::resources::Resources;

impl Master {
    /// Offers free resources while some framework can take them.
    pub(super) fn allocate(&mut self, clock: Clock) {
        loop {
            let mut free = self.config.resources.clone();
            free.subtract(&self.used);
            free.subtract(&self.offered_resources());
            if !free.is_allocatable() {
                return;
            }
            let Some((fid, role)) = self.pick(clock) else { return };
            if let Some(f) = self.frameworks.get_mut(&fid) {
                f.last_offered = Some(clock.mono);
            }
            self.make_offer(fid, role, free);
        }
    }

    /// The eligible (framework, role) with the lowest dominant share. Eligible:
    /// connected, role not suppressed, no live filter, no outstanding offer.
    fn pick(&self, clock: Clock) -> Option<(FrameworkId, String)> {
        let total = &self.config.resources;
        self.frameworks
            .values()
            .filter(|f| f.connected() && f.removed_time.is_none())
            .filter(|f| !self.offers.values().any(|o| o.framework_id == f.id))
            .filter_map(|f| {
                let role = f.roles().into_iter().find(|r| {
                    !f.suppressed_roles.contains(r) && f.refused_until.get(r).is_none_or(|until| *until <= clock.mono)
                })?;
                let mut held = f.used();
                held.add(&self.offered_to(&f.id));
                Some((dominant_share(&held, total), f.last_offered, f.registered_time, f.id.clone(), role))
            })
            // Lowest share; then never offered, or offered longest ago; then oldest.
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.total_cmp(&b.2)))
            .map(|(_, _, _, id, role)| (id, role))
    }

    fn make_offer(&mut self, fid: FrameworkId, role: String, resources: Resources) {
        let id = self.offer_id_for();
        let framework = &self.frameworks[&fid];
        let multi_role = framework.multi_role();
        let allocation_role = multi_role.then_some(role.as_str());
        let offer = Offer {
            id: OfferId::new(id.clone()),
            framework_id: fid.clone(),
            agent_id: self.agent_id.clone(),
            hostname: self.config.hostname.clone(),
            url: Some(Url {
                scheme: "http".into(),
                address: Address {
                    hostname: Some(self.config.hostname.clone()),
                    ip: Some(self.config.ip.to_string()),
                    port: u32::from(self.config.port),
                },
                path: Some("/slave(1)".into()),
                ..Default::default()
            }),
            resources: resources.to_wire(allocation_role),
            attributes: self.config.attributes.clone(),
            allocation_info: multi_role.then(|| AllocationInfo { role: Some(role.clone()) }),
            ..Default::default()
        };
        self.offers.insert(id, Offered { framework_id: fid.clone(), resources, role });
        self.send(&fid, Event::Offers(Offers { offers: vec![offer] }));
    }

    /// Takes an offer back (framework gone or disconnected); the caller re-allocates.
    pub(super) fn remove_offers_of(&mut self, fid: &FrameworkId) {
        self.offers.retain(|_, o| &o.framework_id != fid);
    }
}

fn dominant_share(held: &Resources, total: &Resources) -> f64 {
    ["cpus", "mem", "disk"]
        .iter()
        .filter(|r| total.scalar(r) > 0.0)
        .map(|r| held.scalar(r) / total.scalar(r))
        .fold(0.0, f64::max)
}
