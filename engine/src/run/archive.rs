//! A run directory as one tar archive: how the page hands a run it trained to the command line.

use crate::error::{Error, Result};

/// A run directory as one tar archive (POSIX ustar): `files` under the folder `root`, dated
/// `mtime` (Unix seconds). This is how the browser app hands a trained run over to the
/// native runner: `tar xf` it and pass the folder to `hafrm eval --model`.
pub fn run_archive(root: &str, files: &[(&str, &[u8])], mtime: u64) -> Result<Vec<u8>> {
    const BLOCK: usize = 512;
    let mut out = Vec::new();
    let mut entry = |name: String, body: &[u8], directory: bool| -> Result<()> {
        if name.len() > 99 {
            return Err(Error::Config(format!("archive member name `{name}` is longer than 99 bytes")));
        }
        let mut header = [0u8; BLOCK];
        let mut put = |offset: usize, bytes: &[u8]| header[offset..offset + bytes.len()].copy_from_slice(bytes);
        put(0, name.as_bytes());
        put(100, if directory { b"0000755\0" } else { b"0000644\0" });
        put(108, b"0000000\0");
        put(116, b"0000000\0");
        put(124, format!("{:011o}\0", body.len()).as_bytes());
        put(136, format!("{:011o}\0", mtime).as_bytes());
        put(148, b"        ");
        put(156, if directory { b"5" } else { b"0" });
        put(257, b"ustar\0");
        put(263, b"00");
        put(265, b"hafrm");
        put(297, b"hafrm");
        let checksum: u32 = header.iter().map(|&b| u32::from(b)).sum();
        header[148..156].copy_from_slice(format!("{checksum:06o}\0 ").as_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(body);
        out.resize(out.len().next_multiple_of(BLOCK), 0);
        Ok(())
    };
    entry(format!("{root}/"), &[], true)?;
    // Each folder inside (`backbone/`) gets its entry before its first file.
    let mut folders: Vec<&str> = Vec::new();
    for (name, body) in files {
        if let Some((folder, _)) = name.rsplit_once('/')
            && !folders.contains(&folder)
        {
            folders.push(folder);
            entry(format!("{root}/{folder}/"), &[], true)?;
        }
        entry(format!("{root}/{name}"), body, false)?;
    }
    out.resize(out.len() + 2 * BLOCK, 0);
    Ok(out)
}

#[cfg(all(test, not(target_family = "wasm")))]
mod tests {
    use super::*;

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("hafrm-archive-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn run_archives_unpack_with_tar() {
        let dir = temp("archive");
        std::fs::create_dir_all(&dir).unwrap();
        let big: Vec<u8> = (0..1300u32).map(|i| (i % 251) as u8).collect();
        let archive = run_archive("hafrm-run", &[("config.json", b"{}"), ("model.safetensors", &big), ("backbone/config.json", b"[]")], 1_700_000_000).unwrap();
        assert_eq!(archive.len() % 512, 0);
        std::fs::write(dir.join("run.tar"), &archive).unwrap();
        let status = std::process::Command::new("tar").arg("xf").arg("run.tar").current_dir(&dir).status().unwrap();
        assert!(status.success());
        assert_eq!(std::fs::read(dir.join("hafrm-run").join("config.json")).unwrap(), b"{}");
        assert_eq!(std::fs::read(dir.join("hafrm-run").join("model.safetensors")).unwrap(), big);
        assert_eq!(std::fs::read(dir.join("hafrm-run/backbone/config.json")).unwrap(), b"[]");
        let listing = std::process::Command::new("tar").arg("tf").arg("run.tar").current_dir(&dir).output().unwrap().stdout;
        assert!(String::from_utf8(listing).unwrap().contains("hafrm-run/backbone/\n"), "the folder has its own entry");
        assert!(run_archive(&"x".repeat(100), &[], 0).is_err());
    }
}
