//! The `lotsense` binary: parse arguments, hand over to the library.

fn main() -> std::process::ExitCode {
    lotsense::cli::main()
}
