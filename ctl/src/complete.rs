//! Shell completions: clap_complete's static scripts, extended so that the TARGET arguments of
//! status/start/stop/restart/signal/logs (and the NAME of remove/enable/disable/cat/show)
//! complete the unit names and @tags of the running colony. The scripts ask `colonyctl __complete-targets`, which prints one target a line (and
//! nothing, exit 0, when colony-init does not answer), so a TAB never hangs or prints errors.

use std::collections::BTreeSet;

use clap_complete::Shell;
use units::proto::UnitStatus;

/// The targets to offer: every unit name, then every tag as `@TAG`, each once.
pub fn targets(units: &[UnitStatus]) -> Vec<String> {
    let mut out: Vec<String> = units.iter().map(|u| u.name.clone()).collect();
    let tags: BTreeSet<String> = units
        .iter()
        .flat_map(|u| u.tags.iter())
        .filter(|t| !t.is_empty())
        .map(|t| format!("@{}", t.trim_start_matches('@')))
        .collect();
    out.sort();
    out.dedup();
    out.extend(tags);
    out
}

/// The words `colonyctl fleet` takes first (`colony-fleet ctl`'s commands).
pub const FLEET_COMMANDS: &[&str] = &[
    "status", "hosts", "apply", "remove", "start", "stop", "forget",
];

/// The completion script for `shell`: clap's, with the dynamic target completion added, and
/// the commands of `fleet` (its arguments are handed to colony-fleet, so clap knows none).
pub fn script(shell: Shell, cmd: &mut clap::Command) -> String {
    let mut buf = Vec::new();
    clap_complete::generate(shell, cmd, "colonyctl", &mut buf);
    let generated = hide_helper(&String::from_utf8_lossy(&buf));
    let fleet = FLEET_COMMANDS.join(" ");
    match shell {
        Shell::Bash => format!("{generated}\n{}", BASH.replace("@FLEET@", &fleet)),
        Shell::Zsh => zsh(&generated).replace("@FLEET@", &fleet),
        Shell::Fish => format!("{generated}\n{}", FISH.replace("@FLEET@", &fleet)),
        _ => generated,
    }
}

/// clap_complete offers hidden subcommands too; the helper is for the scripts, not for people.
fn hide_helper(generated: &str) -> String {
    let mut out = String::with_capacity(generated.len());
    for line in generated.lines() {
        // zsh's and fish's lists of subcommands to offer: one line each.
        if line.starts_with("'__complete-targets:") || line.contains("-a \"__complete-targets\"") {
            continue;
        }
        // bash's words to offer.
        if line.trim_start().starts_with("opts=\"") {
            out.push_str(&line.replace(" __complete-targets", ""));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// bash: a wrapper around clap's `_colonyctl` that answers for target positions itself.
const BASH: &str = r#"# Unit names and @tags of the running colony for TARGET arguments (colonyctl __complete-targets).
_colonyctl_targets() {
    local i w sub="" fsub="" pos=0 cur="${COMP_WORDS[COMP_CWORD]}"
    local -a rd=() fl=()
    for ((i = 1; i < COMP_CWORD; i++)); do
        w="${COMP_WORDS[i]}"
        case "$w" in
            --run-dir) rd=(--run-dir "${COMP_WORDS[i + 1]}"); ((i++)) ;;
            --run-dir=*) rd=(--run-dir "${w#--run-dir=}") ;;
            --fleet) fl=(--fleet "${COMP_WORDS[i + 1]}"); ((i++)) ;;
            --fleet=*) fl=(--fleet "${w#--fleet=}") ;;
            --timeout|-n|--lines) ((i++)) ;;
            -*) ;;
            *) if [[ -z "$sub" ]]; then sub="$w"; else [[ $pos == 0 ]] && fsub="$w"; ((pos++)); fi ;;
        esac
    done
    if [[ "$cur" != -* ]]; then
        case "$sub,$pos" in
            fleet,0)
                COMPREPLY=($(compgen -W "@FLEET@" -- "$cur"))
                return 0
                ;;
            fleet,1)
                # Names from etcd through colony-fleet, bounded: a fleet out of reach offers none.
                local names=""
                case "$fsub" in
                    forget) names=$(timeout 3 colonyctl "${fl[@]}" fleet __names hosts 2>/dev/null) ;;
                    start|stop|remove) names=$(timeout 3 colonyctl "${fl[@]}" fleet __names apps 2>/dev/null) ;;
                esac
                if [[ -n "$names" ]]; then
                    local IFS=$'\n'
                    COMPREPLY=($(compgen -W "$names" -- "$cur"))
                    return 0
                fi
                ;;
            status,*|start,*|stop,*|restart,*|logs,*|events,*|signal,[1-9]*|remove,0|enable,0|disable,0|cat,0|show,0)
                local IFS=$'\n'
                COMPREPLY=($(compgen -W "$(colonyctl "${rd[@]}" __complete-targets 2>/dev/null)" -- "$cur"))
                return 0
                ;;
        esac
    fi
    _colonyctl "$@"
}
if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _colonyctl_targets -o nosort -o bashdefault -o default colonyctl
else
    complete -F _colonyctl_targets -o bashdefault -o default colonyctl
