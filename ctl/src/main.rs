mod check;

fn main() {
    let paths: Vec<std::path::PathBuf> = std::env::args_os().skip(2).map(Into::into).collect();
    std::process::exit(check::run(&paths));
}
