//! Test and bench support, no part of a running lotsense. [`SiteBuilder`] is
//! the one way the integration tests (`tests/it`) and `lotsense bench core`
//! write the site configurations they run against: typed methods over the
//! real [`Config`] sections, rendered as the TOML text a site would write
//! (only what differs from the defaults), and loaded through
//! [`Config::from_toml`] like any config file.

use crate::config::{
    ApiKeyConfig, ApiRole, BayConfig, CameraConfig, CameraRole, Config, ConfigError, GateConfig,
    LprConfig, OccupancyConfig, PermitConfig, PolicyConfig, ReservationsConfig, SpaceConfig,
    SpaceType, TariffConfig, WindowConfig,
};
use crate::core::PermitKind;
use std::path::{Path, PathBuf};

/// A site configuration under construction. [`SiteBuilder::default`] has no
/// `[site]` section (a config fragment); [`SiteBuilder::new`] names the site.
#[derive(Debug, Clone, Default)]
pub struct SiteBuilder {
    config: Config,
}

impl SiteBuilder {
    /// A site called `name` (`[site] name`, used in MQTT topics).
    pub fn new(name: &str) -> Self {
        Self::default().with(|c| c.site.name = name.into())
    }

    /// Changes anything else in the config, typed.
    pub fn with(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(&mut self.config);
        self
    }

    pub fn time_zone(self, tz: &str) -> Self {
        self.with(|c| c.site.time_zone = tz.into())
    }

    pub fn currency(self, currency: &str) -> Self {
        self.with(|c| c.site.currency = currency.into())
    }

    /// `[storage] url` (`sqlite://…` or `postgres://…`).
    pub fn storage_url(self, url: &str) -> Self {
        self.with(|c| c.storage.url = url.into())
    }

    /// `[storage] data_dir` (evidence and other files).
    pub fn data_dir(self, dir: &Path) -> Self {
        self.with(|c| c.storage.data_dir = dir.to_path_buf())
    }

    /// SQLite file `file` in `dir`, which is also the data folder.
    pub fn sqlite_in(self, dir: &Path, file: &str) -> Self {
        self.storage_url(&format!("sqlite://{}/{file}", dir.display()))
            .data_dir(dir)
    }

    /// The in-process broker's `[mqtt] listen` address (port 0: any free port).
    pub fn mqtt_listen(self, addr: &str) -> Self {
        self.with(|c| c.mqtt.listen = addr.into())
    }

    /// An external broker, `[mqtt] url = "mqtt://host:port"`.
    pub fn mqtt_url(self, url: &str) -> Self {
        self.with(|c| c.mqtt.url = Some(url.into()))
    }

    pub fn mqtt_keep_alive_secs(self, secs: u64) -> Self {
        self.with(|c| c.mqtt.keep_alive_secs = secs)
    }

    /// `[http] listen` (port 0: any free port).
    pub fn http_listen(self, addr: &str) -> Self {
        self.with(|c| c.http.listen = addr.into())
    }

    /// `[lpr]`, plate recognition.
    pub fn lpr(self, f: impl FnOnce(&mut LprConfig)) -> Self {
        self.with(|c| f(&mut c.lpr))
    }

    /// `[[gates]]`; see [`gate`].
    pub fn gate(self, gate: GateConfig) -> Self {
        self.with(|c| c.gates.push(gate))
    }

    /// `[[cameras]]`; see [`camera`].
    pub fn camera(self, camera: CameraConfig) -> Self {
        self.with(|c| c.cameras.push(camera))
    }

    /// `[[spaces]]`.
    pub fn space(
        self,
        id: impl Into<String>,
        kind: SpaceType,
        level: impl Into<String>,
        zone: impl Into<String>,
        rank: u32,
    ) -> Self {
        let space = SpaceConfig {
            id: id.into(),
            kind,
            level: level.into(),
            zone: zone.into(),
            rank,
        };
        self.with(|c| c.spaces.push(space))
    }

    /// The `[[spaces]]` and `[[bays]]` of a config fragment file (e.g.
    /// `testdata/occupancy/aerial-lot.toml`), appended to those already here.
    pub fn spaces_and_bays_from(self, file: &Path) -> Self {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Fragment {
            #[serde(default)]
            spaces: Vec<SpaceConfig>,
            #[serde(default)]
            bays: Vec<BayConfig>,
        }
        let text = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        let fragment: Fragment =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        self.with(|c| {
            c.spaces.extend(fragment.spaces);
            c.bays.extend(fragment.bays);
        })
    }

    /// `[[tariffs]]`; see [`tariff`].
    pub fn tariff(self, tariff: TariffConfig) -> Self {
        self.with(|c| c.tariffs.push(tariff))
    }

    /// `[reservations]`.
    pub fn reservations(self, f: impl FnOnce(&mut ReservationsConfig)) -> Self {
        self.with(|c| f(&mut c.reservations))
    }

    /// `[lists] blocked`: never admitted.
    pub fn blocked(self, plates: &[&str]) -> Self {
        self.with(|c| c.lists.blocked.extend(plates.iter().map(|p| p.to_string())))
    }

    /// `[lists] watched`: admitted and flagged.
    pub fn watched(self, plates: &[&str]) -> Self {
        self.with(|c| c.lists.watched.extend(plates.iter().map(|p| p.to_string())))
    }

    /// `[[permits]]`; see [`permit`].
    pub fn permit(self, permit: PermitConfig) -> Self {
        self.with(|c| c.permits.push(permit))
    }

