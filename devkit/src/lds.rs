//! Listeners from a file: how an Envoy without a control plane reloads its listeners. The
//! bootstrap names a file (`dynamic_resources.lds_config.path_config_source`) and a directory
//! Envoy watches; a new configuration is written beside it and renamed into the directory (a
//! rename is atomic, so Envoy never reads half a file), and Envoy applies it as a listener
//! discovery (LDS) update.
//!
//! The templates in `envoy-config/` keep their listeners static, as users copy them and as
//! `envoy --mode validate` checks them (validation does not read LDS). [`split`] turns such a
//! rendered configuration into the two files the stack's Envoy runs with.

use std::fs;
use std::path::{Path, PathBuf};

use crate::envoy::{yaml_string, EnvoyError};

/// The type of every resource in an LDS file.
const LISTENER_TYPE: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";

/// A static configuration taken apart: the bootstrap that loads listeners from a file, and the
/// listeners themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The bootstrap without `static_resources.listeners`, with `dynamic_resources` reading
    /// [`ListenerFile::path`] (and a `node`, which LDS requires).
    pub bootstrap: String,
    /// The listeners: a YAML sequence, one item per listener, at column 0.
    pub listeners: String,
}

/// Takes a rendered configuration whose listeners are static (a `listeners:` list indented two
/// spaces under `static_resources:`, as in `envoy-config/demo.yaml`) apart: the listeners go to
/// `file`'s LDS document, the rest stays in the bootstrap.
pub fn split(config: &str, file: &ListenerFile) -> Result<Split, EnvoyError> {
    let mut bootstrap = format!(
        "# Generated: the listeners are in {} (LDS), replaced by renaming a new file into place.\n",
        file.path.display()
    );
    let mut listeners = String::new();
    let mut section = "";
    let mut inside = false;
    let mut found = false;
    for line in config.lines() {
        let indent = line.len() - line.trim_start().len();
        let text = line.trim_start();
        if indent == 0 && !text.is_empty() && !text.starts_with('#') {
            section = text;
        }
        if inside {
            // The list ends at the next key of `static_resources` (or at a top-level key).
            let ends = !text.is_empty()
                && (indent < 2
                    || (indent == 2 && !text.starts_with('-') && !text.starts_with('#')));
            if !ends {
                let line = line.strip_prefix("  ").unwrap_or(line);
                match line.strip_prefix("- ") {
                    Some(rest) => {
                        listeners.push_str(&format!("- \"@type\": {LISTENER_TYPE}\n  {rest}\n"))
                    }
                    None => {
                        listeners.push_str(line);
                        listeners.push('\n');
                    }
                }
                continue;
            }
            inside = false;
        }
        if section == "static_resources:" && line == "  listeners:" {
            inside = true;
            found = true;
            continue;
        }
        bootstrap.push_str(line);
        bootstrap.push('\n');
    }
    if !found || listeners.trim().is_empty() {
        return Err(EnvoyError::Config(
            "no `listeners:` list under `static_resources:` to load from a file".into(),
        ));
    }
    if !config.lines().any(|l| l.starts_with("node:")) {
        // LDS identifies the proxy by its node, even when it reads a file.
        bootstrap.push_str("node: { id: gateward, cluster: gateward }\n");
    }
    let path = yaml_string(&file.path.display().to_string());
    let dir = yaml_string(&file.dir().display().to_string());
    bootstrap.push_str(&format!(
        "dynamic_resources:\n  lds_config:\n    resource_api_version: V3\n    path_config_source:\n      path: {path}\n      watched_directory: {{ path: {dir} }}\n"
    ));
    Ok(Split {
        bootstrap,
        listeners,
    })
}

/// The LDS file of one Envoy, in a directory of its own that Envoy watches.
#[derive(Debug, Clone)]
pub struct ListenerFile {
    path: PathBuf,
    version: u64,
}

impl ListenerFile {
    /// `<dir>/lds/listeners.yaml` (nothing is written yet).
    pub fn new(dir: &Path) -> ListenerFile {
        ListenerFile {
            path: dir.join("lds/listeners.yaml"),
            version: 0,
        }
    }

