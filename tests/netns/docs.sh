#!/usr/bin/env bash
# The manual pages and the bash completion, held to the programs. Both sides
# are read from their source of truth: the options and commands that veild,
# veilctl and veil-meshd print, set's usage line, the keys[] table of the
# configuration parser (each key in its section: Endpoint is a key of [Peer]
# and of [Mesh]), the getenv() calls, the mesh agent's audit events, the
# mesh subcommands that "veilctl mesh" prints, veild's own control keys; the
# pages' OPTIONS, COMMANDS, SET OPTIONS, ENVIRONMENT, AUDIT, CONTROL PROTOCOL
# and key sections.
# Then each page must render without a single warning, and the completion
# must offer what the programs take.
#
# No namespace is needed; lib.sh gives log/fail, $ROOT, $BUILD, $TMP and the
# cleanup trap.
# shellcheck source=tests/netns/lib.sh
. "$(dirname "$0")/lib.sh"

VEILD_BIN="$ROOT/$BUILD/veild"
VEILCTL="$ROOT/$BUILD/veilctl"
MESHD="$ROOT/$BUILD/veil-meshd"
MAN="$ROOT/man"
COMPLETION="$ROOT/packaging/bash-completion/veilctl"
if [ ! -x "$VEILD_BIN" ] || [ ! -x "$VEILCTL" ] || [ ! -x "$MESHD" ]; then
	fail "no $BUILD/veild, $BUILD/veilctl or $BUILD/veil-meshd: build first"
fi
for f in "$MAN/veild.8" "$MAN/veilctl.8" "$MAN/veil-meshd.8" "$MAN/veil.conf.5" "$COMPLETION"; do
	[ -f "$f" ] || fail "$f is missing"
done

# ---- helpers ---------------------------------------------------------------------------

# roff source to plain words: fonts, escapes, macro names and quotes go.
plain() {
	sed -e 's/\\f[BIRP]//g' -e 's/\\f(..//g' -e 's/\\-/-/g' -e 's/\\[&%]//g' \
		-e 's/\\(lq//g' -e 's/\\(rq//g' -e 's/\\(aq//g' \
		-e 's/^\.[A-Za-z][A-Za-z]*[[:space:]]*//' -e 's/"//g'
}

