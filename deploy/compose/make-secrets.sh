#!/usr/bin/env bash
# Make what the Compose stack needs in secrets/ and never print a secret:
#
#   secrets/mqtt-ingest-password   ingest's MQTT password          (random, 48 hex characters)
#   secrets/mosquitto-passwd       Mosquitto's password file       (sideline-ingest; add pods with
#                                  mosquitto_passwd -b secrets/mosquitto-passwd <pod> '<secret>')
#   secrets/ack-secret             signs acknowledge links         (random)
#   secrets/archive-sql-token      bearer token of POST /api/sql   (random)
#   secrets/archive-pg-password    the archive's PostgreSQL-protocol password, user `sideline`
#                                  (random; for psql, pandas and Grafana's history data source)
#   secrets/grafana-admin          Grafana's admin password        (random)
#   secrets/slack-webhook          the staff's chat webhook URL    (a placeholder: edit it)
#   secrets/medical-webhook        the medical staff's chat webhook URL, where reds nobody
#                                  acknowledged in 5 minutes go (a placeholder: edit it)
#   secrets/ops-webhook            the IT's chat webhook URL, for Alertmanager (the pipeline's
#                                  own alerts; Slack-compatible)  (a placeholder: edit it)
#   secrets/bench-password         the bench's first sign-in, user `bench` (random; give it to
#                                  the staff, or add people to the staff file and remove it)
#   secrets/bench-staff.toml       the bench's staff file (its Argon2 hash; more people with
#                                  `sideline bench hash-password`)
#   secrets/certs/ca.pem           the broker's CA (give it to the pods; ingest trusts it)
#   secrets/ca.key                 that CA's key (never mounted; keep it off the server once the
#                                  broker has its certificate)
#   secrets/certs/server.pem, .key Mosquitto's certificate for the names `mosquitto` (ingest in
#                                  the stack), `localhost`, this host's name and any NAME given
#   secrets/certs/archive.pem, .key  the archive's PostgreSQL-protocol certificate, same CA, for
#                                  `archive` (Grafana in the stack), `localhost`, this host, NAMEs
#
#   ./make-secrets.sh [NAME…]     e.g. ./make-secrets.sh broker.club.example 192.0.2.10
#
# Idempotent: a file that exists is kept (delete it to make it again). Needs openssl,
# mosquitto_passwd or Docker (the eclipse-mosquitto image), and for the bench's hash the
# `sideline` binary ($SIDELINE_BIN, else on the PATH, else the stack's image, built here).
# SECRETS_DIR overrides the target.
set -euo pipefail
cd "$(dirname "$0")"
dir="${SECRETS_DIR:-secrets}"
umask 077
mkdir -p "$dir/certs"
# The directory keeps other users of this host out; the files inside are world-readable so
# that the containers' own users (Mosquitto's 1883, Sideline's 10001) can read their mounts.
chmod 700 "$dir"
chmod 755 "$dir/certs"

