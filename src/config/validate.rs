//! Cross-field rules. Each message names the camera, gate, space or bay it is
//! about, because "invalid reference" alone sends an installer hunting.

use super::{CameraRole, Config, ConfigPath, Problem};
use std::collections::{HashMap, HashSet};

pub(super) fn validate(c: &Config, out: &mut Vec<Problem>) {
    let mut err = |path: ConfigPath, message: String| {
        out.push(Problem {
            path,
            line: None,
            message,
        })
    };
    let root = ConfigPath::root();

    // --- site
    let site = root.key("site");
    if !is_slug(&c.site.name) {
        err(site.key("name"), format!("site name `{}` must be 1-64 letters, digits, `-` or `_` (it is used in MQTT topics)", c.site.name));
    }
    if c.site.time_zone.parse::<chrono_tz::Tz>().is_err() {
        err(
            site.key("time_zone"),
            format!(
                "unknown time zone `{}` (use an IANA name such as `Europe/Bucharest`)",
                c.site.time_zone
            ),
        );
    }
    if c.site.currency.len() != 3 || !c.site.currency.chars().all(|ch| ch.is_ascii_uppercase()) {
        err(
            site.key("currency"),
            format!(
                "currency `{}` must be a three-letter ISO 4217 code such as `EUR`",
                c.site.currency
            ),
        );
    }

    // --- storage, mqtt, http
    let url = &c.storage.url;
    if !(url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://"))
    {
        err(
            root.key("storage").key("url"),
            format!("storage url `{url}` must start with `sqlite:` or `postgres://`"),
        );
    }
    if c.storage.max_connections == 0 {
        err(
            root.key("storage").key("max_connections"),
            "must be at least 1".into(),
        );
    }
    if let Some(u) = &c.mqtt.url {
        if super::broker_address(u).is_none() {
            err(
                root.key("mqtt").key("url"),
                format!("broker url `{u}` must look like `mqtt://host:1883`"),
            );
        }
    }
    if c.mqtt.listen.parse::<std::net::SocketAddr>().is_err() {
        err(
            root.key("mqtt").key("listen"),
            format!(
                "`{}` is not an address such as `127.0.0.1:1883`",
                c.mqtt.listen
            ),
        );
    }
    if !is_topic_level(&c.mqtt.topic_prefix) {
        err(
            root.key("mqtt").key("topic_prefix"),
            "must be one MQTT topic level without `/`, `+` or `#`".into(),
        );
    }
    if c.http.listen.parse::<std::net::SocketAddr>().is_err() {
        err(
            root.key("http").key("listen"),
            format!(
                "`{}` is not an address such as `127.0.0.1:8080`",
                c.http.listen
            ),
        );
    }
    match c.models.plate_detector.as_str() {
        "text" => {}
        // Fetchable (opt-in licence) but not wired into the engine yet: say so
        // rather than silently running the text detector.
        "platedet" => err(root.key("models").key("plate_detector"), "`platedet` can be fetched (AGPL-3.0, opt-in) but the plate engine does not use it yet; use `text`".into()),
        other => err(root.key("models").key("plate_detector"), format!("`{other}` is not a plate detector (use `text`)")),
    }

    // --- lpr
    let lpr = root.key("lpr");
    for (name, v) in [
        ("detection_threshold", c.lpr.detection_threshold),
        ("recognition_threshold", c.lpr.recognition_threshold),
        ("region_min_confidence", c.lpr.region_min_confidence),
    ] {
        if !(0.0..=1.0).contains(&v) {
            err(lpr.key(name), format!("{v} is outside 0..1"));
        }
    }
    if let Some(side) = c
        .lpr
        .detector_max_side
        .filter(|&v| !(160..=2048).contains(&v) || v % 32 != 0)
    {
        err(
            lpr.key("detector_max_side"),
            format!("{side} must be a multiple of 32 between 160 and 2048"),
        );
    }
    if !(1..=12).contains(&c.lpr.min_plate_length) {
        err(
            lpr.key("min_plate_length"),
            "must be between 1 and 12".into(),
        );
    }
    for (i, f) in c.lpr.format.iter().enumerate() {
        if let Err(e) = check_plate_pattern(f) {
            err(
                lpr.key("format").index(i),
                format!("plate pattern `{f}`: {e}"),
            );
        }
    }
    for (i, r) in c.lpr.replace_rules.iter().enumerate() {
        if let Err(e) = regex::Regex::new(&r.pattern) {
            err(
                lpr.key("replace_rules").index(i).key("pattern"),
                format!("bad regex `{}`: {e}", r.pattern),
            );
        }
    }

    // --- gates and cameras
    let gate_ids = unique_ids(
        c.gates.iter().map(|g| g.id.as_str()),
        &root.key("gates"),
        "gate",
        &mut err,
    );
    let camera_ids = unique_ids(
        c.cameras.iter().map(|g| g.id.as_str()),
        &root.key("cameras"),
        "camera",
        &mut err,
    );
    for (i, cam) in c.cameras.iter().enumerate() {
        let p = root.key("cameras").index(i);
        let scheme_ok = ["rtsp://", "rtsps://", "file://"]
            .iter()
            .any(|s| cam.url.starts_with(s));
        if !scheme_ok {
            err(
                p.key("url"),
                format!(
                    "camera `{}`: url `{}` must start with rtsp://, rtsps:// or file://",
                    cam.id, cam.url
                ),
            );
        }
        if cam.fps == 0 || cam.fps > 60 {
            err(
                p.key("fps"),
                format!(
                    "camera `{}`: fps {} must be between 1 and 60",
                    cam.id, cam.fps
                ),
            );
        }
        match (cam.role, &cam.gate) {
            (CameraRole::Entry | CameraRole::Exit, None) => {
                err(
                    p.key("role"),
                    format!(
                        "camera `{}` is an {:?} camera but names no `gate`",
                        cam.id, cam.role
                    )
                    .to_lowercase(),
                );
            }
            (CameraRole::Entry | CameraRole::Exit, Some(g)) if !gate_ids.contains(g.as_str()) => {
                err(
                    p.key("gate"),
                    format!(
                        "camera `{}` names gate `{g}`, which is not defined in [[gates]]",
                        cam.id
                    ),
                );
            }
            (CameraRole::Overview, Some(_)) => {
                err(
                    p.key("gate"),
                    format!(
                        "camera `{}` is an overview camera and cannot watch a gate",
                        cam.id
                    ),
                );
            }
            _ => {}
        }
        if let Some(m) = &cam.motion {
            if !(0.0..=1.0).contains(&m.threshold) {
                err(
                    p.key("motion").key("threshold"),
                    format!(
                        "camera `{}`: motion threshold {} is outside 0..1",
                        cam.id, m.threshold
                    ),
                );
            }
            if let Some(z) = &m.zone {
                if let Err(e) = check_polygon(z) {
                    err(
                        p.key("motion").key("zone"),
                        format!("camera `{}`: motion zone {e}", cam.id),
                    );
                }
            }
        }
        if let Some([_, _, w, h]) = cam.roi {
            if w == 0 || h == 0 {
                err(
                    p.key("roi"),
                    format!("camera `{}`: roi width and height must be positive", cam.id),
                );
            }
        }
    }
    for (i, g) in c.gates.iter().enumerate() {
        let watched = c.cameras.iter().any(|cam| {
            cam.gate.as_deref() == Some(g.id.as_str()) && cam.role != CameraRole::Overview
        });
        if !watched {
            err(
                root.key("gates").index(i).key("id"),
                format!("gate `{}` has no entry or exit camera", g.id),
            );
        }
    }

    // --- spaces and bays
    let space_ids = unique_ids(
        c.spaces.iter().map(|s| s.id.as_str()),
        &root.key("spaces"),
        "space",
        &mut err,
    );
    let mut bay_of_space: HashMap<&str, usize> = HashMap::new();
    for (i, bay) in c.bays.iter().enumerate() {
        let p = root.key("bays").index(i);
        let label = format!("bay {i} (space `{}`)", bay.space);
        match c.cameras.iter().find(|cam| cam.id == bay.camera) {
            None => err(
                p.key("camera"),
                format!(
                    "{label} names camera `{}`, which is not defined in [[cameras]]",
                    bay.camera
                ),
            ),
            Some(cam) if cam.role != CameraRole::Overview => err(
                p.key("camera"),
                format!("{label}: camera `{}` is not an overview camera", bay.camera),
            ),
            _ => {}
        }
        if !space_ids.contains(bay.space.as_str()) {
            err(
                p.key("space"),
                format!(
                    "{label} names space `{}`, which is not defined in [[spaces]]",
                    bay.space
                ),
            );
        }
        if let Some(prev) = bay_of_space.insert(bay.space.as_str(), i) {
            err(
                p.key("space"),
                format!(
                    "{label}: space `{}` is already marked by bay {prev}",
                    bay.space
                ),
            );
        }
        if let Err(e) = check_polygon(&bay.polygon) {
            err(p.key("polygon"), format!("{label}: polygon {e}"));
        }
    }
    let _ = camera_ids;

    // --- occupancy
    let occ = root.key("occupancy");
    let o = &c.occupancy;
    if !(o.sample_rate > 0.0 && o.sample_rate <= 30.0) {
        err(
            occ.key("sample_rate"),
            format!(
                "{} samples per second must be above 0 and at most 30",
                o.sample_rate
            ),
        );
    }
    if !((0.0..=1.0).contains(&o.low) && (0.0..=1.0).contains(&o.high) && o.low < o.high) {
        err(
            occ.key("high"),
            format!(
                "thresholds need 0 <= low < high <= 1 (low {}, high {})",
                o.low, o.high
            ),
        );
    }
    if o.required_samples == 0 {
        err(occ.key("required_samples"), "must be at least 1".into());
    }
    if o.sample_rate > 0.0 && (o.sample_timeout_secs as f32) < 2.0 / o.sample_rate {
        err(
            occ.key("sample_timeout_secs"),
            format!(
                "{} s is shorter than two sampling periods at {} samples/s",
                o.sample_timeout_secs, o.sample_rate
            ),
        );
    }
    if o.frozen_secs == 0 {
        err(occ.key("frozen_secs"), "must be at least 1".into());
    }
    if !is_topic_level(&o.discovery_prefix) {
        err(
            occ.key("discovery_prefix"),
            "must be one MQTT topic level without `/`, `+` or `#`".into(),
        );
    }
    for zone in o.sign_offsets.keys() {
        if !c.spaces.iter().any(|s| &s.zone == zone) {
            err(
                occ.key("sign_offsets").key(zone),
                format!("zone `{zone}` has no spaces in [[spaces]]"),
            );
        }
    }
    for (i, imp) in o.imports.iter().enumerate() {
        let p = occ.key("imports").index(i);
        match c.cameras.iter().find(|cam| cam.id == imp.camera) {
            None => err(
                p.key("camera"),
                format!(
                    "bay import {} names camera `{}`, which is not defined in [[cameras]]",
                    imp.file.display(),
                    imp.camera
                ),
            ),
            Some(cam) if cam.role != CameraRole::Overview => err(
                p.key("camera"),
                format!(
                    "bay import {}: camera `{}` is not an overview camera",
                    imp.file.display(),
                    imp.camera
                ),
            ),
            _ => {}
        }
        if !(imp.scale.is_finite() && imp.scale > 0.0) {
            err(
                p.key("scale"),
                format!(
                    "bay import {}: scale must be a positive number",
                    imp.file.display()
                ),
            );
        }
    }

    // --- tariffs
    let _ = unique_ids(
        c.tariffs.iter().map(|t| t.id.as_str()),
        &root.key("tariffs"),
        "tariff",
        &mut err,
    );
    let mut covered = HashSet::new();
    for (i, t) in c.tariffs.iter().enumerate() {
        let p = root.key("tariffs").index(i);
        if t.interval_minutes == 0 {
            err(
                p.key("interval_minutes"),
                format!("tariff `{}`: interval must be at least 1 minute", t.id),
            );
        }
        for (name, v) in [
            ("interval_price", t.interval_price),
            ("lost_ticket_fee", t.lost_ticket_fee),
            ("reservation_price", t.reservation_price),
            ("no_show_fee", t.no_show_fee),
        ] {
            if v < 0 {
                err(
                    p.key(name),
                    format!("tariff `{}`: {name} cannot be negative", t.id),
                );
            }
        }
        if let Some(m) = t.daily_max {
            if m < 0 {
                err(
                    p.key("daily_max"),
                    format!("tariff `{}`: daily_max cannot be negative", t.id),
                );
            }
        }
        for (j, b) in t.bands.iter().enumerate() {
            let bp = p.key("bands").index(j);
            for (k, v) in [("from", &b.from), ("to", &b.to)] {
                if chrono::NaiveTime::parse_from_str(v, "%H:%M").is_err() && v != "24:00" {
                    err(
                        bp.key(k),
                        format!("tariff `{}`: `{v}` is not a time HH:MM", t.id),
                    );
                }
            }
            for (k, d) in b.days.iter().enumerate() {
                if !["mon", "tue", "wed", "thu", "fri", "sat", "sun"].contains(&d.as_str()) {
                    err(
                        bp.key("days").index(k),
                        format!("tariff `{}`: `{d}` is not a day (mon…sun)", t.id),
                    );
                }
            }
            if b.interval_price < 0 {
                err(
                    bp.key("interval_price"),
                    format!("tariff `{}`: price cannot be negative", t.id),
                );
            }
        }
        for st in &t.space_types {
            if !covered.insert(*st) {
                err(
                    p.key("space_types"),
                    format!(
                        "tariff `{}`: space type `{st:?}` already has a tariff",
                        t.id
                    )
                    .to_lowercase(),
                );
            }
        }
    }
    if !c.tariffs.is_empty() {
        for (i, s) in c.spaces.iter().enumerate() {
            if !covered.contains(&s.kind) {
                err(
                    root.key("spaces").index(i).key("type"),
                    format!(
                        "space `{}`: no tariff covers space type `{:?}`",
                        s.id, s.kind
                    )
                    .to_lowercase(),
                );
            }
        }
    }
    super::parking::validate(c, out);
}

fn unique_ids<'a>(
    ids: impl Iterator<Item = &'a str>,
    base: &ConfigPath,
    what: &str,
    err: &mut impl FnMut(ConfigPath, String),
) -> HashSet<&'a str> {
    let mut seen = HashSet::new();
    for (i, id) in ids.enumerate() {
        if id.is_empty() {
            err(
                base.index(i).key("id"),
                format!("{what} {i} has an empty id"),
            );
        } else if !is_topic_level(id) {
            err(
                base.index(i).key("id"),
                format!("{what} id `{id}` must not contain `/`, `+`, `#` or spaces"),
            );
        }
        if !seen.insert(id) {
            err(
                base.index(i).key("id"),
                format!("{what} id `{id}` is defined twice"),
            );
        }
    }
    seen
}

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn is_topic_level(s: &str) -> bool {
    !s.is_empty() && !s.contains(['/', '+', '#', ' '])
}

