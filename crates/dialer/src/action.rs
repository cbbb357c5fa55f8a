//! Running one custom action: a program or script (its exit status), or a
//! shared library exporting the seed's entry point
//!
//! ```text
//! HRESULT WINAPI function(HWND hWndParent, HINSTANCE hinstDll,
//!                         LPCSTR pszCommandLine, DWORD dwReserved)
//! ```
//!
//! loaded, called once, and unloaded (seed: "The DLL is unloaded after the
//! function call"). A negative return value is a failure ("SUCCEEDED
//! returns False"); a program fails with a non-zero exit status.

use std::ffi::{c_char, c_void, CString};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use profile::model::CustomAction;

use crate::command_line;
use crate::macros::MacroValues;

/// Why an action did not succeed. `Display` is the seed's message form
/// "<Description> failed <ReturnValue>".
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The program or library could not be started or loaded.
    #[error("{description} failed {code}: {message}")]
    Start {
        description: String,
        code: i64,
        message: String,
    },
    /// It ran and reported failure.
    #[error("{description} failed {code}")]
    Failed { description: String, code: i64 },
}

impl ActionError {
    /// The value `%ErrorCode%` takes after this failure.
    pub fn code(&self) -> i64 {
        match self {
            ActionError::Start { code, .. } | ActionError::Failed { code, .. } => *code,
        }
    }
}

/// ERROR_FILE_NOT_FOUND, the Win32 code for a program that is not there.
const ERROR_FILE_NOT_FOUND: i64 = 2;
/// ERROR_PROC_NOT_FOUND: the library lacks the entry point.
const ERROR_PROC_NOT_FOUND: i64 = 127;
/// ERROR_DLL_INIT_FAILED: the library could not be loaded.
const ERROR_DLL_INIT_FAILED: i64 = 1114;

/// What an action is, once its program and parameters are expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared {
    /// Run `program` with `args`.
    Program { program: PathBuf, args: Vec<String> },
    /// Call `entry` in the library at `library` with `command_line`.
    Library {
        library: PathBuf,
        entry: String,
        command_line: String,
    },
}

/// The text shown while an action runs and in its failure message.
pub fn description(action: &CustomAction) -> String {
    if action.description.trim().is_empty() {
        action.program.clone()
    } else {
        action.description.clone()
    }
}

fn is_library(program: &str) -> bool {
    let lower = program.to_ascii_lowercase();
    lower.ends_with(".dll") || lower.ends_with(".so") || lower.contains(".so.")
}

/// Programs are relative to the profile directory unless absolute. A
/// Windows `name.dll` that is not there is looked for as `name.so` and
/// `libname.so` beside it (the same action on this platform).
fn resolve(program: &str, service_dir: &Path) -> PathBuf {
    let path = Path::new(program);
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        service_dir.join(path)
    };
    if path.exists() || !program.to_ascii_lowercase().ends_with(".dll") {
        return path;
    }
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    if let Some(stem) = stem {
        for candidate in [format!("{stem}.so"), format!("lib{stem}.so")] {
            let p = dir.join(candidate);
            if p.exists() {
                return p;
            }
        }
    }
    path
}

/// Expand the action's program and parameters with `macros`.
pub fn prepare(action: &CustomAction, macros: &MacroValues, service_dir: &Path) -> Prepared {
    let program = macros.expand(&action.program);
    let resolved = resolve(&program, service_dir);
    if let Some(entry) = &action.entry_point {
        return Prepared::Library {
            library: resolved,
            entry: entry.clone(),
            command_line: macros.expand(&action.parameters),
        };
    }
    if is_library(&program) {
        // Seed: "the first token of the parameter string is the function
        // entry point to call. This token is removed from the parameters
        // before the string is passed to the DLL".
        let (entry, rest) = command_line::first_token(&action.parameters)
            .map(|(e, r)| (e, r.to_owned()))
            .unwrap_or_default();
        return Prepared::Library {
            library: resolved,
            entry,
            command_line: macros.expand(&rest),
        };
    }
    let args = command_line::split(&action.parameters)
        .iter()
        .map(|t| macros.expand(t))
        .collect();
    Prepared::Program {
        program: resolved,
        args,
    }
}

