//! Finding, reading and (for the user's values) writing the files of a profile.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::ProfileError;
use crate::ini::IniDocument;
use crate::model::*;
use crate::parse::{self, Reader};

/// Reads and parses one INI file.
pub fn read_ini(path: &Path) -> Result<IniDocument, ProfileError> {
    let meta = fs::metadata(path).map_err(|e| ProfileError::io(path, e))?;
    if meta.len() > crate::ini::MAX_FILE_BYTES as u64 {
        return Err(ProfileError::Ini {
            file: path.to_path_buf(),
            source: crate::ini::IniError::TooLarge(meta.len() as usize),
        });
    }
    let bytes = fs::read(path).map_err(|e| ProfileError::io(path, e))?;
    IniDocument::parse(&bytes).map_err(|source| ProfileError::Ini {
        file: path.to_path_buf(),
        source,
    })
}

/// Writes a document in its own encoding, atomically (a temporary file renamed over the
/// old one), so a crash never leaves a half-written profile file.
pub fn write_ini(path: &Path, doc: &IniDocument) -> Result<(), ProfileError> {
    let bytes = doc.to_bytes().map_err(|source| ProfileError::Ini {
        file: path.to_path_buf(),
        source,
    })?;
    write_atomic(path, &bytes)
}

/// Writes bytes to `path` through a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ProfileError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| ProfileError::layout(path, "not a file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(ProfileError::io(path, e));
    }
    Ok(())
}

fn has_extension(path: &Path, ext: &str) -> bool {
    path.extension()
        .is_some_and(|e| e.to_string_lossy().eq_ignore_ascii_case(ext))
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A file in `dir` whose name matches `name` ignoring ASCII case (profiles come from
/// Windows, where `Contoso.CMS` and `contoso.cms` are the same file).
fn find_case_insensitive(dir: &Path, name: &str) -> Option<PathBuf> {
    let exact = dir.join(name);
    if exact.is_file() {
        return Some(exact);
    }
    fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.is_file()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().eq_ignore_ascii_case(name))
        })
}

/// Finds the `.cms` for a directory, a `.cms` or a `.cmp` path.
pub fn locate_cms(path: &Path) -> Result<PathBuf, ProfileError> {
    if path.is_dir() {
        let mut found: Vec<PathBuf> = fs::read_dir(path)
            .map_err(|e| ProfileError::io(path, e))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file() && has_extension(p, "cms"))
            .collect();
        found.sort();
        let dir_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        return match found.len() {
            0 => Err(ProfileError::layout(path, "no .cms file in this directory")),
            1 => Ok(found.remove(0)),
            _ => found
                .into_iter()
                .find(|p| stem(p).eq_ignore_ascii_case(&dir_name))
                .ok_or_else(|| {
                    ProfileError::layout(
                        path,
                        format!("several .cms files and none is named {dir_name}.cms"),
                    )
                }),
        };
    }
    if has_extension(path, "cms") {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(ProfileError::layout(path, "no such .cms file"))
        };
    }
    if has_extension(path, "cmp") {
        let doc = read_ini(path)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let r = Reader::new(&doc, path);
        let cms = r.required(
            sections::CONNECTION_MANAGER,
            "CMSFile",
            "a .cmp names its .cms",
        )?;
        let e = doc
            .get(sections::CONNECTION_MANAGER, "CMSFile")
            .expect("present");
        let resolved = parse::resolve_in_dir(dir, &cms).ok_or_else(|| {
            r.invalid(
                sections::CONNECTION_MANAGER,
                &e,
                "must be a relative path inside the profile",
            )
        })?;
        if resolved.is_file() {
            return Ok(resolved);
        }
        // Windows installs keep the .cms in <short>\ beside the .cmp; our layout keeps
        // both in one directory. Accept either.
        let base = cms.rsplit(['\\', '/']).next().unwrap_or(&cms);
        return find_case_insensitive(dir, base)
            .or_else(|| find_case_insensitive(&dir.join(stem(path)), base))
            .ok_or_else(|| r.invalid(sections::CONNECTION_MANAGER, &e, "no such file"));
    }
    Err(ProfileError::layout(
        path,
        "expected a profile directory, a .cms or a .cmp file",
    ))
}