fi
"#;

/// fish: one more completion source for the target-taking subcommands.
const FISH: &str = r#"# Unit names and @tags of the running colony for TARGET arguments (colonyctl __complete-targets).
function __fish_colonyctl_targets
    set -l rd
    set -l words (commandline -opc)
    for i in (seq 2 (count $words))
        switch $words[$i]
            case --run-dir
                set -l j (math $i + 1)
                if test $j -le (count $words)
                    set rd --run-dir $words[$j]
                end
            case '--run-dir=*'
                set rd --run-dir (string replace -- '--run-dir=' '' $words[$i])
        end
    end
    colonyctl $rd __complete-targets 2>/dev/null
end
complete -c colonyctl -n "__fish_seen_subcommand_from status start stop restart signal logs events remove enable disable cat show; and not __fish_seen_subcommand_from fleet" -f -a "(__fish_colonyctl_targets)"
# The commands of `colonyctl fleet`, then host or application names from etcd (bounded).
complete -c colonyctl -n "__fish_seen_subcommand_from fleet; and not __fish_seen_subcommand_from @FLEET@" -f -a "@FLEET@"
function __fish_colonyctl_fleet_names
    set -l fl
    set -l words (commandline -opc)
    for i in (seq 2 (count $words))
        switch $words[$i]
            case --fleet
                set -l j (math $i + 1)
                if test $j -le (count $words)
                    set fl --fleet $words[$j]
                end
            case '--fleet=*'
                set fl --fleet (string replace -- '--fleet=' '' $words[$i])
        end
    end
    timeout 3 colonyctl $fl fleet __names $argv[1] 2>/dev/null
end
complete -c colonyctl -n "__fish_seen_subcommand_from fleet; and __fish_seen_subcommand_from forget" -f -a "(__fish_colonyctl_fleet_names hosts)"
complete -c colonyctl -n "__fish_seen_subcommand_from fleet; and __fish_seen_subcommand_from start stop remove" -f -a "(__fish_colonyctl_fleet_names apps)"
"#;

