//! Typed configuration: one TOML file, every section typed, unknown keys
//! rejected, cross-field rules checked, and every problem reported at once
//! with the line it is on.
//!
//! Loading happens in three passes so that an installer sees *all* problems in
//! one run of `lotsense config check`:
//! 1. TOML syntax (fatal: nothing else can be checked);
//! 2. deserialisation into the typed structs, collecting every unknown key via
//!    `serde_ignored` instead of stopping at the first one;
//! 3. cross-field validation ([`validate`]), naming the camera, gate or bay.

mod locate;
mod parking;
pub mod pklot;
mod validate;

pub use locate::{ConfigPath, Locator, Seg};
pub use parking::{
    parse_window, ApiKeyConfig, ApiRole, EarlyDepartureKind, ListsConfig, PaymentsConfig,
    PermitConfig, PolicyConfig, ReservationsConfig, WindowConfig,
};

pub use crate::core::SpaceType;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Errors of the configuration layer.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", format_problems(.file, .problems))]
    Invalid {
        file: String,
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// The individual problems (empty for I/O errors).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid { problems, .. } => problems,
            ConfigError::Io { .. } => &[],
        }
    }
}

/// One thing wrong with a configuration, located by key path and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: ConfigPath,
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}: {}", self.path, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

fn format_problems(file: &str, problems: &[Problem]) -> String {
    let mut s = format!("{file}: {} problem(s) in the configuration", problems.len());
    for p in problems {
        s.push_str("\n  ");
        s.push_str(&p.to_string());
    }
    s
}

/// The whole configuration file.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Config {
    pub site: SiteConfig,
    pub storage: StorageConfig,
    pub mqtt: MqttConfig,
    pub http: HttpConfig,
    pub onnxruntime: OnnxRuntimeConfig,
    pub models: ModelsConfig,
    pub lpr: LprConfig,
    pub evidence: EvidenceConfig,
    pub cameras: Vec<CameraConfig>,
    pub gates: Vec<GateConfig>,
    pub spaces: Vec<SpaceConfig>,
    pub bays: Vec<BayConfig>,
    pub tariffs: Vec<TariffConfig>,
    /// Bay occupancy from overview cameras and the boards (issue 5).
    pub occupancy: OccupancyConfig,
    /// Parking core (issue 4): site policy, reservations, permits, lists, payments, API keys.
    pub policy: PolicyConfig,
    pub reservations: ReservationsConfig,
    pub permits: Vec<PermitConfig>,
    pub lists: ListsConfig,
    pub payments: PaymentsConfig,
    pub api_keys: Vec<ApiKeyConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SiteConfig {
    /// Short id used in MQTT topics (`lotsense/<name>/…`): letters, digits, `-`, `_`.
    pub name: String,
    /// IANA time zone; tariffs and permit windows are evaluated in it.
    pub time_zone: String,
    /// ISO 4217 code; all money is in its minor units.
    pub currency: String,
}

