//! `mini-supervise supervise --run-dir DIR`: the task supervisor on its own,
//! for the runtime's tests (the m3s binary has the same `supervise`
//! subcommand, calling the same function).

use std::path::Path;

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    match args.as_slice() {
        [command, flag, run_dir] if command == "supervise" && flag == "--run-dir" => {
            std::process::exit(mini::agent::runtime::supervise(Path::new(run_dir)))
        }
        _ => {
            eprintln!("usage: mini-supervise supervise --run-dir DIR");
            std::process::exit(2)
        }
    }
}
