# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_colonyctl_global_optspecs
    string join \n run-dir= json timeout= fleet= h/help V/version
end

function __fish_colonyctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_colonyctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_colonyctl_using_subcommand
    set -l cmd (__fish_colonyctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c colonyctl -n "__fish_colonyctl_needs_command" -l run-dir -d 'colony-init\'s runtime directory [env COLONY_RUN_DIR; root: /run/colony; else $XDG_RUNTIME_DIR/colony]' -r -F
complete -c colonyctl -n "__fish_colonyctl_needs_command" -l timeout -d 'How long to wait for colony-init\'s answer (e.g. 10s, 2m) [30s; start/stop/restart: 2m]' -r
complete -c colonyctl -n "__fish_colonyctl_needs_command" -l fleet -d 'fleet.toml for `fleet` (etcd endpoints, credentials) [root: /etc/colony/fleet.toml; else $XDG_CONFIG_HOME/colony/fleet.toml]' -r -F
complete -c colonyctl -n "__fish_colonyctl_needs_command" -l json -d 'Print machine-readable JSON'
complete -c colonyctl -n "__fish_colonyctl_needs_command" -s h -l help -d 'Print help'
complete -c colonyctl -n "__fish_colonyctl_needs_command" -s V -l version -d 'Print version'
complete -c colonyctl -n "__fish_colonyctl_needs_command" -f -a "status" -d 'Show units (all when none is named)'
complete -c colonyctl -n "__fish_colonyctl_needs_command" -f -a "start" -d 'Start units and wait until they are up'
complete -c colonyctl -n "__fish_colonyctl_needs_command" -f -a "stop" -d 'Stop units and wait until they are stopped'
complete -c colonyctl -n "__fish_colonyctl_needs_command" -f -a "restart" -d 'Restart units and wait until they are up again'
complete -c colonyctl -n "__fish_colonyctl_needs_command" -f -a "restart-all" -d 'Restart every unit'
complete -c colonyctl -n "__fish_colonyctl_needs_command" -f -a "reload" -d 'Re-read the units directory now; with units named, run their exec_reload and wait until they are ready again'
complete -c colonyctl -n "__fish_colonyctl_needs_command" -f -a "signal" -d 'Send a signal to units\' main processes'
complete -c colonyctl -n "__fish_colonyctl_needs_command" -f -a "logs" -d 'Show units\' logs (all when none is named; `colony-init`: its own log)'
complete -c colonyctl -n "__fish_colonyctl_needs_command" -f -a "timers" -d 'Timer units: schedule, next run, last run, last result'
complete -c colonyctl -n "__fish_colonyctl_needs_command" -f -a "events" -d 'Print state changes as they happen (with --json: one JSON object a line), until Ctrl-C'
complete -c colonyctl -n "__fish_colonyctl_needs_command" -f -a "add" -d 'Write NAME.unit into the units directory (atomically); return once colony-init has it'
complete -c colonyctl -n "__fish_colonyctl_needs_command" -f -a "remove" -d 'Stop the unit, delete NAME.unit; return once colony-init has dropped it'
complete -c colonyctl -n "__fish_colonyctl_needs_command" -f -a "enable" -d 'Set `enabled = true` in NAME.unit (started with colony-init; --now: start it too)'
complete -c colonyctl -n "__fish_colonyctl_needs_command" -f -a "disable" -d 'Set `enabled = false` in NAME.unit (not started with colony-init; --now: stop it too)'
complete -c colonyctl -n "__fish_colonyctl_needs_command" -f -a "cat" -d 'Print NAME.unit as written'
complete -c colonyctl -n "__fish_colonyctl_needs_command" -f -a "show" -d 'Print the unit as colony-init reads it: every key, defaults filled in'
complete -c colonyctl -n "__fish_colonyctl_needs_command" -f -a "check" -d 'Validate unit files without colony-init'
complete -c colonyctl -n "__fish_colonyctl_needs_command" -f -a "import" -d 'Translate other supervisors\' configs (systemd, supervisord, NColony) into units'
complete -c colonyctl -n "__fish_colonyctl_needs_command" -f -a "fleet" -d 'Many hosts: fleet status|hosts|apply APP.toml|remove APP|start APP|stop APP|forget HOST [--endpoints URL,...] (runs colony-fleet ctl)'
complete -c colonyctl -n "__fish_colonyctl_needs_command" -f -a "completions" -d 'Print a shell completion script (unit names and @tags complete from the running colony)'
complete -c colonyctl -n "__fish_colonyctl_needs_command" -f -a "reexec" -d 'Upgrade colony-init in place: hand every unit to a new image of it, keeping its PID'
complete -c colonyctl -n "__fish_colonyctl_needs_command" -f -a "version" -d 'colonyctl\'s version and the running colony-init\'s: since when, last re-executed when'
complete -c colonyctl -n "__fish_colonyctl_needs_command" -f -a "poweroff" -d 'Power the machine off (colony-init as PID 1 of a machine only)'
complete -c colonyctl -n "__fish_colonyctl_needs_command" -f -a "reboot" -d 'Reboot the machine (colony-init as PID 1 of a machine only)'
complete -c colonyctl -n "__fish_colonyctl_needs_command" -f -a "halt" -d 'Halt the machine (colony-init as PID 1 of a machine only)'
complete -c colonyctl -n "__fish_colonyctl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand status" -l state -d 'Only units in this state (e.g. failed, running; comma-separated for several)' -r
complete -c colonyctl -n "__fish_colonyctl_using_subcommand status" -l run-dir -d 'colony-init\'s runtime directory [env COLONY_RUN_DIR; root: /run/colony; else $XDG_RUNTIME_DIR/colony]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand status" -l timeout -d 'How long to wait for colony-init\'s answer (e.g. 10s, 2m) [30s; start/stop/restart: 2m]' -r
complete -c colonyctl -n "__fish_colonyctl_using_subcommand status" -l fleet -d 'fleet.toml for `fleet` (etcd endpoints, credentials) [root: /etc/colony/fleet.toml; else $XDG_CONFIG_HOME/colony/fleet.toml]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand status" -s l -l full -d 'Whole lines: do not cut columns to the terminal\'s width'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand status" -l json -d 'Print machine-readable JSON'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand status" -s h -l help -d 'Print help'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand start" -l run-dir -d 'colony-init\'s runtime directory [env COLONY_RUN_DIR; root: /run/colony; else $XDG_RUNTIME_DIR/colony]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand start" -l timeout -d 'How long to wait for colony-init\'s answer (e.g. 10s, 2m) [30s; start/stop/restart: 2m]' -r
complete -c colonyctl -n "__fish_colonyctl_using_subcommand start" -l fleet -d 'fleet.toml for `fleet` (etcd endpoints, credentials) [root: /etc/colony/fleet.toml; else $XDG_CONFIG_HOME/colony/fleet.toml]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand start" -l no-block -d 'Return once colony-init has the order, without waiting for the result'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand start" -l json -d 'Print machine-readable JSON'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand start" -s h -l help -d 'Print help'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand stop" -l run-dir -d 'colony-init\'s runtime directory [env COLONY_RUN_DIR; root: /run/colony; else $XDG_RUNTIME_DIR/colony]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand stop" -l timeout -d 'How long to wait for colony-init\'s answer (e.g. 10s, 2m) [30s; start/stop/restart: 2m]' -r
complete -c colonyctl -n "__fish_colonyctl_using_subcommand stop" -l fleet -d 'fleet.toml for `fleet` (etcd endpoints, credentials) [root: /etc/colony/fleet.toml; else $XDG_CONFIG_HOME/colony/fleet.toml]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand stop" -l no-block -d 'Return once colony-init has the order, without waiting for the result'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand stop" -l json -d 'Print machine-readable JSON'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand stop" -s h -l help -d 'Print help'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand restart" -l run-dir -d 'colony-init\'s runtime directory [env COLONY_RUN_DIR; root: /run/colony; else $XDG_RUNTIME_DIR/colony]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand restart" -l timeout -d 'How long to wait for colony-init\'s answer (e.g. 10s, 2m) [30s; start/stop/restart: 2m]' -r
complete -c colonyctl -n "__fish_colonyctl_using_subcommand restart" -l fleet -d 'fleet.toml for `fleet` (etcd endpoints, credentials) [root: /etc/colony/fleet.toml; else $XDG_CONFIG_HOME/colony/fleet.toml]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand restart" -l no-block -d 'Return once colony-init has the order, without waiting for the result'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand restart" -l json -d 'Print machine-readable JSON'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand restart" -s h -l help -d 'Print help'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand restart-all" -l run-dir -d 'colony-init\'s runtime directory [env COLONY_RUN_DIR; root: /run/colony; else $XDG_RUNTIME_DIR/colony]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand restart-all" -l timeout -d 'How long to wait for colony-init\'s answer (e.g. 10s, 2m) [30s; start/stop/restart: 2m]' -r
complete -c colonyctl -n "__fish_colonyctl_using_subcommand restart-all" -l fleet -d 'fleet.toml for `fleet` (etcd endpoints, credentials) [root: /etc/colony/fleet.toml; else $XDG_CONFIG_HOME/colony/fleet.toml]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand restart-all" -l json -d 'Print machine-readable JSON'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand restart-all" -s h -l help -d 'Print help'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand reload" -l run-dir -d 'colony-init\'s runtime directory [env COLONY_RUN_DIR; root: /run/colony; else $XDG_RUNTIME_DIR/colony]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand reload" -l timeout -d 'How long to wait for colony-init\'s answer (e.g. 10s, 2m) [30s; start/stop/restart: 2m]' -r
complete -c colonyctl -n "__fish_colonyctl_using_subcommand reload" -l fleet -d 'fleet.toml for `fleet` (etcd endpoints, credentials) [root: /etc/colony/fleet.toml; else $XDG_CONFIG_HOME/colony/fleet.toml]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand reload" -l no-block -d 'Return once colony-init has the order, without waiting for the result'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand reload" -l json -d 'Print machine-readable JSON'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand reload" -s h -l help -d 'Print help'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand signal" -l run-dir -d 'colony-init\'s runtime directory [env COLONY_RUN_DIR; root: /run/colony; else $XDG_RUNTIME_DIR/colony]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand signal" -l timeout -d 'How long to wait for colony-init\'s answer (e.g. 10s, 2m) [30s; start/stop/restart: 2m]' -r
complete -c colonyctl -n "__fish_colonyctl_using_subcommand signal" -l fleet -d 'fleet.toml for `fleet` (etcd endpoints, credentials) [root: /etc/colony/fleet.toml; else $XDG_CONFIG_HOME/colony/fleet.toml]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand signal" -l json -d 'Print machine-readable JSON'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand signal" -s h -l help -d 'Print help'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand logs" -s n -l lines -d 'Lines from the end [10; with --since: every line since]' -r
complete -c colonyctl -n "__fish_colonyctl_using_subcommand logs" -l since -d 'Only lines written in the last DUR (e.g. 10m, 2h)' -r
complete -c colonyctl -n "__fish_colonyctl_using_subcommand logs" -l grep -d 'Only lines matching this regular expression' -r
complete -c colonyctl -n "__fish_colonyctl_using_subcommand logs" -l log-dir -d 'The log directory [default: the one colony-init recorded in RUN/log-dir]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand logs" -l run-dir -d 'colony-init\'s runtime directory [env COLONY_RUN_DIR; root: /run/colony; else $XDG_RUNTIME_DIR/colony]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand logs" -l timeout -d 'How long to wait for colony-init\'s answer (e.g. 10s, 2m) [30s; start/stop/restart: 2m]' -r
complete -c colonyctl -n "__fish_colonyctl_using_subcommand logs" -l fleet -d 'fleet.toml for `fleet` (etcd endpoints, credentials) [root: /etc/colony/fleet.toml; else $XDG_CONFIG_HOME/colony/fleet.toml]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand logs" -s f -l follow -d 'Keep printing what is written (across rotations) until Ctrl-C'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand logs" -l json -d 'Print machine-readable JSON'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand logs" -s h -l help -d 'Print help'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand timers" -l run-dir -d 'colony-init\'s runtime directory [env COLONY_RUN_DIR; root: /run/colony; else $XDG_RUNTIME_DIR/colony]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand timers" -l timeout -d 'How long to wait for colony-init\'s answer (e.g. 10s, 2m) [30s; start/stop/restart: 2m]' -r
complete -c colonyctl -n "__fish_colonyctl_using_subcommand timers" -l fleet -d 'fleet.toml for `fleet` (etcd endpoints, credentials) [root: /etc/colony/fleet.toml; else $XDG_CONFIG_HOME/colony/fleet.toml]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand timers" -l json -d 'Print machine-readable JSON'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand timers" -s h -l help -d 'Print help'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand events" -l run-dir -d 'colony-init\'s runtime directory [env COLONY_RUN_DIR; root: /run/colony; else $XDG_RUNTIME_DIR/colony]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand events" -l timeout -d 'How long to wait for colony-init\'s answer (e.g. 10s, 2m) [30s; start/stop/restart: 2m]' -r
complete -c colonyctl -n "__fish_colonyctl_using_subcommand events" -l fleet -d 'fleet.toml for `fleet` (etcd endpoints, credentials) [root: /etc/colony/fleet.toml; else $XDG_CONFIG_HOME/colony/fleet.toml]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand events" -l json -d 'Print machine-readable JSON'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand events" -s h -l help -d 'Print help'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand add" -l cmd -d 'The program (absolute, or found in PATH)' -r
complete -c colonyctl -n "__fish_colonyctl_using_subcommand add" -l arg -d 'An argument (repeat for more)' -r
complete -c colonyctl -n "__fish_colonyctl_using_subcommand add" -l env -d 'An environment variable (repeat for more)' -r
complete -c colonyctl -n "__fish_colonyctl_using_subcommand add" -l uid -d 'User (name or uid)' -r
complete -c colonyctl -n "__fish_colonyctl_using_subcommand add" -l gid -d 'Group (name or gid)' -r
complete -c colonyctl -n "__fish_colonyctl_using_subcommand add" -l extras -d 'Free-form JSON object, given to the program as COLONY_CONFIG' -r
complete -c colonyctl -n "__fish_colonyctl_using_subcommand add" -l units -d 'Units directory [default: the one of the running colony-init]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand add" -l run-dir -d 'colony-init\'s runtime directory [env COLONY_RUN_DIR; root: /run/colony; else $XDG_RUNTIME_DIR/colony]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand add" -l timeout -d 'How long to wait for colony-init\'s answer (e.g. 10s, 2m) [30s; start/stop/restart: 2m]' -r
complete -c colonyctl -n "__fish_colonyctl_using_subcommand add" -l fleet -d 'fleet.toml for `fleet` (etcd endpoints, credentials) [root: /etc/colony/fleet.toml; else $XDG_CONFIG_HOME/colony/fleet.toml]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand add" -l json -d 'Print machine-readable JSON'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand add" -s h -l help -d 'Print help'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand remove" -l units -d 'Units directory [default: the one of the running colony-init]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand remove" -l run-dir -d 'colony-init\'s runtime directory [env COLONY_RUN_DIR; root: /run/colony; else $XDG_RUNTIME_DIR/colony]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand remove" -l timeout -d 'How long to wait for colony-init\'s answer (e.g. 10s, 2m) [30s; start/stop/restart: 2m]' -r
complete -c colonyctl -n "__fish_colonyctl_using_subcommand remove" -l fleet -d 'fleet.toml for `fleet` (etcd endpoints, credentials) [root: /etc/colony/fleet.toml; else $XDG_CONFIG_HOME/colony/fleet.toml]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand remove" -l json -d 'Print machine-readable JSON'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand remove" -s h -l help -d 'Print help'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand enable" -l units -d 'Units directory [default: the one of the running colony-init]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand enable" -l run-dir -d 'colony-init\'s runtime directory [env COLONY_RUN_DIR; root: /run/colony; else $XDG_RUNTIME_DIR/colony]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand enable" -l timeout -d 'How long to wait for colony-init\'s answer (e.g. 10s, 2m) [30s; start/stop/restart: 2m]' -r
complete -c colonyctl -n "__fish_colonyctl_using_subcommand enable" -l fleet -d 'fleet.toml for `fleet` (etcd endpoints, credentials) [root: /etc/colony/fleet.toml; else $XDG_CONFIG_HOME/colony/fleet.toml]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand enable" -l now -d 'Also start (enable) or stop (disable) it now'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand enable" -l json -d 'Print machine-readable JSON'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand enable" -s h -l help -d 'Print help'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand disable" -l units -d 'Units directory [default: the one of the running colony-init]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand disable" -l run-dir -d 'colony-init\'s runtime directory [env COLONY_RUN_DIR; root: /run/colony; else $XDG_RUNTIME_DIR/colony]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand disable" -l timeout -d 'How long to wait for colony-init\'s answer (e.g. 10s, 2m) [30s; start/stop/restart: 2m]' -r
complete -c colonyctl -n "__fish_colonyctl_using_subcommand disable" -l fleet -d 'fleet.toml for `fleet` (etcd endpoints, credentials) [root: /etc/colony/fleet.toml; else $XDG_CONFIG_HOME/colony/fleet.toml]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand disable" -l now -d 'Also start (enable) or stop (disable) it now'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand disable" -l json -d 'Print machine-readable JSON'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand disable" -s h -l help -d 'Print help'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand cat" -l units -d 'Units directory [default: the one of the running colony-init]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand cat" -l run-dir -d 'colony-init\'s runtime directory [env COLONY_RUN_DIR; root: /run/colony; else $XDG_RUNTIME_DIR/colony]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand cat" -l timeout -d 'How long to wait for colony-init\'s answer (e.g. 10s, 2m) [30s; start/stop/restart: 2m]' -r
complete -c colonyctl -n "__fish_colonyctl_using_subcommand cat" -l fleet -d 'fleet.toml for `fleet` (etcd endpoints, credentials) [root: /etc/colony/fleet.toml; else $XDG_CONFIG_HOME/colony/fleet.toml]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand cat" -l json -d 'Print machine-readable JSON'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand cat" -s h -l help -d 'Print help'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand show" -l units -d 'Units directory [default: the one of the running colony-init]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand show" -l run-dir -d 'colony-init\'s runtime directory [env COLONY_RUN_DIR; root: /run/colony; else $XDG_RUNTIME_DIR/colony]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand show" -l timeout -d 'How long to wait for colony-init\'s answer (e.g. 10s, 2m) [30s; start/stop/restart: 2m]' -r
complete -c colonyctl -n "__fish_colonyctl_using_subcommand show" -l fleet -d 'fleet.toml for `fleet` (etcd endpoints, credentials) [root: /etc/colony/fleet.toml; else $XDG_CONFIG_HOME/colony/fleet.toml]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand show" -l json -d 'Print machine-readable JSON'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand show" -s h -l help -d 'Print help'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand check" -l run-dir -d 'colony-init\'s runtime directory [env COLONY_RUN_DIR; root: /run/colony; else $XDG_RUNTIME_DIR/colony]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand check" -l timeout -d 'How long to wait for colony-init\'s answer (e.g. 10s, 2m) [30s; start/stop/restart: 2m]' -r
complete -c colonyctl -n "__fish_colonyctl_using_subcommand check" -l fleet -d 'fleet.toml for `fleet` (etcd endpoints, credentials) [root: /etc/colony/fleet.toml; else $XDG_CONFIG_HOME/colony/fleet.toml]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand check" -l json -d 'Print machine-readable JSON'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand check" -s h -l help -d 'Print help'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand import" -l from -d 'The source format [default: guessed from each file]' -r -f -a "systemd\t''
supervisord\t''
ncolony\t''"
complete -c colonyctl -n "__fish_colonyctl_using_subcommand import" -l out -d 'Where to write the units [default: the current directory]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand import" -l run-dir -d 'colony-init\'s runtime directory [env COLONY_RUN_DIR; root: /run/colony; else $XDG_RUNTIME_DIR/colony]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand import" -l timeout -d 'How long to wait for colony-init\'s answer (e.g. 10s, 2m) [30s; start/stop/restart: 2m]' -r
complete -c colonyctl -n "__fish_colonyctl_using_subcommand import" -l fleet -d 'fleet.toml for `fleet` (etcd endpoints, credentials) [root: /etc/colony/fleet.toml; else $XDG_CONFIG_HOME/colony/fleet.toml]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand import" -l dry-run -d 'Print the units and the report; write nothing'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand import" -l strict -d 'Any key not carried over is an error (exit 1, nothing written)'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand import" -l json -d 'Print machine-readable JSON'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand import" -s h -l help -d 'Print help'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand fleet" -l run-dir -d 'colony-init\'s runtime directory [env COLONY_RUN_DIR; root: /run/colony; else $XDG_RUNTIME_DIR/colony]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand fleet" -l timeout -d 'How long to wait for colony-init\'s answer (e.g. 10s, 2m) [30s; start/stop/restart: 2m]' -r
complete -c colonyctl -n "__fish_colonyctl_using_subcommand fleet" -l fleet -d 'fleet.toml for `fleet` (etcd endpoints, credentials) [root: /etc/colony/fleet.toml; else $XDG_CONFIG_HOME/colony/fleet.toml]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand fleet" -l json -d 'Print machine-readable JSON'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand completions" -l run-dir -d 'colony-init\'s runtime directory [env COLONY_RUN_DIR; root: /run/colony; else $XDG_RUNTIME_DIR/colony]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand completions" -l timeout -d 'How long to wait for colony-init\'s answer (e.g. 10s, 2m) [30s; start/stop/restart: 2m]' -r
complete -c colonyctl -n "__fish_colonyctl_using_subcommand completions" -l fleet -d 'fleet.toml for `fleet` (etcd endpoints, credentials) [root: /etc/colony/fleet.toml; else $XDG_CONFIG_HOME/colony/fleet.toml]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand completions" -l json -d 'Print machine-readable JSON'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand completions" -s h -l help -d 'Print help'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand __complete-targets" -l run-dir -d 'colony-init\'s runtime directory [env COLONY_RUN_DIR; root: /run/colony; else $XDG_RUNTIME_DIR/colony]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand __complete-targets" -l timeout -d 'How long to wait for colony-init\'s answer (e.g. 10s, 2m) [30s; start/stop/restart: 2m]' -r
complete -c colonyctl -n "__fish_colonyctl_using_subcommand __complete-targets" -l fleet -d 'fleet.toml for `fleet` (etcd endpoints, credentials) [root: /etc/colony/fleet.toml; else $XDG_CONFIG_HOME/colony/fleet.toml]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand __complete-targets" -l json -d 'Print machine-readable JSON'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand __complete-targets" -s h -l help -d 'Print help'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand reexec" -l binary -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand reexec" -l run-dir -d 'colony-init\'s runtime directory [env COLONY_RUN_DIR; root: /run/colony; else $XDG_RUNTIME_DIR/colony]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand reexec" -l timeout -d 'How long to wait for colony-init\'s answer (e.g. 10s, 2m) [30s; start/stop/restart: 2m]' -r
complete -c colonyctl -n "__fish_colonyctl_using_subcommand reexec" -l fleet -d 'fleet.toml for `fleet` (etcd endpoints, credentials) [root: /etc/colony/fleet.toml; else $XDG_CONFIG_HOME/colony/fleet.toml]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand reexec" -l json -d 'Print machine-readable JSON'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand reexec" -s h -l help -d 'Print help'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand version" -l run-dir -d 'colony-init\'s runtime directory [env COLONY_RUN_DIR; root: /run/colony; else $XDG_RUNTIME_DIR/colony]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand version" -l timeout -d 'How long to wait for colony-init\'s answer (e.g. 10s, 2m) [30s; start/stop/restart: 2m]' -r
complete -c colonyctl -n "__fish_colonyctl_using_subcommand version" -l fleet -d 'fleet.toml for `fleet` (etcd endpoints, credentials) [root: /etc/colony/fleet.toml; else $XDG_CONFIG_HOME/colony/fleet.toml]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand version" -l json -d 'Print machine-readable JSON'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand version" -s h -l help -d 'Print help'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand poweroff" -l run-dir -d 'colony-init\'s runtime directory [env COLONY_RUN_DIR; root: /run/colony; else $XDG_RUNTIME_DIR/colony]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand poweroff" -l timeout -d 'How long to wait for colony-init\'s answer (e.g. 10s, 2m) [30s; start/stop/restart: 2m]' -r
complete -c colonyctl -n "__fish_colonyctl_using_subcommand poweroff" -l fleet -d 'fleet.toml for `fleet` (etcd endpoints, credentials) [root: /etc/colony/fleet.toml; else $XDG_CONFIG_HOME/colony/fleet.toml]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand poweroff" -l json -d 'Print machine-readable JSON'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand poweroff" -s h -l help -d 'Print help'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand reboot" -l run-dir -d 'colony-init\'s runtime directory [env COLONY_RUN_DIR; root: /run/colony; else $XDG_RUNTIME_DIR/colony]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand reboot" -l timeout -d 'How long to wait for colony-init\'s answer (e.g. 10s, 2m) [30s; start/stop/restart: 2m]' -r
complete -c colonyctl -n "__fish_colonyctl_using_subcommand reboot" -l fleet -d 'fleet.toml for `fleet` (etcd endpoints, credentials) [root: /etc/colony/fleet.toml; else $XDG_CONFIG_HOME/colony/fleet.toml]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand reboot" -l json -d 'Print machine-readable JSON'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand reboot" -s h -l help -d 'Print help'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand halt" -l run-dir -d 'colony-init\'s runtime directory [env COLONY_RUN_DIR; root: /run/colony; else $XDG_RUNTIME_DIR/colony]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand halt" -l timeout -d 'How long to wait for colony-init\'s answer (e.g. 10s, 2m) [30s; start/stop/restart: 2m]' -r
complete -c colonyctl -n "__fish_colonyctl_using_subcommand halt" -l fleet -d 'fleet.toml for `fleet` (etcd endpoints, credentials) [root: /etc/colony/fleet.toml; else $XDG_CONFIG_HOME/colony/fleet.toml]' -r -F
complete -c colonyctl -n "__fish_colonyctl_using_subcommand halt" -l json -d 'Print machine-readable JSON'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand halt" -s h -l help -d 'Print help'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand help; and not __fish_seen_subcommand_from status start stop restart restart-all reload signal logs timers events add remove enable disable cat show check import fleet completions __complete-targets reexec version poweroff reboot halt help" -f -a "status" -d 'Show units (all when none is named)'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand help; and not __fish_seen_subcommand_from status start stop restart restart-all reload signal logs timers events add remove enable disable cat show check import fleet completions __complete-targets reexec version poweroff reboot halt help" -f -a "start" -d 'Start units and wait until they are up'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand help; and not __fish_seen_subcommand_from status start stop restart restart-all reload signal logs timers events add remove enable disable cat show check import fleet completions __complete-targets reexec version poweroff reboot halt help" -f -a "stop" -d 'Stop units and wait until they are stopped'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand help; and not __fish_seen_subcommand_from status start stop restart restart-all reload signal logs timers events add remove enable disable cat show check import fleet completions __complete-targets reexec version poweroff reboot halt help" -f -a "restart" -d 'Restart units and wait until they are up again'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand help; and not __fish_seen_subcommand_from status start stop restart restart-all reload signal logs timers events add remove enable disable cat show check import fleet completions __complete-targets reexec version poweroff reboot halt help" -f -a "restart-all" -d 'Restart every unit'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand help; and not __fish_seen_subcommand_from status start stop restart restart-all reload signal logs timers events add remove enable disable cat show check import fleet completions __complete-targets reexec version poweroff reboot halt help" -f -a "reload" -d 'Re-read the units directory now; with units named, run their exec_reload and wait until they are ready again'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand help; and not __fish_seen_subcommand_from status start stop restart restart-all reload signal logs timers events add remove enable disable cat show check import fleet completions __complete-targets reexec version poweroff reboot halt help" -f -a "signal" -d 'Send a signal to units\' main processes'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand help; and not __fish_seen_subcommand_from status start stop restart restart-all reload signal logs timers events add remove enable disable cat show check import fleet completions __complete-targets reexec version poweroff reboot halt help" -f -a "logs" -d 'Show units\' logs (all when none is named; `colony-init`: its own log)'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand help; and not __fish_seen_subcommand_from status start stop restart restart-all reload signal logs timers events add remove enable disable cat show check import fleet completions __complete-targets reexec version poweroff reboot halt help" -f -a "timers" -d 'Timer units: schedule, next run, last run, last result'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand help; and not __fish_seen_subcommand_from status start stop restart restart-all reload signal logs timers events add remove enable disable cat show check import fleet completions __complete-targets reexec version poweroff reboot halt help" -f -a "events" -d 'Print state changes as they happen (with --json: one JSON object a line), until Ctrl-C'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand help; and not __fish_seen_subcommand_from status start stop restart restart-all reload signal logs timers events add remove enable disable cat show check import fleet completions __complete-targets reexec version poweroff reboot halt help" -f -a "add" -d 'Write NAME.unit into the units directory (atomically); return once colony-init has it'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand help; and not __fish_seen_subcommand_from status start stop restart restart-all reload signal logs timers events add remove enable disable cat show check import fleet completions __complete-targets reexec version poweroff reboot halt help" -f -a "remove" -d 'Stop the unit, delete NAME.unit; return once colony-init has dropped it'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand help; and not __fish_seen_subcommand_from status start stop restart restart-all reload signal logs timers events add remove enable disable cat show check import fleet completions __complete-targets reexec version poweroff reboot halt help" -f -a "enable" -d 'Set `enabled = true` in NAME.unit (started with colony-init; --now: start it too)'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand help; and not __fish_seen_subcommand_from status start stop restart restart-all reload signal logs timers events add remove enable disable cat show check import fleet completions __complete-targets reexec version poweroff reboot halt help" -f -a "disable" -d 'Set `enabled = false` in NAME.unit (not started with colony-init; --now: stop it too)'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand help; and not __fish_seen_subcommand_from status start stop restart restart-all reload signal logs timers events add remove enable disable cat show check import fleet completions __complete-targets reexec version poweroff reboot halt help" -f -a "cat" -d 'Print NAME.unit as written'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand help; and not __fish_seen_subcommand_from status start stop restart restart-all reload signal logs timers events add remove enable disable cat show check import fleet completions __complete-targets reexec version poweroff reboot halt help" -f -a "show" -d 'Print the unit as colony-init reads it: every key, defaults filled in'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand help; and not __fish_seen_subcommand_from status start stop restart restart-all reload signal logs timers events add remove enable disable cat show check import fleet completions __complete-targets reexec version poweroff reboot halt help" -f -a "check" -d 'Validate unit files without colony-init'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand help; and not __fish_seen_subcommand_from status start stop restart restart-all reload signal logs timers events add remove enable disable cat show check import fleet completions __complete-targets reexec version poweroff reboot halt help" -f -a "import" -d 'Translate other supervisors\' configs (systemd, supervisord, NColony) into units'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand help; and not __fish_seen_subcommand_from status start stop restart restart-all reload signal logs timers events add remove enable disable cat show check import fleet completions __complete-targets reexec version poweroff reboot halt help" -f -a "fleet" -d 'Many hosts: fleet status|hosts|apply APP.toml|remove APP|start APP|stop APP|forget HOST [--endpoints URL,...] (runs colony-fleet ctl)'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand help; and not __fish_seen_subcommand_from status start stop restart restart-all reload signal logs timers events add remove enable disable cat show check import fleet completions __complete-targets reexec version poweroff reboot halt help" -f -a "completions" -d 'Print a shell completion script (unit names and @tags complete from the running colony)'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand help; and not __fish_seen_subcommand_from status start stop restart restart-all reload signal logs timers events add remove enable disable cat show check import fleet completions __complete-targets reexec version poweroff reboot halt help" -f -a "reexec" -d 'Upgrade colony-init in place: hand every unit to a new image of it, keeping its PID'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand help; and not __fish_seen_subcommand_from status start stop restart restart-all reload signal logs timers events add remove enable disable cat show check import fleet completions __complete-targets reexec version poweroff reboot halt help" -f -a "version" -d 'colonyctl\'s version and the running colony-init\'s: since when, last re-executed when'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand help; and not __fish_seen_subcommand_from status start stop restart restart-all reload signal logs timers events add remove enable disable cat show check import fleet completions __complete-targets reexec version poweroff reboot halt help" -f -a "poweroff" -d 'Power the machine off (colony-init as PID 1 of a machine only)'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand help; and not __fish_seen_subcommand_from status start stop restart restart-all reload signal logs timers events add remove enable disable cat show check import fleet completions __complete-targets reexec version poweroff reboot halt help" -f -a "reboot" -d 'Reboot the machine (colony-init as PID 1 of a machine only)'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand help; and not __fish_seen_subcommand_from status start stop restart restart-all reload signal logs timers events add remove enable disable cat show check import fleet completions __complete-targets reexec version poweroff reboot halt help" -f -a "halt" -d 'Halt the machine (colony-init as PID 1 of a machine only)'
complete -c colonyctl -n "__fish_colonyctl_using_subcommand help; and not __fish_seen_subcommand_from status start stop restart restart-all reload signal logs timers events add remove enable disable cat show check import fleet completions __complete-targets reexec version poweroff reboot halt help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'

# Unit names and @tags of the running colony for TARGET arguments (colonyctl __complete-targets).
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
complete -c colonyctl -n "__fish_seen_subcommand_from fleet; and not __fish_seen_subcommand_from status hosts apply remove start stop forget" -f -a "status hosts apply remove start stop forget"
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