/// Run a (non-monitored) action to completion.
pub async fn run(
    action: &CustomAction,
    macros: &MacroValues,
    service_dir: &Path,
) -> Result<(), ActionError> {
    let description = description(action);
    match prepare(action, macros, service_dir) {
        Prepared::Program { program, args } => {
            let status = tokio::process::Command::new(&program)
                .args(&args)
                .current_dir(service_dir)
                .stdin(Stdio::null())
                .status()
                .await
                .map_err(|e| ActionError::Start {
                    description: description.clone(),
                    code: e.raw_os_error().map_or(ERROR_FILE_NOT_FOUND, i64::from),
                    message: format!("{}: {e}", program.display()),
                })?;
            match status.code() {
                Some(0) => Ok(()),
                Some(code) => Err(ActionError::Failed {
                    description,
                    code: code.into(),
                }),
                // Killed by a signal: report it as 128 + signal, as a shell does.
                None => {
                    use std::os::unix::process::ExitStatusExt;
                    Err(ActionError::Failed {
                        description,
                        code: 128 + i64::from(status.signal().unwrap_or(0)),
                    })
                }
            }
        }
        Prepared::Library {
            library,
            entry,
            command_line,
        } => {
            // DLLs "only run synchronously": on a blocking thread, so the
            // runtime's other tasks (the link) keep running meanwhile.
            let d = description.clone();
            let result = tokio::task::spawn_blocking(move || {
                call_library(&library, &entry, &command_line, &d)
            })
            .await
            .map_err(|e| ActionError::Start {
                description: description.clone(),
                code: ERROR_DLL_INIT_FAILED,
                message: e.to_string(),
            })??;
            if result < 0 {
                Err(ActionError::Failed {
                    description,
                    code: result.into(),
                })
            } else {
                Ok(())
            }
        }
    }
}

/// The seed's entry point. `WINAPI` is `__stdcall`, which on this
/// platform is the C calling convention.
type EntryPoint = unsafe extern "C" fn(*mut c_void, *mut c_void, *const c_char, u32) -> i32;

fn call_library(
    library: &Path,
    entry: &str,
    command_line: &str,
    description: &str,
) -> Result<i32, ActionError> {
    use libloading::os::unix::Library;
    let start = |code: i64, message: String| ActionError::Start {
        description: description.to_owned(),
        code,
        message,
    };
    if entry.is_empty() {
        return Err(start(
            ERROR_PROC_NOT_FOUND,
            "no entry point (the first parameter names the function)".into(),
        ));
    }
    let c_line = CString::new(command_line)
        .map_err(|_| start(ERROR_DLL_INIT_FAILED, "NUL in the command line".into()))?;
    // SAFETY: loading a library runs its initialisers: that is the
    // administrator's custom action, which the profile asks us to run
    // (the same trust as executing one of its programs).
    let lib = unsafe { Library::new(library) }
        .map_err(|e| start(ERROR_DLL_INIT_FAILED, format!("{}: {e}", library.display())))?;
    // hinstDll is the library's own handle: taken out and put back so the
    // library is still closed when `lib` drops.
    let handle = lib.into_raw();
    // SAFETY: `handle` came from `into_raw` just above and is not used by
    // anything else.
    let lib = unsafe { Library::from_raw(handle) };
    let result = {
        // SAFETY: the profile declares that this export has the seed's
        // four-argument signature; a library that lies is a broken action,
        // as it is for Connection Manager.
        let function = unsafe { lib.get::<EntryPoint>(entry.as_bytes()) }
            .map_err(|e| start(ERROR_PROC_NOT_FOUND, format!("{entry}: {e}")))?;
        // SAFETY: the arguments are what the seed specifies: no parent
        // window (NULL), the library handle, a NUL-terminated string that
        // outlives the call, and 0 for dwReserved.
        unsafe { function(std::ptr::null_mut(), handle, c_line.as_ptr(), 0) }
    };
    // Unloaded here (dlclose).
    drop(lib);
    Ok(result)
}

