#!/usr/bin/env bash
# The command-line contract: --help, --version, unknown command/option → usage on stderr, exit 2.
set -u
fail=0
expect() { # expect STATUS DESCRIPTION -- command...
    local want=$1 desc=$2; shift 3
    "$@" >/tmp/adfd_cli_out.$$ 2>/tmp/adfd_cli_err.$$; local got=$?
    if [ "$got" -ne "$want" ]; then
        echo "FAIL: $desc: exit $got, want $want"; cat /tmp/adfd_cli_err.$$; fail=1
    else echo "ok: $desc"; fi
}
expect 0 "adfd --help" -- "$ADFD" --help
grep -q "Commands:" /tmp/adfd_cli_out.$$ || { echo "FAIL: --help lists commands"; fail=1; }
expect 0 "adfd --version" -- "$ADFD" --version
grep -Eq "^adfd [0-9]+\.[0-9]+\.[0-9]+" /tmp/adfd_cli_out.$$ || { echo "FAIL: version text"; fail=1; }
expect 2 "no command" -- "$ADFD"
expect 2 "unknown command" -- "$ADFD" frobnicate
grep -q "unknown command 'frobnicate'" /tmp/adfd_cli_err.$$ || { echo "FAIL: names the command"; fail=1; }
# Each command's own --help and usage errors are tested with the command (tests/<command>.cmake).
rm -f /tmp/adfd_cli_out.$$ /tmp/adfd_cli_err.$$
[ $fail -eq 0 ] && echo "test_cli: passed" || echo "test_cli: FAILED"
exit $fail
