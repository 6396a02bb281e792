// ward example plugin `files`: read, write and list files with std::fs.
//
// A plugin sees only the directories its policy grants (WASI preopens); with
// no policy every path fails. The example policy `files.toml` grants
// `./data` (relative to the policy file) as `/data`, read-write:
//
//   cargo xtask plugins        # -> target/plugins/files.wasm, files.toml, data/README.txt
//   ward serve --plugins target/plugins
//
// then call `files_list {"path": "/data"}` or `files_read {"path": "/data/README.txt"}`.
// Errors (a missing file, a path outside the grant) are tool errors carrying
// the OS error text.
use ward_guest::prelude::*;

#[derive(Deserialize, JsonSchema)]
struct PathArg {
    /// An absolute path inside a granted directory, such as `/data/notes.txt`.
    path: String,
}

#[derive(Deserialize, JsonSchema)]
struct WriteArgs {
    /// An absolute path inside a granted directory, such as `/data/notes.txt`.
    path: String,
    /// The text to write; replaces the file's contents.
    content: String,
}

fn read(a: PathArg) -> Result<String> {
    std::fs::read_to_string(&a.path).map_err(|e| Error::failed(format!("cannot read {}: {e}", a.path)))
}

fn write(a: WriteArgs) -> Result<String> {
    std::fs::write(&a.path, &a.content).map_err(|e| Error::failed(format!("cannot write {}: {e}", a.path)))?;
    Ok(format!("wrote {} bytes to {}", a.content.len(), a.path))
}

fn list(a: PathArg) -> Result<String> {
    let fail = |e: std::io::Error| Error::failed(format!("cannot list {}: {e}", a.path));
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&a.path).map_err(fail)? {
        let entry = entry.map_err(fail)?;
        let mut name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            name.push('/');
        }
        names.push(name);
    }
    names.sort();
    Ok(names.join("\n"))
}

// What the plugin requests (ward.toml beside Cargo.toml), for `ward inspect` and `ward add`.
ward_guest::manifest!();

ward_guest::plugin!(|p| {
    p.tool("read", "Reads a UTF-8 text file", read).read_only(true);
    p.tool("write", "Writes a text file, replacing its contents", write).destructive(true).idempotent(true);
    p.tool("list", "Lists a directory, one name per line (directories end with /)", list).read_only(true);
});