impl Default for SiteConfig {
    fn default() -> Self {
        Self {
            name: "default".into(),
            time_zone: "UTC".into(),
            currency: "EUR".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct StorageConfig {
    /// `sqlite://FILE` (default, created if missing) or `postgres://…`.
    pub url: String,
    /// Where evidence crops and other files are kept.
    pub data_dir: PathBuf,
    /// Connection pool size.
    pub max_connections: u32,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://var/lotsense.db".into(),
            data_dir: PathBuf::from("var"),
            max_connections: 8,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct MqttConfig {
    /// External broker, `mqtt://host:port`. When absent lotsense runs its own
    /// broker in-process so a single box needs nothing else installed.
    pub url: Option<String>,
    /// Listen address of the in-process broker (ignored when `url` is set).
    pub listen: String,
    /// Client id lotsense uses towards the broker.
    pub client_id: Option<String>,
    /// First topic level (`lotsense`).
    pub topic_prefix: String,
    pub keep_alive_secs: u64,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            url: None,
            listen: "127.0.0.1:1883".into(),
            client_id: None,
            topic_prefix: "lotsense".into(),
            keep_alive_secs: 15,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpConfig {
    pub listen: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct OnnxRuntimeConfig {
    /// Explicit path to `libonnxruntime.so`; otherwise the set-up location is searched.
    pub library: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelsConfig {
    /// Folder holding `manifest.toml` and the fetched model files.
    pub dir: PathBuf,
    /// Plate detector: `text` (PP-OCR text detector, Apache-2.0, default) or
    /// `platedet` (AGPL-3.0, opt-in, must be fetched with the licence accepted).
    pub plate_detector: String,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("models"),
            plate_detector: "text".into(),
        }
    }
}

/// Plate recognition settings; key names follow Frigate's LPR where one exists.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LprConfig {
    /// Minimum detector score for a plate box.
    pub detection_threshold: f32,
    /// Minimum plate box area in pixels.
    pub min_area: u32,
    /// Minimum mean character confidence for a read to count.
    pub recognition_threshold: f32,
    /// Reads with fewer characters are ignored.
    pub min_plate_length: usize,
    /// Plate patterns in the lotsense pattern language (`@` letter, `#` digit,
    /// `?` any, `[..]` class), e.g. `["@@##@@@", "B##@@@"]`.
    pub format: Vec<String>,
    /// Regex rewrites applied to raw text before format matching.
    pub replace_rules: Vec<ReplaceRule>,
    /// Named plates (a name → plates or regexes) shown in events and the UI.
    pub known_plates: BTreeMap<String, Vec<String>>,
    /// Maximum edit distance for matching a read to a known plate.
    pub match_distance: usize,
    /// A read is decided at most this long after the first sighting.
    pub max_decision_delay_ms: u64,
    /// A decided plate is not announced again until it has been gone this long.
    pub reannounce_gap_secs: u64,
    /// Longer side of the text detector's input, a multiple of 32. Unset: the
    /// model's own `max_side` from `models/manifest.toml` (960 for the default
    /// detector, the accurate choice); 640 or 480 with a camera `roi` trade
    /// accuracy for speed (see the README's accuracy-versus-latency table).
    pub detector_max_side: Option<usize>,
    /// On (default): find plates with our plate proposal network first, run
    /// the text detector only on small regions around them, and search the
    /// whole frame (or `roi`) too only when they give no confident plate
    /// (see `region_min_confidence`). Off: always the whole frame (slower,
    /// no more accurate on the OpenALPR frames; README, "Plate reading").
    pub proposals: bool,
    /// With proposals: look at the whole frame too when the regions give no
    /// confident plate.
    pub proposal_fallback: bool,
    /// Read the surest plate-like box alone first and the others only when
    /// it is not a sure plate (default on): each crop costs the reader about
    /// as much as the first (README, "Plate reading").
    pub read_surest_first: bool,
    /// With proposals: a plate read from a proposal's region is taken as is
    /// only when it is sure (letters and digits, a site format matched) and
    /// its least sure character reaches this confidence; otherwise the whole
    /// frame is searched too. Higher is more accurate and slower (README,
    /// "Plate reading").
    pub region_min_confidence: f32,
}

impl Default for LprConfig {
    fn default() -> Self {
        Self {
            detection_threshold: 0.5,
            min_area: 400,
            recognition_threshold: 0.6,
            min_plate_length: 4,
            format: Vec::new(),
            replace_rules: Vec::new(),
            known_plates: BTreeMap::new(),
            match_distance: 1,
            max_decision_delay_ms: 1000,
            reannounce_gap_secs: 60,
            detector_max_side: None,
            proposals: true,
            proposal_fallback: true,
            read_surest_first: true,
            region_min_confidence: DEFAULT_REGION_MIN_CONFIDENCE,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplaceRule {
    pub pattern: String,
    pub replacement: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct EvidenceConfig {
    /// Plates are personal data: crops and frames are deleted after this many days.
    pub retention_days: u32,
}

impl Default for EvidenceConfig {
    fn default() -> Self {
        Self { retention_days: 30 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CameraRole {
    Entry,
    Exit,
    Overview,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CameraConfig {
    pub id: String,
    pub role: CameraRole,
    /// `rtsp://…` (RTSP over TCP) or `file://…` (replay).
    pub url: String,
    /// The gate an entry/exit camera watches.
    #[serde(default)]
    pub gate: Option<String>,
    #[serde(default)]
    pub lane: Option<String>,
    /// Frames per second delivered to the vision stage.
    #[serde(default = "default_fps")]
    pub fps: u32,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// File replay only: loop at the end of the file (demo) instead of stopping.
    #[serde(default = "yes")]
    pub r#loop: bool,
    /// File replay only: pace frames in real time (demo) or as fast as possible (evaluation).
    #[serde(default = "yes")]
    pub realtime: bool,
    /// Region of interest `[x, y, w, h]` in pixels; plates are looked for only there.
    #[serde(default)]
    pub roi: Option<[u32; 4]>,
    #[serde(default)]
    pub motion: Option<MotionConfig>,
    /// Entry/exit cameras: which way a car that drives towards the camera
    /// (its plate grows) is going, `in` or `out`. Default: `in` for an entry
    /// camera, `out` for an exit camera (cameras face the oncoming car).
    #[serde(default)]
    pub approaching: Option<TravelDirection>,
}

/// Into or out of the car park.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TravelDirection {
    In,
    Out,
}

impl TravelDirection {
    pub fn as_str(self) -> &'static str {
        match self {
            TravelDirection::In => "in",
            TravelDirection::Out => "out",
        }
    }

    pub fn reverse(self) -> Self {
        match self {
            TravelDirection::In => TravelDirection::Out,
            TravelDirection::Out => TravelDirection::In,
        }
    }
}

impl CameraConfig {
    /// The direction of a car approaching this camera (see `approaching`).
    pub fn approach_direction(&self) -> TravelDirection {
        self.approaching
            .unwrap_or(if self.role == CameraRole::Exit {
                TravelDirection::Out
            } else {
                TravelDirection::In
            })
    }
}

fn default_fps() -> u32 {
    5
}
fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct MotionConfig {
    pub enabled: bool,
    /// Fraction of changed pixels (0..1) that counts as motion.
    pub threshold: f32,
    /// Optional polygon (image pixels) the check is restricted to.
    pub zone: Option<Vec<[f32; 2]>>,
}

impl Default for MotionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            threshold: 0.002,
            zone: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GateConfig {
    pub id: String,
    /// Seconds to wait for the gate's acknowledgement before retrying.
    #[serde(default = "default_ack_timeout")]
    pub ack_timeout_secs: u64,
}

fn default_ack_timeout() -> u64 {
    3
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpaceConfig {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: SpaceType,
    pub level: String,
    pub zone: String,
    /// Distance rank to the entrance (lower is nearer).
    #[serde(default)]
    pub rank: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BayConfig {
    /// The space this bay marks.
    pub space: String,
    /// The overview camera that sees it.
    pub camera: String,
    /// Polygon in image pixels, at least three points.
    pub polygon: Vec<[f32; 2]>,
}

/// `[occupancy]`: how overview cameras are sampled and judged, and what the
/// boards are shown. The bays themselves are `[[bays]]` (or imported here).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct OccupancyConfig {
    /// The bay classifier (ONNX, `patches` [N,3,32,64] → `p_occupied` [N]).
    pub model: PathBuf,
    /// Samples per second taken from each overview camera (default 1).
    pub sample_rate: f32,
    /// Probability at or above which a sample counts towards "occupied".
    pub high: f64,
    /// Probability at or below which a sample counts towards "free".
    pub low: f64,
    /// Consecutive confident samples needed to change a bay's state.
    pub required_samples: u32,
    /// A bay with no sample for this long becomes `unknown`.
    pub sample_timeout_secs: u32,
    /// A camera whose picture has not changed at all for this long is frozen: its bays become `unknown`.
    pub frozen_secs: u32,
    /// Board topics are published at most this often (changes in between are coalesced).
    pub publish_interval_ms: u64,
    /// Announce the free counters and the gates to Home Assistant (MQTT discovery, retained).
    pub home_assistant: bool,
    /// Home Assistant's discovery prefix.
    pub discovery_prefix: String,
    /// Per zone: show this many fewer free spaces than counted (held back for
    /// e.g. staff or cars already driving in). The farthest free bays (highest rank) are held back.
    pub sign_offsets: BTreeMap<String, u32>,
    /// Bays imported from PKLot-style XML files (`<parking><space id occupied><contour><point x y/>`).
    pub imports: Vec<BayImportConfig>,
}

impl Default for OccupancyConfig {
    fn default() -> Self {
        Self {
            model: PathBuf::from("models/occupancy/bay_classifier.onnx"),
            sample_rate: 1.0,
            high: 0.7,
            low: 0.3,
            required_samples: 3,
            sample_timeout_secs: 60,
            frozen_secs: 30,
            publish_interval_ms: 1000,
            home_assistant: true,
            discovery_prefix: "homeassistant".into(),
            sign_offsets: BTreeMap::new(),
            imports: Vec::new(),
        }
    }
}

/// One PKLot-style XML file of bay polygons for an overview camera.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BayImportConfig {
    /// The overview camera the polygons are drawn for.
    pub camera: String,
    /// The XML file (relative to the config file).
    pub file: PathBuf,
    /// Space id = prefix + the XML `id` (e.g. `P-` + `12` → `P-12`); the space must be in [[spaces]].
    #[serde(default)]
    pub space_prefix: String,
    /// Multiply the XML coordinates by this (when the XML was drawn at another resolution).
    #[serde(default = "one")]
    pub scale: f32,
}

fn one() -> f32 {
    1.0
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TariffConfig {
    pub id: String,
    /// Space types this tariff applies to.
    pub space_types: Vec<SpaceType>,
    #[serde(default)]
    pub grace_minutes: u32,
    pub interval_minutes: u32,
    /// Price per started interval, minor units.
    pub interval_price: i64,
    #[serde(default)]
    pub daily_max: Option<i64>,
    #[serde(default)]
    pub lost_ticket_fee: i64,
    #[serde(default)]
    pub exit_grace_minutes: u32,
    #[serde(default)]
    pub reservation_price: i64,
    #[serde(default)]
    pub no_show_fee: i64,
    #[serde(default)]
    pub bands: Vec<TariffBandConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TariffBandConfig {
    /// Days of week (`mon`…`sun`); empty means every day.
    #[serde(default)]
    pub days: Vec<String>,
    /// Local time `HH:MM`.
    pub from: String,
    pub to: String,
    pub interval_price: i64,
}

impl Config {
    /// Reads and fully validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Parses and validates config text; `file` names it in messages.
    pub fn from_toml(text: &str, file: &str) -> Result<Config, ConfigError> {
        let locator = Locator::new(text);
        let invalid = |problems| ConfigError::Invalid {
            file: file.to_string(),
            problems,
        };
        let table: toml::Table = match toml::from_str(text) {
            Ok(t) => t,
            Err(e) => return Err(invalid(vec![toml_problem(&e, &locator)])),
        };
        let mut problems = Vec::new();
        let mut config = Config::default();
        let mut typed_ok = true;
        // Each section is deserialised on its own, so a type error in one
        // does not hide the problems of the others.
        macro_rules! sections {
            ($($name:ident),*) => {
                for (key, value) in table {
                    match key.as_str() {
                        $(stringify!($name) => {
                            match section(&key, value, &locator, &mut problems) {
                                Some(v) => config.$name = v,
                                None => typed_ok = false,
                            }
                        })*
                        _ => {
                            let path = ConfigPath::root().key(&key);
                            problems.push(Problem { line: locator.line(&path), message: format!("unknown section `{key}`"), path });
                        }
                    }
                }
            };
        }
        sections!(
            site,
            storage,
            mqtt,
            http,
            onnxruntime,
            models,
            lpr,
            evidence,
            cameras,
            gates,
            spaces,
            bays,
            tariffs,
            occupancy,
            policy,
            reservations,
            permits,
            lists,
            payments,
            api_keys
        );
        // Bays imported from PKLot-style XML files join `bays` (checked like the others).
        if typed_ok {
            let base = Path::new(file).parent().unwrap_or(Path::new("."));
            pklot::expand_imports(&mut config, base, &mut problems);
        }
        // Cross-field rules need every section typed; with a type error they
        // would judge defaults, not what was written.
        if typed_ok {
            validate::validate(&config, &mut problems);
        }
        for p in &mut problems {
            if p.line.is_none() {
                p.line = locator.line(&p.path);
            }
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
            Err(invalid(problems))
        }
    }

    /// The site time zone (validated at load).
    pub fn time_zone(&self) -> chrono_tz::Tz {
        self.site.time_zone.parse().unwrap_or(chrono_tz::UTC)
    }

    pub fn camera(&self, id: &str) -> Option<&CameraConfig> {
        self.cameras.iter().find(|c| c.id == id)
    }
}

fn toml_problem(e: &toml::de::Error, locator: &Locator) -> Problem {
    // Syntax errors: nothing else can be checked.
    let line = e.span().map(|s| locator.line_of(s.start));
    Problem {
        path: ConfigPath::root(),
        line,
        message: e.message().to_string(),
    }
}

/// Deserialises one top-level section, collecting unknown keys and the
/// first type error with their paths.
fn section<T: serde::de::DeserializeOwned>(
    key: &str,
    value: toml::Value,
    locator: &Locator,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    let base = ConfigPath::root().key(key);
    let mut unknown = Vec::new();
    let mut collect = |p: serde_ignored::Path<'_>| unknown.push(ignored_path(&p));
    let ignored = serde_ignored::Deserializer::new(value, &mut collect);
    let result: Result<T, _> = serde_path_to_error::deserialize(ignored);
    for rel in unknown {
        let path = ConfigPath(base.0.iter().cloned().chain(rel.0).collect());
        let name = match path.0.last() {
            Some(Seg::Key(k)) => k.clone(),
            _ => path.to_string(),
        };
        problems.push(Problem {
            line: locator.line(&path),
            message: format!("unknown key `{name}`"),
            path,
        });
    }
    match result {
        Ok(v) => Some(v),
        Err(e) => {
            let mut path = base.clone();
            for seg in e.path().iter() {
                path = match seg {
                    serde_path_to_error::Segment::Seq { index } => path.index(*index),
                    serde_path_to_error::Segment::Map { key } => path.key(key),
                    serde_path_to_error::Segment::Enum { variant } => path.key(variant),
                    serde_path_to_error::Segment::Unknown => path,
                };
            }
            problems.push(Problem {
                line: locator.line(&path),
                message: e
                    .into_inner()
                    .to_string()
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_string(),
                path,
            });
            None
        }
    }
}

fn ignored_path(p: &serde_ignored::Path<'_>) -> ConfigPath {
    use serde_ignored::Path as P;
    match p {
        P::Root => ConfigPath::root(),
        P::Seq { parent, index } => ignored_path(parent).index(*index),
        P::Map { parent, key } => ignored_path(parent).key(key),
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            ignored_path(parent)
        }
    }
}

/// Host and port of a broker URL `mqtt://host:port` (or `tcp://`; the port
/// defaults to 1883), or `None` when it is not one.
pub fn broker_address(u: &str) -> Option<(String, u16)> {
    let parsed = url::Url::parse(u).ok()?;
    if !matches!(parsed.scheme(), "mqtt" | "tcp") {
        return None;
    }
    let host = parsed.host_str().filter(|h| !h.is_empty())?;
    Some((host.to_string(), parsed.port().unwrap_or(1883)))
}

/// `[lpr] region_min_confidence` by default: a region read whose least sure
/// character is below this goes to the whole-frame search. Chosen on the
/// even-numbered half of the OpenALPR frames (the best accuracy among
/// thresholds that send at most 40 % of the frames to the whole frame) and
/// checked on the odd half (`docs/anpr.md`): sure region reads at or above
/// it were right 93 % of the time, those below it 47 %.
pub const DEFAULT_REGION_MIN_CONFIDENCE: f32 = 0.5;
