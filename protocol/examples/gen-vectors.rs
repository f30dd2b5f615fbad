//! Writes `spec/vectors/*.json` from the fixed seed.
//!
//! `cargo run -p mayfly-protocol --example gen-vectors [DIR]`

#[path = "../tests/vectors_gen/mod.rs"]
mod vectors_gen;

fn main() -> std::io::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/vectors")
        });
    std::fs::create_dir_all(&dir)?;
    for old in std::fs::read_dir(&dir)? {
        let p = old?.path();
        if p.extension().is_some_and(|e| e == "json") {
            std::fs::remove_file(p)?;
        }
    }
    let cases = vectors_gen::generate();
    for c in &cases {
        std::fs::write(dir.join(format!("{}.json", c.name)), vectors_gen::render(c))?;
    }
    println!("wrote {} vectors to {}", cases.len(), dir.display());
    Ok(())
}
