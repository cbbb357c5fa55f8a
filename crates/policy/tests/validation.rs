//! Configuration errors name the policy (index and name), the key, and the
//! line and column of the value.

mod support;

use policy::PolicyConfigError;
use support::try_set;

fn error(text: &str) -> PolicyConfigError {
    match try_set(text) {
        Err(e) => e,
        Ok(set) => panic!("expected an error for\n{text}\ngot {set:?}"),
    }
}

/// (text, index, name, key, line, column, words in the message)
type Case = (
    &'static str,
    usize,
    &'static str,
    &'static str,
    usize,
    usize,
    &'static str,
);

#[test]
fn errors_name_policy_key_and_line() {
    let cases: [Case; 12] = [
        (
            "[[policy]]\nname = \"A\"\naccess = \"grant\"\nconditions = { users = [\"a\"] }\n\n[[policy]]\nname = \"B\"\naccess = \"grant\"\n[policy.conditions]\nusers = []\n",
            1, "B", "policy[1].conditions.users", 10, 9, "empty list matches no request",
        ),
        (
            "[[policy]]\nname = \"Weekend\"\naccess = \"deny\"\n[policy.constraints]\nidle_timeout_secs = 60\n",
            0, "Weekend", "policy[0].constraints", 4, 1, "deny policy grants nothing",
        ),
        (
            "[[policy]]\nname = \"Fixed\"\naccess = \"grant\"\n[policy.conditions]\ngroups = [\"ops\"]\n[policy.constraints]\nstatic_address = \"10.0.10.50\"\n",
            0, "Fixed", "policy[0].constraints.static_address", 7, 18, "exactly one name",
        ),
        (
            "[[policy]]\nname = \"Fixed\"\naccess = \"grant\"\n[policy.conditions]\nusers = [\"alice\"]\n[policy.constraints]\nstatic_address = \"10.0.10.50\"\nmax_sessions_per_user = 2\n",
            0, "Fixed", "policy[0].constraints.max_sessions_per_user", 8, 25, "one session only",
        ),
        (
            "[[policy]]\nname = \"Fixed\"\naccess = \"grant\"\n[policy.conditions]\nusers = [\"alice\"]\n[policy.constraints]\nstatic_address = \"255.255.255.255\"\n",
            0, "Fixed", "policy[0].constraints.static_address", 7, 18, "cannot be a client's address",
        ),
        (
            "[[policy]]\nname = \"A\"\naccess = \"grant\"\n[policy.conditions]\nusers = [\"alice\"]\n[policy.constraints]\nstatic_address = \"10.0.10.50\"\n\
             [[policy]]\nname = \"B\"\naccess = \"grant\"\n[policy.conditions]\nusers = [\"bob\"]\n[policy.constraints]\nstatic_address = \"10.0.10.50\"\n",
            1, "B", "policy[1].constraints.static_address", 14, 18, "already the static address of another user in policy[0]",
        ),
        (
            "[[policy]]\nname = \"Same\"\naccess = \"grant\"\n[policy.conditions]\nusers = [\"a\"]\n[[policy]]\nname = \"same\"\naccess = \"deny\"\n",
            1, "same", "policy[1].name", 7, 8, "policy[0] has the same name",
        ),
        (
            "[[policy]]\nname = \"   \"\naccess = \"grant\"\n",
            0, "   ", "policy[0].name", 2, 8, "needs a name",
        ),
        (
            "[[policy]]\nname = \"All\"\naccess = \"grant\"\n\n[[policy]]\nname = \"Never\"\naccess = \"deny\"\n[policy.conditions]\ntunnel_types = [\"pptp\"]\n",
            1, "Never", "policy[1]", 5, 1, "can never match: policy[0] \"All\"",
        ),
        (
            "[[policy]]\nname = \"G\"\naccess = \"grant\"\n[policy.conditions]\ngroups = [\"ok\", \"\"]\n",
            0, "G", "policy[0].conditions.groups[1]", 5, 17, "not a valid entry",
        ),
        (
            "[[policy]]\nname = \"M\"\naccess = \"grant\"\n[policy.constraints]\nauth_methods = []\n",
            0, "M", "policy[0].constraints.auth_methods", 5, 16, "refuses every client",
        ),
        (
            "[[policy]]\nname = \"Bell\"\naccess = \"grant\"\n[policy.conditions]\nusers = [\"a\\u0007\"]\n",
            0, "Bell", "policy[0].conditions.users[0]", 5, 10, "no control characters",
        ),
    ];
    for (text, index, name, key, line, column, words) in cases {
        let e = error(text);
        assert_eq!(e.index, index, "{text}\n{e}");
        assert_eq!(e.name, name, "{text}\n{e}");
        assert_eq!(e.key, key, "{text}\n{e}");
        assert_eq!(
            (e.line, e.column),
            (Some(line), Some(column)),
            "{text}\n{e}"
        );
        assert!(e.message.contains(words), "{text}\n{e}");
        assert_eq!(
            e.to_string(),
            format!(
                "{line}:{column}: key `{key}`: policy {name:?}: {}",
                e.message
            )
        );
    }
}

#[test]
fn a_disabled_catch_all_does_not_hide_later_policies() {
    assert!(try_set(
        "[[policy]]\nname = \"All\"\naccess = \"deny\"\nenabled = false\n[[policy]]\nname = \"B\"\naccess = \"grant\"\n"
    )
    .is_ok());
}

#[test]
fn the_same_user_may_have_the_same_static_address_in_two_policies() {
    // Different hours, same address: one user, so no conflict.
    assert!(try_set(
        r#"
[[policy]]
name = "Alice by day"
access = "grant"
[policy.conditions]
users = ["alice"]
day_and_time = ["Mon-Fri 08:00-18:00"]
[policy.constraints]
static_address = "10.0.10.50"

[[policy]]
name = "Alice by night"
access = "grant"
[policy.conditions]
users = ["ALICE"]
[policy.constraints]
static_address = "10.0.10.50"
idle_timeout_secs = 300
"#
    )
    .is_ok());
}

#[test]
fn without_text_errors_have_no_position() {
    let doc: support::Document =
        toml::from_str("[[policy]]\nname = \"\"\naccess = \"grant\"\n").unwrap();
    let e = policy::PolicySet::new(&doc.policies, &doc.policy).unwrap_err();
    assert_eq!((e.line, e.column), (None, None));
    assert_eq!(
        e.to_string(),
        format!("key `policy[0].name`: policy \"\": {}", e.message)
    );
}
