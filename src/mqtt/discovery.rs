//! Home Assistant MQTT discovery: retained `<prefix>/<component>/<node>/<object>/config`
//! messages that make a Home Assistant install show lotsense's entities
//! (board counters, gates) with no manual set-up. Every entity belongs to one
//! device per site and follows lotsense's availability topic, so Home
//! Assistant greys them out when lotsense is down (last will).

use super::Topics;
use serde_json::{json, Value};

/// One entity to announce.
pub struct Entity {
    /// `sensor`, `binary_sensor`, …
    pub component: &'static str,
    /// Unique within the site: `[a-zA-Z0-9_-]` (others become `_`).
    pub object: String,
    pub name: String,
    pub state_topic: String,
    pub value_template: Option<String>,
    /// Further keys of the config (icon, unit, attributes topic, …).
    pub extra: Value,
}

/// Home Assistant object ids: `[a-zA-Z0-9_-]`.
pub fn object_id(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The discovery topic and config of `e`, for the site's device.
pub fn config(topics: &Topics, prefix: &str, site: &str, e: &Entity) -> (String, String) {
    let node = format!("lotsense_{}", object_id(site));
    let object = object_id(&e.object);
    let mut cfg = json!({
        "name": e.name,
        "unique_id": format!("{node}_{object}"),
        "object_id": format!("{node}_{object}"),
        "state_topic": e.state_topic,
        "availability_topic": topics.available(),
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": { "identifiers": [node.clone()], "name": format!("lotsense {site}"), "manufacturer": "lotsense", "model": "car park" },
    });
    if let Some(t) = &e.value_template {
        cfg["value_template"] = Value::String(t.clone());
    }
    if let (Some(map), Value::Object(extra)) = (cfg.as_object_mut(), &e.extra) {
        map.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    (
        format!("{prefix}/{}/{node}/{object}/config", e.component),
        cfg.to_string(),
    )
}

/// Entities of one gate: the last command (open/deny, with the decision as
/// attributes) and the controller's last reported state.
pub fn gate_entities(topics: &Topics, gate: &str) -> Vec<Entity> {
    let command = topics.sub(&format!("gates/{gate}/command"));
    let state = topics.sub(&format!("gates/{gate}/state"));
    vec![
        Entity {
            component: "sensor",
            object: format!("gate_{gate}_command"),
            name: format!("Gate {gate} last command"),
            state_topic: command.clone(),
            value_template: Some("{{ value_json.command }}".into()),
            extra: json!({ "json_attributes_topic": command, "icon": "mdi:boom-gate" }),
        },
        Entity {
            component: "sensor",
            object: format!("gate_{gate}_state"),
            name: format!("Gate {gate} state"),
            state_topic: state.clone(),
            value_template: Some("{{ value_json.state }}".into()),
            extra: json!({ "json_attributes_topic": state, "icon": "mdi:boom-gate-outline" }),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_configs_name_the_topics_the_gate_uses() {
        let t = Topics::new("lotsense", "demo site");
        let out: Vec<(String, String)> = gate_entities(&t, "main/1")
            .iter()
            .map(|e| config(&t, "homeassistant", "demo site", e))
            .collect();
        assert_eq!(
            out[0].0,
            "homeassistant/sensor/lotsense_demo_site/gate_main_1_command/config"
        );
        let cfg: Value = serde_json::from_str(&out[0].1).unwrap();
        assert_eq!(
            cfg["state_topic"],
            "lotsense/demo site/gates/main/1/command"
        );
        assert_eq!(cfg["value_template"], "{{ value_json.command }}");
        assert_eq!(cfg["availability_topic"], "lotsense/demo site/available");
        assert_eq!(cfg["device"]["identifiers"][0], "lotsense_demo_site");
        let st: Value = serde_json::from_str(&out[1].1).unwrap();
        assert_eq!(st["state_topic"], "lotsense/demo site/gates/main/1/state");
        assert_eq!(st["unique_id"], "lotsense_demo_site_gate_main_1_state");
    }
}
