//! Service profiles for `ras dial` tests, written as .cms/.cmp files, and
//! the recording custom actions: a shell script that appends its
//! arguments to `record.txt` in the profile directory, and a C shared
//! library exporting the seed's four-argument entry point.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const SHORT: &str = "dialtest";

/// Creates `<root>/dialtest/` with `dialtest.cms` (the `[Connection
/// Manager]` body `cm` plus `sections`), `dialtest.cmp` and `rec.sh`.
pub fn write_profile(root: &Path, cm: &str, sections: &str, cmp_extra: &str) -> PathBuf {
    let dir = root.join(SHORT);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(format!("{SHORT}.cms")),
        format!("[Profile Format]\nVersion=4\n\n[Connection Manager]\nServiceName=Dial Test\n{cm}\n{sections}"),
    )
    .unwrap();
    std::fs::write(
        dir.join(format!("{SHORT}.cmp")),
        format!("[Connection Manager]\nCMSFile={SHORT}.cms\nUserName=alice\n{cmp_extra}"),
    )
    .unwrap();
    let script = dir.join("rec.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\n# Appends its arguments, '|'-separated, to record.txt; exits with $RC_<first argument> if set.\nout=\"$(dirname \"$0\")/record.txt\"\nfirst=\"$1\"\nline=\"\"\nfor a in \"$@\"; do line=\"$line$a|\"; done\nprintf '%s\\n' \"$line\" >> \"$out\"\nvar=\"RC_$(echo \"$first\" | tr '-' '_')\"\neval \"rc=\\${$var:-0}\"\nexit \"$rc\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// The lines of record.txt.
pub fn record(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("record.txt"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The first field of each record line (the action point).
pub fn points(dir: &Path) -> Vec<String> {
    record(dir)
        .iter()
        .map(|l| l.split('|').next().unwrap_or("").to_owned())
        .collect()
}

/// Compiles `cmaction.so` into `dir` with gcc: `Record` appends
/// "dll|<command line>|hinst=<non-null>|reserved=<n>" to record.txt beside
/// the library (found through dladdr), `Fail` returns E_FAIL. None when
/// gcc is missing.
pub fn build_action_library(dir: &Path) -> Option<PathBuf> {
    let src = dir.join("cmaction.c");
    std::fs::write(
        &src,
        r#"#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
static void path_beside(char *out, size_t n) {
    Dl_info info;
    dladdr((void *)path_beside, &info);
    snprintf(out, n, "%s", info.dli_fname);
    char *slash = strrchr(out, '/');
    if (slash) slash[1] = 0; else out[0] = 0;
    strncat(out, "record.txt", n - strlen(out) - 1);
}
int Record(void *hwnd, void *hinst, const char *cmdline, unsigned int reserved) {
    char path[4096];
    path_beside(path, sizeof path);
    FILE *f = fopen(path, "a");
    if (!f) return -1;
    fprintf(f, "dll|%s|hwnd=%s|hinst=%s|reserved=%u|\n", cmdline, hwnd ? "set" : "NULL",
            hinst ? "set" : "NULL", reserved);
    fclose(f);
    return 0;
}
int Fail(void *hwnd, void *hinst, const char *cmdline, unsigned int reserved) {
    (void)hwnd; (void)hinst; (void)cmdline; (void)reserved;
    return (int)0x80004005; /* E_FAIL */
}
"#,
    )
    .unwrap();
    let out = dir.join("cmaction.so");
    match Command::new("gcc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
    {
        Ok(s) if s.success() => Some(out),
        _ => None,
    }
}