/// A bay or zone polygon: at least three finite, non-negative points, a
/// non-zero area and no crossing edges (a bowtie would make the warp garbage).
pub fn check_polygon(pts: &[[f32; 2]]) -> Result<(), String> {
    if pts.len() < 3 {
        return Err(format!("has {} point(s); at least 3 are needed", pts.len()));
    }
    if pts
        .iter()
        .any(|p| !p[0].is_finite() || !p[1].is_finite() || p[0] < 0.0 || p[1] < 0.0)
    {
        return Err("has a negative or non-finite coordinate".into());
    }
    let n = pts.len();
    for i in 0..n {
        for j in i + 1..n {
            // Adjacent edges share a point; skip them.
            if j == i + 1 || (i == 0 && j == n - 1) {
                continue;
            }
            if segments_cross(pts[i], pts[(i + 1) % n], pts[j], pts[(j + 1) % n]) {
                return Err(format!("edges {i} and {j} cross each other"));
            }
        }
    }
    let area2: f32 = (0..n)
        .map(|i| {
            let (a, b) = (pts[i], pts[(i + 1) % n]);
            a[0] * b[1] - b[0] * a[1]
        })
        .sum();
    if area2.abs() < 1.0 {
        return Err("has zero area".into());
    }
    Ok(())
}