# tags PAGE SECTION: the tag line of each .TP under .SH SECTION, as plain text.
tags() {
	awk -v want="$2" '
		/^\.SH/ { sec = $0; sub(/^\.SH[ \t]+/, "", sec); gsub(/"/, "", sec); tp = 0; next }
		sec == want && tp { print; tp = 0; next }
		sec == want && /^\.TP/ { tp = 1 }
	' "$1" | plain
}

# Options (-x, --word) in the text on stdin, one a line. A hyphen inside a
# word (wg-quick) does not start one.
options() {
	{ grep -oE '(^|[^[:alnum:]_-])--?[[:alpha:]][[:alnum:]-]*' || true; } | sed -E 's/^[^-]+//' | sort -u
}

first_words() { awk 'NF { print $1 }' | sort -u; }

# oneline TEXT: its words on one line, for messages. list WORDS...: one a line, sorted.
oneline() { tr -s ' \n' '  ' <<<"$1" | sed 's/^ //; s/ $//'; }
list() { printf '%s\n' "$@" | tr ' ' '\n' | sed '/^$/d' | sort -u; }

# same WHAT EXPECTED ACTUAL: two sorted lists must be equal; says which side lacks what.
same() {
	local what=$1 missing extra
	missing=$(comm -23 <(printf '%s\n' "$2" | sed '/^$/d') <(printf '%s\n' "$3" | sed '/^$/d'))
	extra=$(comm -13 <(printf '%s\n' "$2" | sed '/^$/d') <(printf '%s\n' "$3" | sed '/^$/d'))
	[ -z "$missing" ] || fail "$what: missing $(oneline "$missing")"
	[ -z "$extra" ] || fail "$what: not in the program: $(oneline "$extra")"
}

# contains WHAT LIST WORDS: every word of WORDS is in LIST.
contains() {
	local w
	for w in $3; do
		grep -qxF -- "$w" <<<"$2" || fail "$1: $w is missing"
	done
}

# ---- (a) options and commands ------------------------------------------------------------

veild_help=$("$VEILD_BIN" --help)
veilctl_help=$("$VEILCTL" --help)

help_opts=$(options <<<"$veild_help")
[ "$(wc -l <<<"$help_opts")" -ge 6 ] || fail "cannot read veild's options from --help: $help_opts"
same "veild(8) OPTIONS against veild --help" "$help_opts" "$(tags "$MAN/veild.8" OPTIONS | options)"
log "veild(8): options agree with --help: $(oneline "$help_opts")"

help_cmds=$(sed -n 's/^  veilctl \([a-z][a-z]*\).*/\1/p' <<<"$veilctl_help" | sort -u)
[ "$(wc -l <<<"$help_cmds")" -ge 10 ] || fail "cannot read veilctl's commands from --help"
page_cmds=$(tags "$MAN/veilctl.8" COMMANDS | first_words)
# metrics may be documented ahead of the program, but only while veilctl
# really does not have it: a command it runs must be in its --help.
if grep -qxF metrics <<<"$help_cmds"; then
	ahead=""
elif { "$VEILCTL" metrics </dev/null 2>&1 || true; } | qgrep 'unknown command'; then
	ahead=metrics
	log "veilctl has no metrics command yet: its page entry is ahead of the program"
else
	fail "veilctl runs 'metrics' but its --help does not list it"
fi
same "veilctl(8) COMMANDS against veilctl --help" "$(list "$help_cmds" "$ahead")" "$page_cmds"
log "veilctl(8): commands agree with --help: $(oneline "$help_cmds")"
# Each command's usage line in --help is followed by a line that says what it does.
undescribed=$(awk '/^  veilctl [a-z]/ { if (cmd) print cmd; cmd = $2; next }
	cmd && /^      [[:alpha:]]/ && NF >= 3 { cmd = ""; next } { if (cmd) print cmd; cmd = "" }
	END { if (cmd) print cmd }' <<<"$veilctl_help")
[ -z "$undescribed" ] || fail "veilctl --help gives no description for: $(oneline "$undescribed")"

# A command's own options (--json, --admin: on its line of --help) are in the
# tags under COMMANDS; OPTIONS holds the others that --help names
# (--version), and --help, which printed them.
ctl_opts=$(options <<<"$veilctl_help")
cmd_opts=$(grep '^  veilctl [a-z]' <<<"$veilctl_help" | options)
contains "veilctl(8) COMMANDS against the commands' options in veilctl --help" \
	"$(tags "$MAN/veilctl.8" COMMANDS | options)" "$cmd_opts"
same "veilctl(8) OPTIONS against veilctl --help" "$(list "$(comm -23 <(printf '%s\n' "$ctl_opts") \
	<(printf '%s\n' "$cmd_opts"))" --help)" "$(tags "$MAN/veilctl.8" OPTIONS | options)"
log "veilctl(8): the commands' options $(oneline "$cmd_opts") under COMMANDS, the others under OPTIONS"

# set's options, from its usage line (veilctl set alone prints it and fails).
set_usage=$("$VEILCTL" set 2>&1 >/dev/null || true)
set_opts=$({ grep -oE '\[[a-z][a-z-]*' <<<"$set_usage" || true; } | tr -d '[' | sort -u)
[ "$(wc -l <<<"$set_opts")" -ge 9 ] || fail "cannot read the options of veilctl set from: $set_usage"
same "veilctl(8) SET OPTIONS against veilctl set's usage" "$set_opts" "$(tags "$MAN/veilctl.8" "SET OPTIONS" | first_words)"
log "veilctl(8): set's options agree with its usage: $(oneline "$set_opts")"

# veil-meshd: the options of its usage (-h prints it), and -h itself. -V is
# not in the usage; the page may name it only while it prints the version.
meshd_help=$("$MESHD" -h 2>&1) || fail "veil-meshd -h failed: $meshd_help"
meshd_opts=$(options <<<"$meshd_help")
[ -n "$meshd_opts" ] || fail "cannot read veil-meshd's options from -h: $meshd_help"
meshd_extra=-h
if meshd_version=$("$MESHD" -V 2>&1) && [[ $meshd_version == "veil-meshd "* ]]; then
	meshd_extra+=" -V"
fi
same "veil-meshd(8) OPTIONS against veil-meshd -h" "$(list "$meshd_opts" "$meshd_extra")" \
	"$(tags "$MAN/veil-meshd.8" OPTIONS | options)"
log "veil-meshd(8): options agree with -h: $(oneline "$(list "$meshd_opts" "$meshd_extra")")"

# Environment: every variable the programs read is documented, and every one
# documented is read somewhere in veil; veild's --help names its own.
env_of() { grep -ho 'getenv("[A-Z_][A-Z0-9_]*")' "$@" | sed 's/getenv("\(.*\)")/\1/' | sort -u; }
unset_of() { grep -ho 'unsetenv("[A-Z_][A-Z0-9_]*")' "$@" | sed 's/unsetenv("\(.*\)")/\1/' | sort -u; }
all_env=$(env_of "$ROOT"/src/*.c "$ROOT"/tools/veilctl/*.c "$ROOT"/tools/mesh/*.c)
veild_env=$(tags "$MAN/veild.8" ENVIRONMENT | first_words)
veilctl_env=$(tags "$MAN/veilctl.8" ENVIRONMENT | first_words)
contains "veild(8) ENVIRONMENT against getenv() in src/" "$veild_env" "$(env_of "$ROOT"/src/*.c)"
contains "veilctl(8) ENVIRONMENT against getenv() in tools/veilctl/" "$veilctl_env" "$(env_of "$ROOT"/tools/veilctl/*.c)"
contains "veild(8) ENVIRONMENT against veild --help" "$veild_env" \
	"$({ grep -oE '\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b' <<<"$veild_help" || true; } | grep -v '^CAP_' | sort -u)"
for v in $veild_env $veilctl_env; do
	grep -qxF "$v" <<<"$all_env" || fail "$v is documented under ENVIRONMENT, but no getenv() reads it"
done
# veil-meshd is tools/mesh/*.c and what the Makefile's MESH_SHARED_OBJ links
# in from veilctl and veild: every getenv() there is documented, and every
# variable documented is read (or, like NOTIFY_SOCKET, removed) there.
mesh_shared=$(sed -n 's/^MESH_SHARED_OBJ[[:space:]]*:=//p' "$ROOT/Makefile")
mesh_src=("$ROOT"/tools/mesh/*.c)
for o in $({ grep -o 'ctl/,[^)]*' <<<"$mesh_shared" || true; } | sed 's|^ctl/,||'); do
	mesh_src+=("$ROOT/tools/veilctl/${o%.o}.c")
done
for o in $({ grep -o '(BUILD)/[a-z_]*\.o' <<<"$mesh_shared" || true; } | sed 's|^(BUILD)/||'); do
	mesh_src+=("$ROOT/src/${o%.o}.c")
done
mesh_own=("$ROOT"/tools/mesh/*.c)
[ ${#mesh_src[@]} -gt ${#mesh_own[@]} ] ||
	fail "cannot read MESH_SHARED_OBJ from the Makefile: $mesh_shared"
for f in "${mesh_src[@]}"; do [ -f "$f" ] || fail "MESH_SHARED_OBJ names $f, which does not exist"; done
meshd_env=$(tags "$MAN/veil-meshd.8" ENVIRONMENT | first_words)
meshd_read=$(env_of "${mesh_src[@]}")
contains "veil-meshd(8) ENVIRONMENT against getenv() in veil-meshd's sources" "$meshd_env" "$meshd_read"
for v in $meshd_env; do
	grep -qxF "$v" <<<"$(list "$meshd_read" "$(unset_of "${mesh_src[@]}")")" ||
		fail "$v is documented in veil-meshd(8), but veil-meshd neither reads nor removes it"
done
log "environment: documented as read ($(oneline "$all_env")); veil-meshd: $(oneline "$meshd_env")"

# The mesh agent's audit events, each under AUDIT, and no other: the names
# that audit() is given (both of a choice such as revoked ? "a" : "b") and
# those that log_audit() writes itself (a rotation's own steps).
events=$({
	grep -h 'audit(a, ' "$ROOT"/tools/mesh/*.c | grep -o '"[a-z_]*"' | tr -d '"'
	grep -ho 'log_audit("event=[a-z_]*' "$ROOT"/tools/mesh/*.c | sed 's/.*event=//'
} | sed '/^$/d' | sort -u)
[ "$(wc -l <<<"$events")" -ge 5 ] || fail "cannot read the audit events of tools/mesh/*.c"
same "veil-meshd(8) AUDIT against audit() in tools/mesh/" "$events" "$(tags "$MAN/veil-meshd.8" AUDIT | first_words)"
log "veil-meshd(8): audit events agree: $(oneline "$events")"

# The mesh's subcommands, from the usage that "veilctl mesh" alone prints
# (its dispatch table's), each under COMMANDS as "mesh SUB", and their
# options there too.
mesh_usage=$("$VEILCTL" mesh 2>&1 >/dev/null || true)
mesh_subs=$({ grep -oE 'veilctl mesh [a-z]+' <<<"$mesh_usage" || true; } | sed 's/^veilctl mesh //' | sort -u)
[ "$(wc -l <<<"$mesh_subs")" -ge 2 ] || fail "cannot read the mesh subcommands from 'veilctl mesh': $mesh_usage"
same "veilctl(8) COMMANDS' mesh subcommands against 'veilctl mesh'" "$mesh_subs" \
	"$(tags "$MAN/veilctl.8" COMMANDS | awk '$1 == "mesh" { print $2 }' | sort -u)"
mesh_opts=$(options <<<"$mesh_usage")
contains "veilctl(8) COMMANDS against the options in 'veilctl mesh'" "$(tags "$MAN/veilctl.8" COMMANDS | options)" "$mesh_opts"
log "veilctl(8): mesh subcommands agree with 'veilctl mesh': $(oneline "$mesh_subs"); options $(oneline "$mesh_opts")"

# veild's control keys of its own (those of src/uapi.c's handler tables that
# WireGuard's protocol does not have), each a tag under CONTROL PROTOCOL. The
# tables spell WireGuard's keys as literals and veil's own by their names in
# include/veil.h (VEIL_UAPI_*), which veilctl shares.
wg_keys="private_key listen_port fwmark replace_peers public_key remove update_only preshared_key
endpoint persistent_keepalive_interval replace_allowed_ips allowed_ip protocol_version"
uapi_keys=$({
	grep -o '^[[:space:]]*{ "[a-z_]*", key_' "$ROOT/src/uapi.c" | sed 's/.*"\(.*\)".*/\1/'
	grep -o '^[[:space:]]*{ VEIL_UAPI_[A-Z_]*, key_' "$ROOT/src/uapi.c" | grep -o 'VEIL_UAPI_[A-Z_]*' |
		while read -r name; do
			sed -n "s/^#define $name \"\([a-z_]*\)\".*/\1/p" "$ROOT/include/veil.h" | grep . ||
				echo "UNDEFINED-$name"
		done
} | sort -u)
[ "$(wc -l <<<"$uapi_keys")" -ge 15 ] || fail "cannot read the key tables of src/uapi.c"
own_keys=$(comm -23 <(printf '%s\n' "$uapi_keys") <(list "$wg_keys"))
contains "veild(8) CONTROL PROTOCOL against veil's own keys in src/uapi.c" \
	"$(tags "$MAN/veild.8" "CONTROL PROTOCOL" | first_words | sed 's/=.*//' | sort -u)" "$own_keys"
log "veild(8): veil's own control keys documented: $(oneline "$own_keys")"

# ---- (b) the pages render without warnings --------------------------------------------------

command -v groff >/dev/null || command -v man >/dev/null || fail "neither groff nor man is installed"
for page in veild.8 veilctl.8 veil-meshd.8 veil.conf.5; do
	name=${page%.*}
	sect=${page##*.}
	head -n 20 "$MAN/$page" | qgrep -i "^\.TH \"\?${name}\"\? ${sect} " || fail "$page: no .TH ${name^^} $sect"
	if command -v groff >/dev/null; then
		out=$(groff -man -Tutf8 -ww -z "$MAN/$page" 2>&1) || fail "$page: groff failed: $out"
		[ -z "$out" ] || fail "$page: groff warns: $out"
	fi
	if command -v man >/dev/null; then
		out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$MAN/$page" 2>&1 >/dev/null) ||
			fail "$page: man failed: $out"
		[ -z "$out" ] || fail "$page: man warns: $out"
	fi
done
log "pages render without warnings ($(command -v groff >/dev/null && echo "groff -ww") $(command -v man >/dev/null && echo "man --warnings"))"

# ---- (c) every configuration key, in its section ------------------------------------------------

# keys[] as "Name SECTION" lines. A name may be in two sections (Endpoint,
# PersistentKeepalive and Cipher are keys of [Peer] and of [Mesh]), so each
# section is compared alone: the page's "X SECTION" against SEC_X's keys.
keys=$(sed -n 's/^[[:space:]]*{ "\([A-Za-z][A-Za-z0-9]*\)", SEC_\([A-Z]*\),.*/\1 \2/p' "$ROOT/tools/veilctl/conf.c")
[ "$(wc -l <<<"$keys")" -ge 20 ] || fail "cannot read keys[] from tools/veilctl/conf.c"
[ "$(wc -l <<<"$keys")" = "$(grep -c '^[[:space:]]*{ "[A-Za-z][A-Za-z0-9]*", SEC_' "$ROOT/tools/veilctl/conf.c")" ] ||
	fail "keys[]: some entries are not of the form { \"Name\", SEC_X, ... }"
[ -z "$(sort <<<"$keys" | uniq -d)" ] || fail "keys[] has a key twice in one section: $(sort <<<"$keys" | uniq -d)"
key_secs=$(awk '{ print $2 }' <<<"$keys" | sort -u)
same "veil.conf(5) key sections against keys[]'s sections" "$key_secs" \
	"$(sed -n 's/^\.SH "\{0,1\}\([A-Z]*\) SECTION"\{0,1\}$/\1/p' "$MAN/veil.conf.5" | sort -u)"
for sec in $key_secs; do
	same "veil.conf(5) $sec SECTION against keys[]" "$(awk -v s="$sec" '$2 == s { print $1 }' <<<"$keys" | sort -u)" \
		"$(tags "$MAN/veil.conf.5" "$sec SECTION" | first_words)"
done
log "veil.conf(5): all $(wc -l <<<"$keys") keys of keys[], each in its section ($(oneline "$key_secs"))"

# ---- (d) the completion ----------------------------------------------------------------------

bash -n "$COMPLETION" || fail "$COMPLETION: syntax error"

# complete LINE: what completing the end of LINE offers, sorted, one a line.
# A fresh bash sources the script, as bash-completion would, and sees a
# socket directory, a configuration directory and a working directory of
# ours. COMP_WORDS ends as bash ends it: it breaks words at '=' and ':' too,
# and a word that ends in one has that character as a word of its own.
mkdir -p "$TMP/sock" "$TMP/conf" "$TMP/cwd" "$TMP/mesh"
complete_line() {
	# shellcheck disable=SC2016 # the script is for the inner bash
	(cd "$TMP/cwd" && env -i PATH="$PATH" HOME="$TMP" bash --norc --noprofile -c '
		. "$1" || exit 1
		[ "$(complete -p veilctl)" = "complete -F _veilctl veilctl" ] || exit 1
		_veilctl_sock_dir=$2
		_veilctl_conf_dir=$3
		_veilctl_mesh_dir=$5
		COMP_LINE=$4
		COMP_POINT=${#COMP_LINE}
		read -r -a COMP_WORDS <<<"$COMP_LINE"
		[[ -z $COMP_LINE || $COMP_LINE == *" " ]] && COMP_WORDS+=("")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		last=${COMP_WORDS[COMP_CWORD]}
		if [[ $last == *[=:] ]]; then
			COMP_WORDS[COMP_CWORD]=${last: -1} # "abc=": bash has "abc" "="
		else
			COMP_WORDS[COMP_CWORD]=${last##*[=:]}
		fi
		_veilctl || exit 1
		printf "%s\n" "${COMPREPLY[@]}"
	' _ "$COMPLETION" "$TMP/sock" "$TMP/conf" "$1" "$TMP/mesh") | sed '/^$/d' | sort
}
expect() {
	local got
	got=$(complete_line "$1") || fail "completion of '$1' failed"
	[ "$got" = "$(list "$2")" ] || fail "completing '$1' offers '$(oneline "$got")', not '$2'"
	log "completing '$1': $(oneline "$got")"
}

KEY=yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=
expect "veilctl s" "set setconf show showconf syncconf"
expect "veilctl set IF peer $KEY c" "cipher"
expect "veilctl set IF peer $KEY cipher " "aes256gcm chacha20poly1305"
expect "veilctl set IF peer $KEY allowed-ips 10.0.0.0/8 endpoint 192.0.2.1:51820 cipher a" "aes256gcm"
expect "veilctl set IF listen-port 51820 peer $KEY remove " "peer"

# The commands are veilctl's (metrics while it is ahead), set's options its usage's.
same "completion's commands against veilctl --help" "$(list "$help_cmds" "$ahead" --help --version)" \
	"$(complete_line "veilctl ")"
same "completion's set options against set's usage" "$set_opts" \
	"$({ complete_line "veilctl set IF "; complete_line "veilctl set IF peer $KEY "; } | sort -u)"

# Files where a FILE is expected, names from /etc/veil for up/down/reload.
touch "$TMP/cwd/psk.key" "$TMP/cwd/site.conf" "$TMP/conf/office.conf"
expect "veilctl set IF private-key p" "psk.key"
expect "veilctl set IF peer $KEY preshared-key " "psk.key site.conf"
expect "veilctl setconf IF s" "site.conf"
expect "veilctl up " "office psk.key site.conf"
expect "veilctl reload of" "office"

# mesh: its subcommands and options as veilctl --help has them; networks and
# nodes from local copies shaped as the agent writes them (a record is an
# escaped string inside).
grep -q '^  veilctl mesh ' <<<"$veilctl_help" || fail "veilctl --help has no mesh line"
same "completion of 'veilctl mesh ' against 'veilctl mesh'" "$mesh_subs" "$(complete_line "veilctl mesh ")"
same "completion's mesh options against 'veilctl mesh'" "$mesh_opts" \
	"$(for sub in $mesh_subs; do complete_line "veilctl mesh $sub "; done | grep -- '^-' | sort -u)"
copy() { # IFNAME NETWORK NODE... (this node is the first)
	local ifname=$1 net=$2 nodes="" n
	shift 2
	for n in "$@"; do
		nodes+="${nodes:+,}{\"name\":\"$n\",\"present\":true,\"verdict\":\"accepted\",\"value\":\"{\\\"version\\\":1,\\\"node\\\":\\\"$n\\\",\\\"network\\\":\\\"x\\\"}\"}"
	done
	printf '{"version":1,"network":"%s","node":"%s","interface":"%s","revision":7,"nodes":[%s],"routes":[]}\n' \
		"$net" "$1" "$ifname" "$nodes" >"$TMP/mesh/$ifname.json"
}
copy wgx0 corp site-a site-b
copy wgx1 lab gw
expect "veilctl mesh " "admit history list remove revoke rotate"
expect "veilctl mesh list " "corp lab --json"
expect "veilctl mesh list --json " "corp lab"
expect "veilctl mesh list corp " "--json"
expect "veilctl mesh remove " "--admin corp lab"
expect "veilctl mesh remove --admin " "psk.key site.conf"
expect "veilctl mesh remove --admin site.conf c" "corp"
expect "veilctl mesh remove corp " "site-a site-b"
expect "veilctl mesh remove lab " "gw"
expect "veilctl mesh remove corp site-a " ""
expect "veilctl mesh rotate " "office psk.key site.conf"
expect "veilctl mesh rotate office " ""
expect "veilctl mesh revoke " "--admin --user corp lab"
expect "veilctl mesh revoke --user " ""
expect "veilctl mesh revoke --user corp.gw " "--admin corp lab"
expect "veilctl mesh revoke --admin site.conf --user corp.gw l" "lab"
expect "veilctl mesh revoke --admin site.conf lab " "gw"
expect "veilctl mesh revoke corp --" ""
expect "veilctl mesh admit " "--admin corp lab"
expect "veilctl mesh admit --admin " "psk.key site.conf"
expect "veilctl mesh history --admin site.conf corp " "site-a site-b"
expect "veilctl mesh history corp site-b " ""

# Interface names: sockets only, and a name with '=' in it completes after it.
if python3 -c 'import socket' 2>/dev/null; then
	python3 -c '
import socket, sys
for p in sys.argv[1:]:
    socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).bind(p)
' "$TMP/sock/wgx0.sock" "$TMP/sock/a=b.sock"
	touch "$TMP/sock/stale.sock"
	expect "veilctl show " "a=b wgx0 all interfaces --json"
	expect "veilctl metrics w" "wgx0"
	expect "veilctl showconf a=" "=b" # bash puts it in place of its word "="
	expect "veilctl showconf a=b" "b"
	expect "veilctl syncconf wgx0 s" "site.conf"
else
	log "no python3 to make sockets: interface names not checked"
fi

# ---- (e) the credential drop-in and the README name the same example ------------------------

EXAMPLE="$ROOT/packaging/systemd/credential.conf.example"
readme_cred=$(tr '\n' ' ' <"$ROOT/README.md" | { grep -o 'systemd-creds encrypt *--name=[A-Za-z0-9._-]*' || true; } |
	head -n 1 | sed 's/.*--name=//')
example_cred=$(sed -n 's/^LoadCredentialEncrypted=\([^:]*\):.*/\1/p' "$EXAMPLE")
[ -n "$readme_cred" ] || fail "the README names no credential (systemd-creds encrypt --name=)"
[ "$readme_cred" = "$example_cred" ] ||
	fail "credential.conf.example loads '$example_cred', the README seals '$readme_cred'"
grep -o 'veil@[A-Za-z0-9_-][A-Za-z0-9_-]*' "$EXAMPLE" | sort -u | grep -vxF "veil@${readme_cred%.key}" &&
	fail "credential.conf.example names another interface than the README's ${readme_cred%.key}"
log "credential.conf.example and the README both use $readme_cred"

# ---- (f) the README's layout is the tree's -------------------------------------------------

layout=$(awk '/^## Layout/ { on = 1; next } /^## / { on = 0 } on' "$ROOT/README.md")
[ -n "$layout" ] || fail "the README has no Layout section"
named=$({ grep -o '`[a-z][a-z/_.-]*/`' <<<"$layout" || true; } | tr -d '`' | sed 's|/$||' | sort -u)
for d in $named; do
	[ -d "$ROOT/$d" ] || fail "the README's layout names $d/, which the tree does not have"
done
tree=$(cd "$ROOT" && { ls -d -- */ src/*/ tools/*/ tests/*/ 2>/dev/null || true; } | sed 's|/$||' | grep -v '^build' | sort -u)
# A directory counts as named when one below it is (tests/ through tests/unit/).
unnamed=$(comm -23 <(printf '%s\n' "$tree") <(printf '%s\n' "$named") | while read -r d; do
	grep -q "^$d/" <<<"$named" || echo "$d"
done)
[ -z "$unnamed" ] || fail "the README's layout does not name: $(oneline "$unnamed")"
log "README layout: $(oneline "$named")"

log "docs: pass"
