//! Writes the fuzz targets' seed corpora, `fuzz/corpus/<target>/`, from
//! `spec/vectors/`, `samples/` and fixed seeds.
//!
//! `cargo run -p mayfly-protocol --example gen-corpus [DIR]`

#[path = "../tests/corpus_gen/mod.rs"]
mod corpus_gen;

fn main() -> std::io::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| corpus_gen::root().join("fuzz/corpus"));
    let corpus = corpus_gen::generate();
    let mut files = 0;
    for (target, seeds) in &corpus {
        let d = dir.join(target);
        std::fs::create_dir_all(&d)?;
        // Seeds that the generator no longer makes go.
        for old in std::fs::read_dir(&d)? {
            let old = old?;
            if !seeds.contains_key(&*old.file_name().to_string_lossy()) {
                std::fs::remove_file(old.path())?;
            }
        }
        for (name, bytes) in seeds {
            std::fs::write(d.join(name), bytes)?;
            files += 1;
        }
    }
    println!(
        "wrote {files} seeds for {} targets to {}",
        corpus.len(),
        dir.display()
    );
    Ok(())
}