fn segments_cross(a: [f32; 2], b: [f32; 2], c: [f32; 2], d: [f32; 2]) -> bool {
    let orient = |p: [f32; 2], q: [f32; 2], r: [f32; 2]| {
        (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])
    };
    let (d1, d2) = (orient(a, b, c), orient(a, b, d));
    let (d3, d4) = (orient(c, d, a), orient(c, d, b));
    d1 * d2 < 0.0 && d3 * d4 < 0.0
}

/// Checks a plate pattern of the lotsense pattern language: `@` letter, `#`
/// digit, `?` any, `[...]` a class, other A–Z/0–9 literal.
pub fn check_plate_pattern(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("is empty".into());
    }
    let mut chars = p.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '@' | '#' | '?' => {}
            '[' => {
                let mut closed = false;
                for c2 in chars.by_ref() {
                    if c2 == ']' {
                        closed = true;
                        break;
                    }
                    if !(c2.is_ascii_uppercase() || c2.is_ascii_digit() || c2 == '-') {
                        return Err(format!("`{c2}` is not allowed inside a class"));
                    }
                }
                if !closed {
                    return Err("has an unclosed `[`".into());
                }
            }
            c if c.is_ascii_uppercase() || c.is_ascii_digit() => {}
            c => {
                return Err(format!(
                    "`{c}` is not a pattern character (use @ # ? [..] or A-Z 0-9)"
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polygons() {
        assert!(check_polygon(&[[0.0, 0.0], [10.0, 0.0], [10.0, 5.0], [0.0, 5.0]]).is_ok());
        assert!(
            check_polygon(&[[0.0, 0.0], [10.0, 5.0], [10.0, 0.0], [0.0, 5.0]])
                .unwrap_err()
                .contains("cross")
        );
        assert!(check_polygon(&[[0.0, 0.0], [10.0, 0.0]])
            .unwrap_err()
            .contains("at least 3"));
        assert!(check_polygon(&[[0.0, 0.0], [5.0, 5.0], [10.0, 10.0]])
            .unwrap_err()
            .contains("zero area"));
    }

    #[test]
    fn patterns() {
        assert!(check_plate_pattern("@@##@@@").is_ok());
        assert!(check_plate_pattern("B[0-9]#@@@").is_ok());
        assert!(check_plate_pattern("@@[#").is_err());
        assert!(check_plate_pattern("ab").is_err());
    }
}
