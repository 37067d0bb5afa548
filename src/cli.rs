//! Command-line interface. Each subcommand is a thin call into the library;
//! `anyhow` is used here, at the edge, to print errors with their causes.

use crate::config::Config;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "lotsense",
    version,
    about = "Car-park system: plate reading at gates, bay occupancy, sessions, tariffs, payments and boards."
)]
pub struct Cli {
    /// Log as one JSON object per line (for log shippers). Filters come from RUST_LOG.
    #[arg(long, global = true)]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the site described by a config file: cameras, core, MQTT and HTTP (the main job).
    Serve {
        /// The TOML configuration (see lotsense.example.toml).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run a demo site from testdata/ on the embedded defaults (SQLite, in-process MQTT
    /// broker, in-process RTSP cameras) and print where to look.
    Demo(crate::demo::DemoArgs),
    /// Configuration tools.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Fetch and verify the ONNX models and the ONNX Runtime library listed in models/manifest.toml.
    #[command(subcommand)]
    Models(ModelsCmd),
    /// Bay layout tools for overview cameras.
    #[command(subcommand)]
    Bays(BaysCmd),
    /// Read plates in still images: each plate with score, box and raw text.
    Read {
        images: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        anpr: AnprArgs,
    },
    /// Evaluate accuracy and speed on a labelled data set: `anpr` (OpenALPR-style
    /// folders or crop sets) or `occupancy`.
    Eval {
        /// `anpr` or `occupancy`.
        what: String,
        /// Folder searched recursively; each sub-folder is a group.
        #[arg(long)]
        data: PathBuf,
        /// One JSON object instead of tables.
        #[arg(long)]
        json: bool,
        /// Evaluate only the first N samples.
        #[arg(long)]
        limit: Option<usize>,
        /// Also write per-sample outcomes to this JSON file.
        #[arg(long)]
        outcomes: Option<PathBuf>,
        /// anpr: simulate a per-camera region of interest covering this fraction of
        /// each side of the frame (e.g. 0.5), placed to contain the labelled plate.
        #[arg(long)]
        roi_sim: Option<f32>,
        /// anpr: use each labelled plate box as the only proposal (regions
        /// path, no fallback): what a perfect proposal network would give.
        #[arg(long)]
        oracle_proposals: bool,
        #[command(flatten)]
        anpr: AnprArgs,
    },
    /// Benchmarks that print figures (`anpr`, `core`, `occupancy`).
    Bench { what: String },
    /// Print the HTTP API's OpenAPI 3 document (also served at /api/openapi.json).
    Openapi,
    /// API keys: create one in a site's database, or hash one for `[[api_keys]]`.
    #[command(subcommand)]
    Keys(KeysCmd),
}

#[derive(Subcommand, Debug)]
pub enum KeysCmd {
    /// Create a key with a role in the database of the site in CONFIG; prints the key once.
    Add {
        #[arg(long, short)]
        config: PathBuf,
        /// A unique name (shown in logs and the audit log); an existing name gets a new key.
        #[arg(long)]
        name: String,
        /// kiosk, sensor, board, operator, security or admin.
        #[arg(long)]
        role: String,
        /// Requests per minute (default by role).
        #[arg(long)]
        rate_per_minute: Option<u32>,
    },
    /// Print the `sha256:` hash of a key, for `hash = "…"` in `[[api_keys]]`.
    Hash { key: String },
}

/// Plate-engine knobs shared by `read`, `eval anpr` and `bench anpr`.
#[derive(Args, Debug, Clone)]
pub struct AnprArgs {
    /// Config file whose [lpr] section (formats, thresholds) applies.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Built-in plate format presets (ro, hr, cz, br, us). `GROUP=PRESET[+PRESET]`
    /// entries apply to one evaluation group only, e.g. `eu=hr,br=br,us=us`.
    #[arg(long, value_delimiter = ',')]
    pub formats: Vec<String>,
    /// Longer side of the text-detector input (multiple of 32).
    #[arg(long)]
    pub det_max_side: Option<usize>,
    /// Read at most this many text boxes per frame.
    #[arg(long)]
    pub max_reads: Option<usize>,
    /// Region of interest x,y,w,h.
    #[arg(long, value_delimiter = ',', num_args = 4)]
    pub roi: Option<Vec<u32>>,
    /// Find plates with the plate proposal network first and run the text
    /// detector only on regions around them (the default; kept for scripts).
    #[arg(long)]
    pub proposals: bool,
    /// Run the text detector on the whole frame (or ROI) only, without the
    /// plate proposal network (the accurate, slow path).
    #[arg(long, conflicts_with = "proposals")]
    pub full_frame: bool,
    /// Read every plate-like box, not the surest one alone first.
    #[arg(long, conflicts_with = "surest_first")]
    pub read_all: bool,
    /// With proposals: do not fall back to the whole frame when the regions
    /// give no plate.
    #[arg(long)]
    pub no_fallback: bool,
    /// With proposals: the text detector sees each plate about this wide (pixels).
    #[arg(long)]
    pub region_plate_width: Option<f32>,
    /// With proposals: add the text detector's plate-like boxes on the whole
    /// frame at this input side to the proposals.
    #[arg(long)]
    pub coarse_side: Option<usize>,
    /// Read the surest plate-like box alone first, the others only when it
    /// is not a sure plate.
    #[arg(long)]
    pub surest_first: bool,
    /// With proposals: a plate read from a region is taken as is only when
    /// its least sure character reaches this confidence (else the whole
    /// frame is searched too).
    #[arg(long)]
    pub region_min_conf: Option<f32>,
    /// With proposals: each region is this many times the proposal's width
    /// and height (`--region-grow W H`).
    #[arg(long, num_args = 2)]
    pub region_grow: Option<Vec<f32>>,
    /// Models folder.
    #[arg(long, default_value = "models")]
    pub models: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum BaysCmd {
    /// Draw a camera's bay polygons, space ids and current states on a frame and write a PNG.
    Preview {
        /// The TOML configuration with the camera and its bays.
        #[arg(long, short)]
        config: PathBuf,
        /// The overview camera.
        #[arg(long)]
        camera: String,
        /// A frame to draw on (JPEG/PNG); without it one frame is taken from the camera.
        #[arg(long)]
        frame: Option<PathBuf>,
        /// Where to write the PNG (default `bays-<camera>.png`).
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ConfigCmd {
    /// Check a config file and print every problem with its line, or `ok`.
    Check { file: PathBuf },
}

#[derive(Subcommand, Debug)]
pub enum ModelsCmd {
    /// Download (with pip) what is missing, verify checksums, refuse a mismatch. Idempotent.
    Fetch {
        /// Optional extra models to fetch besides the defaults (e.g. `platedet`).
        names: Vec<String>,
        /// Accept a licence that a model requires consent for (e.g. `agpl-3.0` for platedet).
        #[arg(long = "accept-licence")]
        accept_licence: Vec<String>,
        /// Folder with manifest.toml.
        #[arg(long, default_value = "models")]
        dir: PathBuf,
        /// Where downloaded wheels are kept.
        #[arg(long, default_value = ".deps/wheels")]
        cache: PathBuf,
    },
    /// Re-check the checksums of every model file on disk.
    Verify {
        #[arg(long, default_value = "models")]
        dir: PathBuf,
        /// Also load the ONNX Runtime library and open every present model with it.
        #[arg(long)]
        load: bool,
    },
}

/// Entry point used by `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::telemetry::init(cli.log_json, "info,rumqttd=off,sqlx=warn");
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve { config } => {
            let config = Config::load(&config)?;
            runtime()?.block_on(async {
                let running = crate::app::start(config).await?;
                println!(
                    "lotsense serving: http://{}  mqtt://{}:{}",
                    running.http_addr, running.mqtt_addr.0, running.mqtt_addr.1
                );
                tokio::signal::ctrl_c().await?;
                running.shutdown().await;
                anyhow::Ok(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(args) => {
            runtime()?.block_on(crate::demo::run(args))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bays(BaysCmd::Preview {
            config,
            camera,
            frame,
            out,
        }) => {
            crate::occupancy::preview::command(&config, &camera, frame.as_deref(), out.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCmd::Check { file }) => match Config::load(&file) {
            Ok(c) => {
                println!(
                    "{}: ok ({} cameras, {} gates, {} spaces, {} bays, {} tariffs)",
                    file.display(),
                    c.cameras.len(),
                    c.gates.len(),
                    c.spaces.len(),
                    c.bays.len(),
                    c.tariffs.len()
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(ExitCode::from(2))
            }
        },
        Command::Models(ModelsCmd::Fetch {
            names,
            accept_licence,
            dir,
            cache,
        }) => {
            for (name, status) in crate::models::fetch(&dir, &names, &accept_licence, &cache)? {
                println!(
                    "{name:<22} {}",
                    match status {
                        crate::models::Status::Ok => "present, checksum ok".to_string(),
                        crate::models::Status::Fetched => "fetched, checksum ok".to_string(),
                        other => format!("{other:?}"),
                    }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Models(ModelsCmd::Verify { dir, load }) => {
            let mut bad = false;
            let runtime = if load {
                Some(crate::onnx::OnnxRuntime::load(None)?)
            } else {
                None
            };
            if let Some(rt) = &runtime {
                println!(
                    "{:<22} ok ({})",
                    "onnxruntime (loaded)",
                    rt.library.display()
                );
            }
            for (name, status) in crate::models::verify(&dir)? {
                let text = match &status {
                    crate::models::Status::Ok => "ok".to_string(),
                    crate::models::Status::Missing => {
                        bad = true;
                        "MISSING (run `lotsense models fetch`)".to_string()
                    }
                    crate::models::Status::Mismatch { actual } => {
                        bad = true;
                        format!("CHECKSUM MISMATCH (got {actual})")
                    }
                    crate::models::Status::NeedsLicence => {
                        "not fetched (opt-in licence)".to_string()
                    }
                    crate::models::Status::Fetched => "fetched".to_string(),
                };
                println!("{name:<22} {text}");
                if let (Some(rt), crate::models::Status::Ok) = (&runtime, &status) {
                    if let Ok(path) = crate::models::model_path(&dir, &name) {
                        let model = rt.session(&path)?;
                        let (i, o) = model.io_names();
                        println!("{:<22} loads: inputs {i:?} outputs {o:?}", "");
                    }
                }
            }
            Ok(if bad {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Read { images, json, anpr } => {
            let engine = anpr_engine(&anpr)?;
            crate::anpr::read_command(&engine, &images, json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval {
            what,
            data,
            json,
            limit,
            outcomes,
            roi_sim,
            oracle_proposals,
            anpr,
        } => match what.as_str() {
            "anpr" => {
                let mut engine = anpr_engine(&anpr)?;
                let mut groups = std::collections::BTreeMap::new();
                for spec in anpr.formats.iter().filter_map(|f| f.split_once('=')) {
                    let names: Vec<&str> = spec.1.split('+').collect();
                    let mut fmt = engine.settings.format.clone();
                    fmt.regions =
                        crate::vision::plate_format::FormatConfig::with_presets(&names)?.regions;
                    groups.insert(spec.0.to_string(), fmt);
                }
                crate::anpr::eval::run_command(
                    &mut engine,
                    &data,
                    json,
                    limit,
                    outcomes.as_deref(),
                    &groups,
                    crate::anpr::eval::EvalOptions {
                        roi_sim,
                        oracle_proposals,
                    },
                )?;
                Ok(ExitCode::SUCCESS)
            }
            "occupancy" => {
                let classifier =
                    crate::occupancy::classifier::for_cli(anpr.config.as_deref(), &anpr.models)?;
                crate::occupancy::eval::command(&classifier, &data, json)?;
                Ok(ExitCode::SUCCESS)
            }
            other => anyhow::bail!("unknown evaluation `{other}` (use `anpr` or `occupancy`)"),
        },
        Command::Bench { what } => match what.as_str() {
            "anpr" => {
                crate::anpr::bench::run(std::path::Path::new("models"), 15)?;
                Ok(ExitCode::SUCCESS)
            }
            "occupancy" => {
                let classifier =
                    crate::occupancy::classifier::for_cli(None, std::path::Path::new("models"))?;
                let r = crate::occupancy::bench::run(&classifier, 30)?;
                println!(
                    "{}",
                    crate::occupancy::bench::format(
                        &r,
                        crate::occupancy::Classifier::name(&classifier)
                    )
                );
                Ok(ExitCode::SUCCESS)
            }
            "core" => {
                runtime()?.block_on(crate::bench_core::run())?;
                Ok(ExitCode::SUCCESS)
            }
            other => {
                anyhow::bail!("unknown benchmark `{other}` (use `anpr`, `core` or `occupancy`)")
            }
        },
        Command::Openapi => {
            println!(
                "{}",
                serde_json::to_string_pretty(&crate::http::api::openapi::document())?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Keys(KeysCmd::Hash { key }) => {
            println!("{}", crate::http::api::auth::hash_key(&key));
            Ok(ExitCode::SUCCESS)
        }
        Command::Keys(KeysCmd::Add {
            config,
            name,
            role,
            rate_per_minute,
        }) => {
            let config = Config::load(&config)?;
            let role = crate::config::ApiRole::parse(&role).ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown role `{role}` (kiosk, sensor, board, operator, security or admin)"
                )
            })?;
            let key = crate::http::api::auth::generate_key();
            runtime()?.block_on(async {
                let store = crate::store::Store::open(&config.storage.url, 1).await?;
                crate::http::api::auth::store_key(
                    &store,
                    &name,
                    role,
                    &crate::http::api::auth::hash_key(&key),
                    rate_per_minute,
                    "cli",
                )
                .await?;
                store.close().await;
                anyhow::Ok(())
            })?;
            println!("{key}");
            eprintln!(
                "key `{name}` ({}) stored; it is shown only now",
                role.as_str()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Builds the plate engine from `read`/`eval`/`bench` arguments.
fn anpr_engine(a: &AnprArgs) -> anyhow::Result<crate::anpr::PlateEngine> {
    let mut settings = match &a.config {
        Some(path) => {
            let c = Config::load(path)?;
            crate::anpr::EngineSettings::from_lpr(&c.lpr)?
        }
        None => crate::anpr::EngineSettings::default(),
    };
    let global: Vec<&str> = a
        .formats
        .iter()
        .map(String::as_str)
        .filter(|f| !f.contains('='))
        .collect();
    if !global.is_empty() {
        let names = global;
        let presets = crate::vision::plate_format::FormatConfig::with_presets(&names)?;
        settings.format.regions.extend(presets.regions);
    }
    if let Some(v) = a.det_max_side {
        settings.det_max_side = Some(v);
    }
    if let Some(v) = a.max_reads {
        settings.max_reads = v;
    }
    if let Some(r) = &a.roi {
        settings.roi = Some([r[0], r[1], r[2], r[3]]);
    }
    if let Some(v) = a.region_plate_width {
        settings.region_plate_width = v;
    }
    if let Some(g) = &a.region_grow {
        (settings.regions.grow_w, settings.regions.grow_h) = (g[0], g[1]);
    }
    if let Some(v) = a.region_min_conf {
        settings.region_min_conf = v;
    }
    if a.coarse_side.is_some() {
        settings.coarse_side = a.coarse_side;
    }
    settings.read_surest_first = (settings.read_surest_first || a.surest_first) && !a.read_all;
    settings.proposals = (settings.proposals || a.proposals) && !a.full_frame;
    settings.fallback_full_frame &= !a.no_fallback;
    let rt = crate::onnx::OnnxRuntime::load(None)?;
    Ok(crate::anpr::PlateEngine::load(&rt, &a.models, settings)?)
}