/// Start a monitored program (`[Auto Applications]`); the connection ends
/// when the last one exits. Libraries cannot be monitored.
pub fn start_monitored(
    action: &CustomAction,
    macros: &MacroValues,
    service_dir: &Path,
) -> Result<tokio::process::Child, ActionError> {
    let description = description(action);
    match prepare(action, macros, service_dir) {
        Prepared::Program { program, args } => tokio::process::Command::new(&program)
            .args(&args)
            .current_dir(service_dir)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| ActionError::Start {
                description,
                code: e.raw_os_error().map_or(ERROR_FILE_NOT_FOUND, i64::from),
                message: format!("{}: {e}", program.display()),
            }),
        Prepared::Library { library, .. } => Err(ActionError::Start {
            description,
            code: ERROR_DLL_INIT_FAILED,
            message: format!(
                "{}: a library cannot be a monitored program",
                library.display()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use profile::model::{ActionPoint, ConnectionTypes};

    fn action(program: &str, entry: Option<&str>, parameters: &str) -> CustomAction {
        CustomAction {
            point: ActionPoint::PostConnect,
            index: 0,
            program: program.into(),
            entry_point: entry.map(str::to_owned),
            parameters: parameters.into(),
            description: "Test action".into(),
            connection_types: ConnectionTypes::ALL,
            interactive: false,
            line: 1,
        }
    }

    #[test]
    fn programs_get_expanded_tokens_and_libraries_their_entry_point() {
        let mut m = MacroValues::default();
        m.set("ServiceName", "Contoso VPN");
        let dir = Path::new("/profiles/contoso");
        assert_eq!(
            prepare(
                &action("check.sh", None, "%ServiceName% \"a b\" %Domain%"),
                &m,
                dir
            ),
            Prepared::Program {
                program: dir.join("check.sh"),
                args: vec!["Contoso VPN".into(), "a b".into(), "NULL".into()],
            }
        );
        assert_eq!(
            prepare(
                &action("routes.dll", None, "SetRoutes /F %ServiceName%"),
                &m,
                dir
            ),
            Prepared::Library {
                library: dir.join("routes.dll"),
                entry: "SetRoutes".into(),
                command_line: "/F Contoso VPN".into(),
            }
        );
        assert_eq!(
            prepare(&action("/lib/x.so", Some("Go"), "%ServiceName%"), &m, dir),
            Prepared::Library {
                library: PathBuf::from("/lib/x.so"),
                entry: "Go".into(),
                command_line: "Contoso VPN".into(),
            }
        );
    }

    #[tokio::test]
    async fn exit_status_is_the_failure_code() {
        let dir = tempfile::tempdir().unwrap();
        let m = MacroValues::default();
        let fail = action("/bin/sh", None, "-c \"exit 7\"");
        let e = run(&fail, &m, dir.path()).await.unwrap_err();
        assert_eq!(e.to_string(), "Test action failed 7");
        assert_eq!(e.code(), 7);
        run(&action("/bin/true", None, ""), &m, dir.path())
            .await
            .unwrap();
        let missing = run(&action("nope.sh", None, ""), &m, dir.path())
            .await
            .unwrap_err();
        assert!(
            matches!(missing, ActionError::Start { code: 2, .. }),
            "{missing}"
        );
        let lib = run(&action("missing.dll", None, "Fn"), &m, dir.path())
            .await
            .unwrap_err();
        assert!(
            lib.to_string().starts_with("Test action failed 1114"),
            "{lib}"
        );
    }
}