made=()
random() { openssl rand -hex 24; }
secret_file() { # NAME [CONTENT]: write NAME once
    local f="$dir/$1"
    if [ ! -s "$f" ]; then
        if [ $# -ge 2 ]; then printf '%s\n' "$2" >"$f"; else random >"$f"; fi
        chmod 644 "$f"
        made+=("$f")
    fi
}

secret_file mqtt-ingest-password
secret_file ack-secret
secret_file archive-sql-token
secret_file archive-pg-password
secret_file grafana-admin
for hook in slack-webhook medical-webhook ops-webhook; do
    if [ ! -s "$dir/$hook" ]; then
        secret_file "$hook" "https://hooks.slack.com/services/T000/B000/REPLACE-ME"
        echo "edit $dir/$hook: it holds a placeholder, not your chat's webhook URL" >&2
    fi
done

if [ ! -s "$dir/mosquitto-passwd" ]; then
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    : >"$tmp/passwd"
    chmod 644 "$tmp/passwd"
    if command -v mosquitto_passwd >/dev/null; then
        mosquitto_passwd -b "$tmp/passwd" sideline-ingest "$(cat "$dir/mqtt-ingest-password")"
    else
        docker run --rm -v "$tmp:/w" eclipse-mosquitto:2.0 \
            mosquitto_passwd -b /w/passwd sideline-ingest "$(cat "$dir/mqtt-ingest-password")"
    fi
    cp "$tmp/passwd" "$dir/mosquitto-passwd"
    chmod 644 "$dir/mosquitto-passwd"
    made+=("$dir/mosquitto-passwd")
fi

secret_file bench-password
hasher=""
if [ -n "${SIDELINE_BIN:-}" ]; then
    hasher="$SIDELINE_BIN"
elif command -v sideline >/dev/null; then
    hasher="sideline"
elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    hasher="docker"
fi
if [ ! -s "$dir/bench-staff.toml" ] && [ -z "$hasher" ]; then
    echo "not made: $dir/bench-staff.toml (needs the sideline binary or a Docker daemon to hash" \
        "the bench password; run this script again with one of them)" >&2
elif [ ! -s "$dir/bench-staff.toml" ]; then
    hash_password() { # the password on stdin; its Argon2id hash on stdout
        if [ "$hasher" = docker ]; then
            docker compose build -q bench >&2
            docker run --rm -i sideline:0.1 bench hash-password
        else
            "$hasher" bench hash-password
        fi
    }
    hash="$(hash_password <"$dir/bench-password")"
    {
        echo "# Staff who sign in to the bench view. Add people with their own passwords:"
        echo "#   sideline bench hash-password   (reads the password, prints the hash)"
        echo "[[staff]]"
        echo "user = \"bench\""
        echo "name = \"Bench staff\""
        echo "password = \"$hash\""
    } >"$dir/bench-staff.toml"
    chmod 644 "$dir/bench-staff.toml"
    made+=("$dir/bench-staff.toml")
fi

c="$dir/certs"
if [ ! -s "$c/ca.pem" ] || [ ! -s "$dir/ca.key" ]; then
    openssl req -x509 -newkey rsa:3072 -nodes -days 3650 -subj "/CN=Sideline broker CA" \
        -keyout "$dir/ca.key" -out "$c/ca.pem" 2>/dev/null
    chmod 600 "$dir/ca.key"
    chmod 644 "$c/ca.pem"
    rm -f "$c/server.pem" "$c/server.key" "$c/archive.pem" "$c/archive.key"
    made+=("$c/ca.pem" "$dir/ca.key")
fi
# A certificate from the CA: FILE-STEM CN FIRST-NAME [NAME…] (DNS names or IP addresses, plus
# localhost, 127.0.0.1 and this host's name).
issue() {
    local stem="$1" cn="$2" first="$3"
    shift 3
    local san="DNS:$first,DNS:localhost,IP:127.0.0.1" host
    host="$(hostname 2>/dev/null || true)"
    [ -n "$host" ] && san="$san,DNS:$host"
    for n in "$@"; do
        if [[ "$n" =~ ^[0-9.]+$ || "$n" == *:* ]]; then san="$san,IP:$n"; else san="$san,DNS:$n"; fi
    done
    local tmp2
    tmp2="$(mktemp -d)"
    openssl req -newkey rsa:3072 -nodes -subj "/CN=$cn" \
        -keyout "$c/$stem.key" -out "$tmp2/$stem.csr" 2>/dev/null
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san" >"$tmp2/ext.cnf"
    openssl x509 -req -days 825 -in "$tmp2/$stem.csr" -CA "$c/ca.pem" -CAkey "$dir/ca.key" \
        -CAcreateserial -CAserial "$tmp2/ca.srl" -extfile "$tmp2/ext.cnf" \
        -out "$c/$stem.pem" 2>/dev/null
    rm -rf "$tmp2"
    chmod 644 "$c/$stem.pem" "$c/$stem.key"
    made+=("$c/$stem.pem" "$c/$stem.key")
}
if [ ! -s "$c/archive.pem" ] || [ ! -s "$c/archive.key" ]; then
    issue archive archive archive "$@"
fi
if [ ! -s "$c/server.pem" ] || [ ! -s "$c/server.key" ]; then
    san="DNS:mosquitto,DNS:localhost,IP:127.0.0.1"
    host="$(hostname 2>/dev/null || true)"
    [ -n "$host" ] && san="$san,DNS:$host"
    for n in "$@"; do
        if [[ "$n" =~ ^[0-9.]+$ || "$n" == *:* ]]; then san="$san,IP:$n"; else san="$san,DNS:$n"; fi
    done
    tmp2="$(mktemp -d)"
    openssl req -newkey rsa:3072 -nodes -subj "/CN=mosquitto" \
        -keyout "$c/server.key" -out "$tmp2/server.csr" 2>/dev/null
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san" >"$tmp2/ext.cnf"
    openssl x509 -req -days 825 -in "$tmp2/server.csr" -CA "$c/ca.pem" -CAkey "$dir/ca.key" \
        -CAcreateserial -CAserial "$tmp2/ca.srl" -extfile "$tmp2/ext.cnf" \
        -out "$c/server.pem" 2>/dev/null
    rm -rf "$tmp2"
    chmod 644 "$c/server.pem" "$c/server.key"
    made+=("$c/server.pem" "$c/server.key")
fi

if [ ${#made[@]} -eq 0 ]; then
    echo "secrets: nothing to make (every file exists in $dir)"
else
    printf 'made %s\n' "${made[@]}"
fi
