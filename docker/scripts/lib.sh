# lib.sh -- shell helpers of the docker demo's one-shot jobs (sourced, bash)
# shellcheck shell=bash
#
# Runs in two images and on the host: the kyc-bridge image (Debian slim:
# bash, coreutils, sed), the apache/kafka image (Alpine: bash, busybox) and,
# through scripts/compose-local.sh, a developer machine. Neither image has
# curl or wget we can count on, so HTTP to the sandbox goes through bash's
# /dev/tcp: plain HTTP/1.0, one request per connection, which is all the
# sandbox on the compose network needs. Never prints an API key.

# Byte semantics for ${#s} (Content-Length) and sed.
export LC_ALL=C

kb_prog=${kb_prog:-${0##*/}}

kb_say() { printf '%s: %s\n' "$kb_prog" "$*"; }
kb_die() {
        printf '%s: error: %s\n' "$kb_prog" "$*" >&2
        exit 1
}

# kb_http METHOD URL [BODY [API_KEY]]
# One request. Sets KB_HTTP_STATUS (000 when no answer) and KB_HTTP_BODY.
# Returns 0 when an HTTP answer arrived, 1 otherwise. Bounded by
# KB_HTTP_TIMEOUT seconds (default 30) for the answer.
kb_http() {
        local method=$1 url=$2 body=${3-} key=${4-}
        local rest hostport host port path req raw fd head rc
        KB_HTTP_STATUS=000
        KB_HTTP_BODY=
        case $url in
        http://*) rest=${url#http://} ;;
        *) kb_die "kb_http: only http:// URLs are supported: $url" ;;
        esac
        hostport=${rest%%/*}
        if [ "$hostport" = "$rest" ]; then
                path=/
        else
                path=/${rest#*/}
        fi
        host=${hostport%:*}
        port=${hostport##*:}
        [ "$host" != "$hostport" ] || port=80
        req="$method $path HTTP/1.0"$'\r\n'"Host: $hostport"$'\r\n'
        req+="Accept: application/json"$'\r\n'"Connection: close"$'\r\n'
        if [ -n "$key" ]; then
                req+="x-api-key: $key"$'\r\n'
        fi
        if [ -n "$body" ]; then
                req+="Content-Type: application/json"$'\r\n'
                req+="Content-Length: ${#body}"$'\r\n'
        elif [ "$method" != GET ] && [ "$method" != DELETE ]; then
                req+="Content-Length: 0"$'\r\n'
        fi
        req+=$'\r\n'"$body"
        # A refused or unresolvable address fails here at once.
        # (The braces keep the 2>/dev/null from sticking to the shell.)
        { exec {fd}<>"/dev/tcp/$host/$port"; } 2>/dev/null || return 1
        printf '%s' "$req" >&"$fd" || {
                exec {fd}>&-
                return 1
        }
        raw=
        rc=0
        # Until the server closes (read -d '' stops at EOF with status 1;
        # above 128 means the time ran out).
        IFS= read -r -d '' -t "${KB_HTTP_TIMEOUT:-30}" raw <&"$fd" || rc=$?
        exec {fd}>&-
        [ "$rc" -le 128 ] || return 1
        head=${raw%%$'\r\n'*}
        case $head in
        HTTP/1.[01]\ [0-9][0-9][0-9]*) ;;
        *) return 1 ;;
        esac
        KB_HTTP_STATUS=${head:9:3}
        KB_HTTP_BODY=${raw#*$'\r\n\r\n'}
        return 0
}

# kb_call WANT METHOD PATH [BODY [API_KEY]] -- kb_http against $VENDOR_URL
# that must answer WANT; dies with the sandbox's reply (never the key) if not.
kb_call() {
        local want=$1 method=$2 path=$3
        kb_http "$method" "$VENDOR_URL$path" "${4-}" "${5-}" ||
                kb_die "$method $path: no answer from $VENDOR_URL"
        [ "$KB_HTTP_STATUS" = "$want" ] ||
                kb_die "$method $path: HTTP $KB_HTTP_STATUS (want $want): ${KB_HTTP_BODY:0:300}"
}

# kb_json_str KEY -- the string member KEY of the compact JSON object in
# KB_HTTP_BODY (the sandbox writes compact JSON; ids and keys hold no
# escapes). Prints nothing when absent.
kb_json_str() {
        printf '%s' "$KB_HTTP_BODY" | grep -o '"'"$1"'":"[^"\\]*"' |
                head -n 1 | sed -e 's/^.*:"//' -e 's/"$//'
}

# kb_is_uuid STRING
kb_is_uuid() {
        [[ $1 =~ ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$ ]]
}

# kb_uuid -- a random UUID (Linux; both images and the host have it)
kb_uuid() {
        cat /proc/sys/kernel/random/uuid
}

# kb_wait_sandbox SECONDS -- until GET /sandbox/health answers ok
kb_wait_sandbox() {
        local deadline=$((SECONDS + $1))
        while :; do
                if kb_http GET "$VENDOR_URL/sandbox/health" &&
                        [ "$KB_HTTP_STATUS" = 200 ]; then
                        return 0
                fi
                [ $SECONDS -lt $deadline ] ||
                        kb_die "the sandbox at $VENDOR_URL did not answer within $1 s"
                sleep 1
        done
}

# kb_write_file PATH MODE CONTENT -- atomically (temp file + rename), with
# MODE from the start: a secret is never readable by others, not even for a
# moment.
kb_write_file() {
        local path=$1 mode=$2 tmp
        tmp=$(mktemp "$path.XXXXXX") || kb_die "cannot create a file beside $path"
        chmod "$mode" "$tmp" || kb_die "chmod $tmp"
        printf '%s' "$3" >"$tmp" || kb_die "cannot write $tmp"
        mv -f "$tmp" "$path" || kb_die "cannot rename $tmp to $path"
}

# kb_render TEMPLATE OUT -- copies TEMPLATE to OUT (mode 0600) with every
# @NAME@ replaced by the value of the environment variable NAME. Every
# placeholder must have a non-empty value; nothing is written otherwise.
kb_render() {
        local tpl=$1 out=$2 name val expr=() esc
        [ -r "$tpl" ] || kb_die "template $tpl not readable"
        for name in $(grep -o '@[A-Z][A-Z0-9_]*@' "$tpl" | tr -d @ | sort -u); do
                val=${!name-}
                [ -n "$val" ] || kb_die "$tpl: placeholder @$name@ has no value (environment variable $name)"
                case $val in
                *$'\n'*) kb_die "$tpl: value of $name holds a newline" ;;
                esac
                esc=$(printf '%s' "$val" | sed -e 's/[\\|&]/\\&/g')
                expr+=(-e "s|@$name@|$esc|g")
        done
        [ ${#expr[@]} -gt 0 ] || expr=(-e '')
        kb_write_file "$out" 0600 "$(sed "${expr[@]}" "$tpl")
"
        if grep -q '@[A-Z][A-Z0-9_]*@' "$out"; then
                kb_die "$out: placeholders left after rendering"
        fi
}