/// zsh: clap's target arguments complete with `_colonyctl_targets` instead of `_default`.
const ZSH_FN: &str = r#"
# Unit names and @tags of the running colony for TARGET arguments (colonyctl __complete-targets).
(( $+functions[_colonyctl_targets] )) ||
_colonyctl_targets() {
    local -a rd ts
    local -a w
    w=(${(z)BUFFER})
    local i
    for (( i = 1; i <= ${#w}; i++ )); do
        case "${w[i]}" in
            --run-dir) rd=(--run-dir "${(Q)w[i+1]}") ;;
            --run-dir=*) rd=(--run-dir "${(Q)${w[i]#--run-dir=}}") ;;
        esac
    done
    ts=(${(f)"$(colonyctl "${rd[@]}" __complete-targets 2>/dev/null)"})
    compadd -a ts
}

# The commands of `colonyctl fleet` (its arguments: words and CURRENT count from the first).
(( $+functions[_colonyctl_fleet] )) ||
_colonyctl_fleet() {
    local -a subs names fl w
    if (( CURRENT == 1 )); then
        subs=(@FLEET@)
        compadd -a subs
        return
    fi
    w=(${(z)BUFFER})
    local i
    for (( i = 1; i <= ${#w}; i++ )); do
        case "${w[i]}" in
            --fleet) fl=(--fleet "${(Q)w[i+1]}") ;;
            --fleet=*) fl=(--fleet "${(Q)${w[i]#--fleet=}}") ;;
        esac
    done
    # Names from etcd through colony-fleet, bounded: a fleet out of reach offers none.
    case "$words[1],$CURRENT" in
        forget,2) names=(${(f)"$(timeout 3 colonyctl "${fl[@]}" fleet __names hosts 2>/dev/null)"}) ;;
        start,2|stop,2|remove,2) names=(${(f)"$(timeout 3 colonyctl "${fl[@]}" fleet __names apps 2>/dev/null)"}) ;;
        *) _default; return ;;
    esac
    compadd -a names
}
"#;

fn zsh(generated: &str) -> String {
    let mut out = String::with_capacity(generated.len() + ZSH_FN.len());
    // The subcommand whose `_arguments` spec is being read (`(NAME)` opens its case).
    let mut sub = "";
    for line in generated.lines() {
        if let Some(name) = line.strip_prefix('(').and_then(|l| l.strip_suffix(')')) {
            sub = name;
        }
        let names_a_unit = matches!(sub, "remove" | "enable" | "disable" | "cat" | "show");
        let is_target = line.starts_with("'*::targets")
            || line.starts_with("'*::units")
            || line.starts_with("':unit:")
            || line.starts_with("':unit -- ")
            || (names_a_unit && line.starts_with("':name:"));
        if is_target && line.contains(":_default'") {
            out.push_str(&line.replacen(":_default'", ":_colonyctl_targets'", 1));
        } else if line.starts_with("'*::args:_default'") {
            // Only `fleet` takes free arguments.
            out.push_str(&line.replacen(":_default'", ":_colonyctl_fleet'", 1));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    // Before the function clap's script defines last, so compdef/autoload still find it.
    match out.rfind("\nif [ \"$funcstack[1]\" = \"_colonyctl\" ]") {
        Some(at) => out.insert_str(at + 1, ZSH_FN),
        None => out.push_str(ZSH_FN),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(name: &str, tags: &[&str]) -> UnitStatus {
        UnitStatus {
            name: name.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn targets_are_names_then_unique_tags() {
        let t = targets(&[
            unit("web", &["front", "@all"]),
            unit("db", &["all"]),
            unit("a", &[]),
        ]);
        assert_eq!(t, ["a", "db", "web", "@all", "@front"]);
    }

    #[test]
    fn every_shell_offers_the_fleet_commands() {
        use clap::CommandFactory as _;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(subcommand)]
            cmd: Sub,
        }
        #[derive(clap::Subcommand)]
        enum Sub {
            Fleet {
                #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
                args: Vec<String>,
            },
        }
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let s = script(shell, &mut Cli::command());
            assert!(!s.contains("@FLEET@"), "{shell}");
            assert!(s.contains(&FLEET_COMMANDS.join(" ")), "{shell}");
            assert!(s.contains("forget"), "{shell}");
        }
        let zsh = script(Shell::Zsh, &mut Cli::command());
        assert!(zsh.contains("'*::args:_colonyctl_fleet'"), "{zsh}");
    }
}