    /// The file Envoy reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory Envoy watches for renames.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// The `version_info` of the last document written (1 for the first).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Writes `listeners` (as in [`Split::listeners`]) as the next version: to a temporary file
    /// outside the watched directory, then renamed over [`ListenerFile::path`], so Envoy sees
    /// one complete document or the previous one.
    pub fn write(&mut self, listeners: &str) -> Result<(), EnvoyError> {
        let dir = self.dir().to_path_buf();
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| EnvoyError::Io { path, source }
        };
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let version = self.version + 1;
        let staging = dir.with_file_name("listeners.yaml.next");
        fs::write(
            &staging,
            format!("version_info: \"{version}\"\nresources:\n{listeners}"),
        )
        .map_err(io(&staging))?;
        fs::rename(&staging, &self.path).map_err(io(&self.path))?;
        self.version = version;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATIC: &str = "\
admin:
  address: { socket_address: { address: 127.0.0.1, port_value: 9901 } }

static_resources:
  listeners:
  # the one listener
  - name: ingress
    address: { socket_address: { address: 127.0.0.1, port_value: 10000 } }
    filter_chains:
    - filters: []

  clusters:
  - name: upstream
    type: STATIC
";

    #[test]
    fn static_listeners_move_to_the_lds_document() {
        let file = ListenerFile::new(Path::new("/tmp/x"));
        let split = split(STATIC, &file).unwrap();
        assert_eq!(
            split.listeners,
            "# the one listener\n- \"@type\": type.googleapis.com/envoy.config.listener.v3.Listener\n  name: ingress\n  address: { socket_address: { address: 127.0.0.1, port_value: 10000 } }\n  filter_chains:\n  - filters: []\n\n"
        );
        assert!(
            !split.bootstrap.contains("listeners:"),
            "{}",
            split.bootstrap
        );
        assert!(split
            .bootstrap
            .contains("static_resources:\n  clusters:\n  - name: upstream\n"));
        assert!(split
            .bootstrap
            .contains("path: \"/tmp/x/lds/listeners.yaml\""));
        assert!(split
            .bootstrap
            .contains("watched_directory: { path: \"/tmp/x/lds\" }"));
        assert!(split.bootstrap.contains("node: {"));
    }

    #[test]
    fn a_configuration_without_static_listeners_is_refused() {
        let file = ListenerFile::new(Path::new("/tmp/x"));
        assert!(split("admin: {}\nstatic_resources:\n  clusters: []\n", &file).is_err());
    }

    #[test]
    fn the_demo_template_splits() {
        let demo =
            fs::read_to_string(crate::envoy::workspace_root().join("envoy-config/demo.yaml"))
                .unwrap();
        let split = split(&demo, &ListenerFile::new(Path::new("/tmp/x"))).unwrap();
        assert!(
            split.listeners.starts_with("- \"@type\""),
            "{}",
            split.listeners
        );
        assert!(split.listeners.contains("  name: ingress\n"));
        assert!(split.listeners.contains("{{GATEWARD_CONFIG}}"));
        assert!(split.bootstrap.contains("  clusters:\n"));
        assert!(split.bootstrap.contains("{{ADMIN_PORT}}"));
        assert!(!split.bootstrap.contains("GATEWARD_CONFIG"));
    }

    #[test]
    fn each_write_is_a_new_version_replacing_the_file() {
        let dir = crate::envoy::workspace_root().join("target/gateward-lds-unit");
        let _ = fs::remove_dir_all(&dir);
        let mut file = ListenerFile::new(&dir);
        file.write("- a: 1\n").unwrap();
        file.write("- a: 2\n").unwrap();
        assert_eq!(file.version(), 2);
        let text = fs::read_to_string(file.path()).unwrap();
        assert_eq!(text, "version_info: \"2\"\nresources:\n- a: 2\n");
        let names: Vec<_> = fs::read_dir(file.dir()).unwrap().flatten().collect();
        assert_eq!(
            names.len(),
            1,
            "only the LDS file is in the watched directory"
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