    /// `[[api_keys]]`: `hash` is `lotsense keys hash`'s output
    /// ([`crate::http::api::auth::hash_key`]).
    pub fn api_key(
        self,
        name: &str,
        role: ApiRole,
        hash: &str,
        rate_per_minute: Option<u32>,
    ) -> Self {
        self.with(|c| {
            c.api_keys.push(ApiKeyConfig {
                name: name.into(),
                role,
                hash: hash.into(),
                rate_per_minute,
            })
        })
    }

    /// `[occupancy]`, bay occupancy and the boards.
    pub fn occupancy(self, f: impl FnOnce(&mut OccupancyConfig)) -> Self {
        self.with(|c| f(&mut c.occupancy))
    }

    /// `[policy]`.
    pub fn policy(self, f: impl FnOnce(&mut PolicyConfig)) -> Self {
        self.with(|c| f(&mut c.policy))
    }

    /// The config file's text: every section that differs from the defaults,
    /// and in a plain section only the keys that do.
    pub fn to_toml(&self) -> String {
        let table = |c: &Config| toml::Table::try_from(c).expect("a config serialises to TOML");
        let defaults = table(&Config::default());
        let mut text = table(&self.config);
        text.retain(|key, value| match (value, defaults.get(key)) {
            (toml::Value::Table(section), Some(toml::Value::Table(default))) => {
                section.retain(|k, v| default.get(k) != Some(v));
                !section.is_empty()
            }
            (value, default) => default != Some(value),
        });
        toml::to_string(&text).expect("a TOML table renders")
    }

    /// Loads [`to_toml`](Self::to_toml)'s text as a config file called `file`
    /// is loaded (relative paths in it are relative to `file`'s folder).
    pub fn try_config_as(&self, file: &str) -> Result<Config, ConfigError> {
        Config::from_toml(&self.to_toml(), file)
    }

    /// [`try_config_as`](Self::try_config_as) a file called `site.toml`.
    pub fn try_config(&self) -> Result<Config, ConfigError> {
        self.try_config_as("site.toml")
    }

    /// The valid config; panics with the text and its problems otherwise.
    pub fn config(&self) -> Config {
        self.try_config()
            .unwrap_or_else(|e| panic!("invalid site config:\n{}\n{e}", self.to_toml()))
    }

    /// Writes the config file to `path` (checked first) and returns the path.
    pub fn write(&self, path: &Path) -> PathBuf {
        self.config();
        std::fs::write(path, self.to_toml())
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path.to_path_buf()
    }
}

/// A value of a config section as the file gives it: `keys`, and the
/// file's defaults for the rest.
fn from_keys<T: serde::de::DeserializeOwned>(keys: toml::Table) -> T {
    toml::Value::Table(keys)
        .try_into()
        .unwrap_or_else(|e| panic!("config section: {e}"))
}

fn keys<const N: usize>(pairs: [(&str, toml::Value); N]) -> toml::Table {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// A gate with the file's defaults; change them with struct update syntax:
/// `GateConfig { ack_timeout_secs: 1, ..gate("main") }`.
pub fn gate(id: &str) -> GateConfig {
    from_keys(keys([("id", id.into())]))
}

/// A camera with the file's defaults (5 fps, enabled, no gate); change them
/// with struct update syntax: `CameraConfig { fps: 10, ..camera(…) }`.
pub fn camera(id: &str, role: CameraRole, url: &str) -> CameraConfig {
    CameraConfig {
        role,
        ..from_keys(keys([
            ("id", id.into()),
            ("role", "entry".into()),
            ("url", url.into()),
        ]))
    }
}

/// An entry or exit camera watching `gate`.
pub fn gate_camera(id: &str, role: CameraRole, url: &str, gate: &str) -> CameraConfig {
    CameraConfig {
        gate: Some(gate.into()),
        ..camera(id, role, url)
    }
}

/// A tariff of `interval_price` (minor units) per started interval, with the
/// file's defaults for the rest (no grace, no daily maximum, no fees); change
/// them with struct update syntax.
pub fn tariff(
    id: &str,
    space_types: &[SpaceType],
    interval_minutes: u32,
    interval_price: i64,
) -> TariffConfig {
    TariffConfig {
        space_types: space_types.to_vec(),
        ..from_keys(keys([
            ("id", id.into()),
            ("space_types", toml::Value::Array(Vec::new())),
            ("interval_minutes", i64::from(interval_minutes).into()),
            ("interval_price", interval_price.into()),
        ]))
    }
}

/// A permit from `valid_from` (`YYYY-MM-DD`) with the file's defaults (all
/// day, open-ended); add `windows` ([`window`]) and the rest with struct
/// update syntax.
pub fn permit(id: &str, plate: &str, kind: PermitKind, valid_from: &str) -> PermitConfig {
    PermitConfig {
        kind,
        ..from_keys(keys([
            ("id", id.into()),
            ("plate", plate.into()),
            ("kind", "staff".into()),
            ("valid_from", valid_from.into()),
        ]))
    }
}

/// A weekly permit window: `days` (`mon`…`sun`, empty: every day), local `HH:MM`.
pub fn window(days: &[&str], from: &str, to: &str) -> WindowConfig {
    WindowConfig {
        days: days.iter().map(|d| d.to_string()).collect(),
        from: from.into(),
        to: to.into(),
    }
}
