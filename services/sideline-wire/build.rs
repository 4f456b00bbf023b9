//! Compile `proto/sideline/v1/*.proto` with protox (pure Rust, no system protoc) and prost.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time, not `env!`: a build-script binary reused from a clone at another path
    // (one shared CARGO_TARGET_DIR) must still find this clone's protos.
    let root = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = ["samples", "metrics", "alert", "roster"].map(|f| format!("sideline/v1/{f}.proto"));
    for f in &files {
        println!("cargo:rerun-if-changed={}", root.join(f).display());
    }
    let fds = protox::compile(&files, [&root])?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}