/// Loads a whole profile from its directory, its `.cms` or its `.cmp`, validating every
/// modelled key. The `.cmp` is looked for beside the `.cms` and in the parent directory
/// (the Windows layout); the `.inf` beside the `.cms`.
pub fn load(path: &Path) -> Result<ServiceProfile, ProfileError> {
    let cms_path = locate_cms(path)?;
    let dir = cms_path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let short_name = stem(&cms_path);
    parse::validate_short_name(&short_name).map_err(|reason| {
        ProfileError::layout(&cms_path, format!("bad short service name: {reason}"))
    })?;

    let cms_doc = read_ini(&cms_path)?;
    let r = Reader::new(&cms_doc, &cms_path);
    let connection_manager = parse::connection_manager(&r)?;
    let isp = parse::isp(&r)?;
    let service_types = parse::service_types(&r, &isp)?;
    let mut actions = Vec::new();
    for point in ActionPoint::ALL {
        actions.extend(parse::actions(&r, point)?);
    }

    let mut vpn = VpnSettings {
        protocols: parse::vpn_protocols(&r, connection_manager.tunnel_dun.as_deref())?,
        preshared_key: parse::vpn_preshared_key(&r, connection_manager.tunnel_dun.as_deref())?,
        ..VpnSettings::default()
    };
    let mut tunnel_file = None;
    if let Some(name) = &connection_manager.tunnel_file {
        let e = cms_doc
            .get(sections::CONNECTION_MANAGER, "TunnelFile")
            .expect("present");
        let path = parse::resolve_in_dir(&dir, name)
            .filter(|p| p.is_file())
            .or_else(|| {
                let base = name.rsplit(['\\', '/']).next().unwrap_or(name);
                find_case_insensitive(&dir, base)
            })
            .ok_or_else(|| {
                r.invalid(
                    sections::CONNECTION_MANAGER,
                    &e,
                    "no such file in the profile directory",
                )
            })?;
        let doc = read_ini(&path)?;
        let (servers, update_url) = parse::vpn_server_file(&Reader::new(&doc, &path))?;
        vpn.servers = servers;
        vpn.update_url = update_url;
        tunnel_file = Some(path);
    } else if let Some(address) = &connection_manager.tunnel_address {
        vpn.servers.push(VpnServer {
            name: connection_manager.service_name.clone(),
            address: address.clone(),
        });
    }
    for pb in &isp.phone_books {
        for name in std::iter::once(&pb.pbk).chain(pb.pbr.as_ref()) {
            let present = parse::resolve_in_dir(&dir, name).is_some_and(|p| p.is_file())
                || find_case_insensitive(&dir, name.rsplit(['\\', '/']).next().unwrap_or(name))
                    .is_some();
            if !present {
                let section = match &pb.merged_from {
                    None => sections::ISP.to_owned(),
                    Some(s) => format!("ISP&{s}"),
                };
                let key = if *name == pb.pbk {
                    "PBFile"
                } else {
                    "RegionFile"
                };
                let e = cms_doc.get(&section, key).expect("read from it");
                return Err(r.invalid(&section, &e, format!("{name:?} is not in the profile")));
            }
        }
    }

    let cmp_name = format!("{short_name}.cmp");
    let cmp = find_case_insensitive(&dir, &cmp_name).or_else(|| {
        dir.parent()
            .and_then(|p| find_case_insensitive(p, &cmp_name))
    });
    let user = match &cmp {
        Some(p) => {
            let doc = read_ini(p)?;
            parse::user_settings(&Reader::new(&doc, p))?
        }
        None => UserSettings::default(),
    };

    let inf = find_case_insensitive(&dir, &format!("{short_name}.inf"));
    let install = match &inf {
        Some(p) => {
            let doc = read_ini(p)?;
            let info = parse::install_info(&Reader::new(&doc, p));
            if let Some(s) = &info.short_name {
                if !s.eq_ignore_ascii_case(&short_name) {
                    return Err(ProfileError::layout(
                        p,
                        format!("[Strings] ShortSvcName is {s:?} but the .cms is {short_name}.cms"),
                    ));
                }
            }
            Some(info)
        }
        None => None,
    };

    Ok(ServiceProfile {
        short_name,
        files: ProfileFiles {
            dir,
            cms: cms_path,
            cmp,
            inf,
            tunnel_file,
        },
        connection_manager,
        isp,
        service_types,
        actions,
        vpn,
        user,
        install,
    })
}

/// Saves the user's values into the profile's `.cmp` (created beside the `.cms` if there
/// is none), changing only the keys of [`UserSettings`]; every other line stays.
/// `password` is written only when `remember_password` is set, and removed otherwise.
pub fn save_user_settings(
    profile: &ServiceProfile,
    user: &UserSettings,
) -> Result<PathBuf, ProfileError> {
    let path = profile.files.cmp.clone().unwrap_or_else(|| {
        profile
            .files
            .dir
            .join(format!("{}.cmp", profile.short_name))
    });
    let mut doc = if path.is_file() {
        read_ini(&path)?
    } else {
        let mut d = IniDocument::default();
        let cms = format!("{}.cms", profile.short_name);
        d.set(sections::CONNECTION_MANAGER, "CMSFile", &cms)
            .map_err(|source| ProfileError::Ini {
                file: path.clone(),
                source,
            })?;
        d
    };
    apply_user_settings(&mut doc, user).map_err(|source| ProfileError::Ini {
        file: path.clone(),
        source,
    })?;
    write_ini(&path, &doc)?;
    Ok(path)
}

/// Writes the [`UserSettings`] keys into a `.cmp` document.
pub fn apply_user_settings(
    doc: &mut IniDocument,
    user: &UserSettings,
) -> Result<(), crate::ini::IniError> {
    const CM: &str = sections::CONNECTION_MANAGER;
    let mut opt = |key: &str, value: Option<&str>| -> Result<(), crate::ini::IniError> {
        match value {
            Some(v) => doc.set(CM, key, v.trim()),
            None => {
                doc.remove(CM, key);
                Ok(())
            }
        }
    };
    opt("UserName", user.user_name.as_deref())?;
    opt("Domain", user.domain.as_deref())?;
    opt("InternetUserName", user.internet_user_name.as_deref())?;
    opt("PhoneNumber0", user.phone_number.as_deref())?;
    opt("Device", user.device.as_deref())?;
    let kind = user.connection_kind.map(|k| k.macro_value().to_string());
    opt("ConnectionType", kind.as_deref())?;
    let password = if user.remember_password {
        user.password.as_ref().map(|p| p.0.as_str())
    } else {
        None
    };
    opt("Password", password)?;
    doc.set(
        CM,
        "RememberPassword",
        if user.remember_password { "1" } else { "0" },
    )?;
    doc.set(
        CM,
        "DialAutomatically",
        if user.dial_automatically { "1" } else { "0" },
    )
}
