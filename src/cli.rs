//! Command-line interface. Each subcommand is a thin call into the library;
//! `anyhow` is used here, at the edge, to print errors with their causes.

use crate::config::Config;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "lotsense", version, about = "Car-park system: plate reading at gates, bay occupancy, sessions, tariffs, payments and boards.")]
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
    Demo(DemoArgs),
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
        #[command(flatten)]
        anpr: AnprArgs,
    },
    /// Benchmarks that print figures (`anpr`, `core`, `occupancy`).
    Bench { what: String },
}

/// Plate-engine knobs shared by `read`, `eval anpr` and `bench anpr`.
#[derive(Args, Debug, Clone)]
pub struct AnprArgs {
    /// Config file whose [lpr] section (formats, thresholds) applies.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Built-in plate format presets to use when no config is given (ro, hr, br, us).
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
    /// Models folder.
    #[arg(long, default_value = "models")]
    pub models: PathBuf,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Seconds to run before stopping by itself (0 = until Ctrl-C).
    #[arg(long, default_value_t = 0)]
    pub duration: u64,
    /// HTTP listen address for the demo.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub http: String,
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
    crate::telemetry::init(cli.log_json, "info,rumqttd=warn,sqlx=warn");
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve { config } => {
            let config = Config::load(&config)?;
            runtime()?.block_on(async {
                let running = crate::app::start(config).await?;
                println!("lotsense serving: http://{}  mqtt://{}:{}", running.http_addr, running.mqtt_addr.0, running.mqtt_addr.1);
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
        Command::Bays(BaysCmd::Preview { config, camera, frame, out }) => {
            crate::occupancy::preview::command(&config, &camera, frame.as_deref(), out.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCmd::Check { file }) => match Config::load(&file) {
            Ok(c) => {
                println!("{}: ok ({} cameras, {} gates, {} spaces, {} bays, {} tariffs)", file.display(), c.cameras.len(), c.gates.len(), c.spaces.len(), c.bays.len(), c.tariffs.len());
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(ExitCode::from(2))
            }
        },
        Command::Models(ModelsCmd::Fetch { names, accept_licence, dir, cache }) => {
            for (name, status) in crate::models::fetch(&dir, &names, &accept_licence, &cache)? {
                println!("{name:<22} {}", match status {
                    crate::models::Status::Ok => "present, checksum ok".to_string(),
                    crate::models::Status::Fetched => "fetched, checksum ok".to_string(),
                    other => format!("{other:?}"),
                });
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Models(ModelsCmd::Verify { dir, load }) => {
            let mut bad = false;
            let runtime = if load { Some(crate::onnx::OnnxRuntime::load(None)?) } else { None };
            if let Some(rt) = &runtime {
                println!("{:<22} ok ({})", "onnxruntime (loaded)", rt.library.display());
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
                    crate::models::Status::NeedsLicence => "not fetched (opt-in licence)".to_string(),
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
            Ok(if bad { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
        Command::Read { images, json, anpr } => {
            let engine = anpr_engine(&anpr)?;
            crate::anpr::read_command(&engine, &images, json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval { what, data, json, limit, outcomes, anpr } => match what.as_str() {
            "anpr" => {
                let engine = anpr_engine(&anpr)?;
                crate::anpr::eval::run_command(&engine, &data, json, limit, outcomes.as_deref())?;
                Ok(ExitCode::SUCCESS)
            }
            "occupancy" => {
                let classifier = crate::occupancy::classifier::for_cli(anpr.config.as_deref(), &anpr.models)?;
                crate::occupancy::eval::command(&classifier, &data, json)?;
                Ok(ExitCode::SUCCESS)
            }
            other => anyhow::bail!("unknown evaluation `{other}` (use `anpr` or `occupancy`)"),
        },
        Command::Bench { what } => match what.as_str() {
            "occupancy" => {
                let classifier = crate::occupancy::classifier::for_cli(None, std::path::Path::new("models"))?;
                let r = crate::occupancy::bench::run(&classifier, 30)?;
                println!("{}", crate::occupancy::bench::format(&r, crate::occupancy::Classifier::name(&classifier)));
                Ok(ExitCode::SUCCESS)
            }
            other => anyhow::bail!("unknown benchmark `{other}` (use `anpr`, `core` or `occupancy`)"),
        },
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
    if !a.formats.is_empty() {
        let names: Vec<&str> = a.formats.iter().map(String::as_str).collect();
        let presets = crate::vision::plate_format::FormatConfig::with_presets(&names)?;
        settings.format.regions.extend(presets.regions);
    }
    if let Some(v) = a.det_max_side {
        settings.det_max_side = v;
    }
    if let Some(v) = a.max_reads {
        settings.max_reads = v;
    }
    if let Some(r) = &a.roi {
        settings.roi = Some([r[0], r[1], r[2], r[3]]);
    }
    let rt = crate::onnx::OnnxRuntime::load(None)?;
    Ok(crate::anpr::PlateEngine::load(&rt, &a.models, settings)?)
}
