#!/usr/bin/env bash
# A local ACME server for the tests (Let's Encrypt is not reachable here).
#
#   scripts/harness/pebble.sh install # apt-get install pebble when missing (test.sh does it up front)
#   scripts/harness/pebble.sh start HTTP_PORT [TLS_PORT]  # waits until the directory answers
#   scripts/harness/pebble.sh stop    # stops only the pebble and challtestsrv `start` started
#   scripts/harness/pebble.sh root    # prints the current issuing root (PEM)
#   scripts/harness/pebble.sh env     # prints PLANO_PEBBLE_DIR=, PLANO_PEBBLE_CA=, PLANO_PEBBLE_URL=
#
# Uses Debian's pebble (2.4), installed with apt when missing. The package ships
# no config and no certificates, so `start` makes, once, under $PLANO_PEBBLE_DIR:
# a small CA (ca.pem) and a certificate for pebble's own HTTPS (server.pem; SANs
# localhost, host.docker.internal, 127.0.0.1 and the listen address below), then
# writes config.json and runs, each in its own session:
#
# - pebble-challtestsrv as the DNS server pebble asks: every name is 127.0.0.1
#   (no AAAA); DNS on 127.0.0.1:$PLANO_PEBBLE_DNS_PORT, management on
#   127.0.0.1:$PLANO_PEBBLE_CHALL_PORT, nothing else.
# - pebble, with its ACME directory on <host address>:$PLANO_PEBBLE_PORT, where
#   the host address is the one containers reach as host.docker.internal (with
#   `extra_hosts: host.docker.internal:host-gateway`): the IPv4 address of the
#   default bridge's interface (docker0). Management API on
#   127.0.0.1:$PLANO_PEBBLE_MGMT_PORT. It checks HTTP-01 challenges for real, at
#   http://<name>:HTTP_PORT/ = 127.0.0.1:HTTP_PORT, where nginx's port 80 is
#   published. No sleeps, no nonce rejections.
#
# Each PLANO_PEBBLE_DIR is one instance with its own ports, so several test
# modules can each run their own pebble at once. `start` with the same settings
# as the running pair does nothing; with other ports (or a changed config) it
# restarts both. The issuing root changes on every restart: fetch it with `root`.
# PIDs and logs: $PLANO_PEBBLE_DIR/*.pid, *.log.
#
# Environment: PLANO_PEBBLE_DIR (/var/lib/plano-pebble), PLANO_PEBBLE_PORT (ACME,
# 14000), PLANO_PEBBLE_MGMT_PORT (15000), PLANO_PEBBLE_DNS_PORT (8053),
# PLANO_PEBBLE_CHALL_PORT (8055), PLANO_PEBBLE_LISTEN (the host address above;
# set it where the engine has no docker0), PLANO_PEBBLE_BLOCKLIST (names pebble
# refuses, space-separated: blocked-domain.example), PLANO_PEBBLE_VALIDITY (issued
# certificates' lifetime in seconds; empty: pebble's default of 5 years),
# PLANO_PEBBLE_WAIT (20 s), PLANO_PEBBLE_STOP_WAIT (10 s).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/harness/lib.sh
source "$HERE/lib.sh"

DIR=${PLANO_PEBBLE_DIR:-/var/lib/plano-pebble}
CA=$DIR/ca.pem
CA_KEY=$DIR/ca.key
CERT=$DIR/server.pem
KEY=$DIR/server.key
CONFIG=$DIR/config.json
PEBBLE_PIDFILE=$DIR/pebble.pid
PEBBLE_LOG=$DIR/pebble.log
CHALL_PIDFILE=$DIR/challtestsrv.pid
CHALL_LOG=$DIR/challtestsrv.log
ACME_PORT=${PLANO_PEBBLE_PORT:-14000}
MGMT_ADDR=127.0.0.1:${PLANO_PEBBLE_MGMT_PORT:-15000}
DNS_ADDR=127.0.0.1:${PLANO_PEBBLE_DNS_PORT:-8053}
CHALL_MGMT_ADDR=127.0.0.1:${PLANO_PEBBLE_CHALL_PORT:-8055}
BLOCKLIST=${PLANO_PEBBLE_BLOCKLIST-blocked-domain.example}
VALIDITY=${PLANO_PEBBLE_VALIDITY:-}
WAIT=${PLANO_PEBBLE_WAIT:-20}
STOP_WAIT=${PLANO_PEBBLE_STOP_WAIT:-10}
LOCK=$DIR.lock
# /proc/PID/comm holds at most 15 characters.
PEBBLE_COMM=pebble
CHALL_COMM=pebble-challtes

usage() { echo "usage: $0 install | start HTTP_PORT [TLS_PORT] | stop | root | env" >&2; exit 2; }

is_ipv4() { [[ $1 =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]]; }

# The address pebble's ACME API listens on: the one containers reach as
# host.docker.internal (host-gateway), which dockerd takes from the default
# bridge's interface. On an engine's first start `docker network inspect bridge`
# shows the subnet but no Gateway (seen with Debian's dockerd 20.10 right after
# `apt-get install docker.io`), so the interface itself is asked first.
listen_ip() {
  local ip=${PLANO_PEBBLE_LISTEN:-} bridge tried=()
  if [[ -n $ip ]]; then
    is_ipv4 "$ip" || die "pebble: PLANO_PEBBLE_LISTEN='$ip' is no IPv4 address"
    echo "$ip"
    return
  fi
  bridge=$(timeout 15 docker network inspect bridge -f '{{index .Options "com.docker.network.bridge.name"}}' 2>/dev/null || true)
  bridge=${bridge:-docker0}
  if command -v ip >/dev/null 2>&1; then
    ip=$(ip -4 -o addr show dev "$bridge" 2>/dev/null | awk '{ split($4, a, "/"); print a[1]; exit }')
    is_ipv4 "$ip" && { echo "$ip"; return; }
    tried+=("the IPv4 address of interface $bridge ('ip -4 addr show dev $bridge': ${ip:-none})")
  else
    tried+=("the IPv4 address of interface $bridge (no 'ip' command: install iproute2)")
  fi
  ip=$(timeout 15 docker network inspect bridge -f '{{range .IPAM.Config}}{{.Gateway}} {{end}}' 2>/dev/null | awk '{ print $1 }' || true)
  is_ipv4 "$ip" && { echo "$ip"; return; }
  tried+=("the Gateway of Docker's bridge network ('docker network inspect bridge': ${ip:-empty})")
  local IFS=';'
  die "pebble: found no address where containers reach this host; tried ${tried[*]}. Start the engine with scripts/harness/engine.sh, or set PLANO_PEBBLE_LISTEN=IP"
}

dir_url() { echo "https://$1:$ACME_PORT/dir"; }

dir_answers() { curl -fsS -m 3 --cacert "$CA" -o /dev/null "$(dir_url "$1")" 2>/dev/null; }

# Any HTTP answer will do: the management API has no page at /.
chall_answers() {
  local code
  code=$(curl -sS -m 3 -o /dev/null -w '%{http_code}' "http://$CHALL_MGMT_ADDR/" 2>/dev/null || true)
  [[ -n $code && $code != 000 ]]
}

# The PID in PIDFILE, if that process runs and is named COMM.
our_pid() {
  local pidfile=$1 comm=$2 pid
  [[ -s $pidfile ]] || return 1
  pid=$(tr -dc '0-9' <"$pidfile" || true)
  [[ -n $pid ]] && alive "$pid" && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$comm" ]] || return 1
  echo "$pid"
}

tail_log() {
  local f
  for f in "$@"; do
    if [[ -s $f ]]; then
      log "last lines of $f:"
      tail -n 20 "$f" | sed 's/^/harness:   | /' >&2
    fi
  done
}


# Install once, whichever instance asks first.
ensure_installed() {
  command -v pebble >/dev/null 2>&1 && command -v pebble-challtestsrv >/dev/null 2>&1 && return 0
  apt_install pebble pebble
  command -v pebble >/dev/null 2>&1 || die "pebble: no pebble on PATH after installing it"
}

# True when $CERT is signed by $CA, valid for another day and names IP.
cert_fits() {
  local ip=$1
  [[ -s $CERT && -s $KEY ]] || return 1
  openssl verify -CAfile "$CA" "$CERT" >/dev/null 2>&1 || return 1
  openssl x509 -in "$CERT" -noout -checkend 86400 >/dev/null 2>&1 || return 1
  openssl x509 -in "$CERT" -noout -checkip "$ip" 2>/dev/null | grep -q 'does match'
}

# Make the CA once and pebble's server certificate when it is missing or no
# longer fits. Returns 0 when it made a new server certificate.
make_certs() {
  local ip=$1 csr
  mkdir -p "$DIR"
  chmod 755 "$DIR"
  if [[ ! -s $CA || ! -s $CA_KEY ]]; then
    log "pebble: making a test CA in $CA"
    (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$CA_KEY") 2>/dev/null
    openssl req -x509 -new -key "$CA_KEY" -out "$CA" -days 3650 -subj "/CN=plano test CA for pebble" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null ||
      die "pebble: openssl could not make the CA"
    rm -f "$CERT" "$KEY"
  fi
  if cert_fits "$ip"; then return 1; fi
  log "pebble: making pebble's HTTPS certificate in $CERT (localhost, host.docker.internal, 127.0.0.1, $ip)"
  csr=$DIR/server.csr
  (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$KEY") 2>/dev/null
  openssl req -new -key "$KEY" -out "$csr" -subj "/CN=localhost" 2>/dev/null ||
    die "pebble: openssl could not make a CSR"
  openssl x509 -req -in "$csr" -CA "$CA" -CAkey "$CA_KEY" -CAcreateserial -CAserial "$DIR/ca.srl" \
    -days 825 -out "$CERT" -extfile <(
      echo "basicConstraints=critical,CA:FALSE"
      echo "keyUsage=critical,digitalSignature"
      echo "extendedKeyUsage=serverAuth"
      echo "subjectKeyIdentifier=hash"
      echo "authorityKeyIdentifier=keyid,issuer"
      echo "subjectAltName=DNS:localhost,DNS:host.docker.internal,IP:127.0.0.1,IP:$ip"
    ) 2>/dev/null || die "pebble: openssl could not sign pebble's certificate"
  rm -f "$csr"
  return 0
}

# pebble's config for these ports, on stdout.
render_config() {
  local ip=$1 http_port=$2 tls_port=$3 blocklist="" validity="" name
  for name in $BLOCKLIST; do
    blocklist+="${blocklist:+, }\"$name\""
  done
  if [[ -n $VALIDITY ]]; then
    validity=$(printf ',\n    "certificateValidityPeriod": %s' "$VALIDITY")
  fi
  cat <<EOF
{
  "pebble": {
    "listenAddress": "$ip:$ACME_PORT",
    "managementListenAddress": "$MGMT_ADDR",
    "certificate": "$CERT",
    "privateKey": "$KEY",
    "httpPort": $http_port,
    "tlsPort": $tls_port,
    "ocspResponderURL": "",
    "externalAccountBindingRequired": false,
    "domainBlocklist": [$blocklist]$validity
  }
}
EOF
}

# Start "$@" in the background in its own session, output to LOG; prints its PID.
spawn() {
  local log_file=$1
  shift
  if [[ -s $log_file ]]; then mv -f "$log_file" "$log_file.1"; fi
  (
    # Hold no inherited descriptor (our lock, a caller's pipe).
    for fd in /proc/"$BASHPID"/fd/*; do
      fd=${fd##*/}
      if [[ $fd =~ ^[0-9]+$ ]] && ((fd > 2)); then eval "exec $fd>&-"; fi
    done
    cd /
    exec nohup setsid "$@" </dev/null >"$log_file" 2>&1
  ) &
  echo "$!"
}

stop_both() {
  stop_recorded "$PEBBLE_PIDFILE" "$PEBBLE_COMM" pebble "$STOP_WAIT" || true
  stop_recorded "$CHALL_PIDFILE" "$CHALL_COMM" pebble "$STOP_WAIT" || true
}

cmd_start() {
  local http_port=$1 tls_port=${2:-5001} t0=$SECONDS t ip new_cert=0 pebble_pid chall_pid deadline port
  for port in "$http_port" "$tls_port" "$ACME_PORT" "${MGMT_ADDR##*:}" "${DNS_ADDR##*:}" "${CHALL_MGMT_ADDR##*:}"; do
    if ! [[ $port =~ ^[1-9][0-9]{0,4}$ ]] || ((port > 65535)); then
      die "pebble: '$port' is no port number (1-65535; HTTP_PORT, TLS_PORT and the PLANO_PEBBLE_*_PORT settings)"
    fi
  done
  [[ -z $VALIDITY || $VALIDITY =~ ^[0-9]+$ ]] || die "pebble: PLANO_PEBBLE_VALIDITY='$VALIDITY' is not a number of seconds"
  command -v curl >/dev/null 2>&1 || die "pebble: curl is missing"
  command -v openssl >/dev/null 2>&1 || die "pebble: openssl is missing"
  ip=$(listen_ip)

  mkdir -p "$(dirname "$DIR")"
  exec 9>"$LOCK"
  flock -w $((WAIT + 330)) 9 || die "pebble: could not take lock $LOCK"

  ensure_installed
  if make_certs "$ip"; then new_cert=1; fi
  render_config "$ip" "$http_port" "$tls_port" >"$CONFIG.new"

  if pebble_pid=$(our_pid "$PEBBLE_PIDFILE" "$PEBBLE_COMM") && chall_pid=$(our_pid "$CHALL_PIDFILE" "$CHALL_COMM"); then
    if ((new_cert)); then
      log "pebble: runs, but its HTTPS certificate was just remade; restarting it"
    elif ! cmp -s "$CONFIG.new" "$CONFIG"; then
      log "pebble: runs with other settings than httpPort $http_port, tlsPort $tls_port (see $CONFIG); restarting it"
    elif ! dir_answers "$ip" || ! chall_answers; then
      log "pebble: runs (pids $pebble_pid, $chall_pid) but does not answer; restarting it"
    else
      rm -f "$CONFIG.new"
      log "pebble: already runs (pids $pebble_pid, $chall_pid) with httpPort $http_port, tlsPort $tls_port; $(dir_url "$ip") answers ($((SECONDS - t0))s)"
      return 0
    fi
  fi
  if [[ -e $PEBBLE_PIDFILE || -e $CHALL_PIDFILE ]]; then stop_both; fi
  mv -f "$CONFIG.new" "$CONFIG"

  t=$SECONDS
  log "pebble: starting pebble-challtestsrv (DNS $DNS_ADDR, every name is 127.0.0.1; log: $CHALL_LOG)"
  chall_pid=$(spawn "$CHALL_LOG" pebble-challtestsrv -defaultIPv4 127.0.0.1 -defaultIPv6 "" \
    -dns01 "$DNS_ADDR" -http01 "" -https01 "" -tlsalpn01 "" -management "$CHALL_MGMT_ADDR")
  echo "$chall_pid" >"$CHALL_PIDFILE"
  log "pebble: starting pebble on $ip:$ACME_PORT, httpPort $http_port (config: $CONFIG, log: $PEBBLE_LOG)"
  pebble_pid=$(spawn "$PEBBLE_LOG" env -u PEBBLE_VA_ALWAYS_VALID PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 \
    pebble -config "$CONFIG" -dnsserver "$DNS_ADDR")
  echo "$pebble_pid" >"$PEBBLE_PIDFILE"

  deadline=$((SECONDS + WAIT))
  while ((SECONDS < deadline)); do
    if dir_answers "$ip" && chall_answers; then
      log "pebble: started, pids $pebble_pid (pebble), $chall_pid (challtestsrv); $(dir_url "$ip") answers ($((SECONDS - t))s; total $((SECONDS - t0))s)"
      return 0
    fi
    if ! alive "$pebble_pid" || ! alive "$chall_pid"; then
      alive "$pebble_pid" || log "pebble: pebble (pid $pebble_pid) exited during start-up"
      alive "$chall_pid" || log "pebble: pebble-challtestsrv (pid $chall_pid) exited during start-up"
      tail_log "$PEBBLE_LOG" "$CHALL_LOG"
      stop_both
      die "pebble: start-up failed (is port $ACME_PORT, ${MGMT_ADDR##*:}, ${DNS_ADDR##*:} or ${CHALL_MGMT_ADDR##*:} taken?)"
    fi
    sleep 0.3
  done
  tail_log "$PEBBLE_LOG" "$CHALL_LOG"
  die "pebble: $(dir_url "$ip") did not answer within ${WAIT}s (still running; '$0 stop' stops them)"
}

cmd_stop() {
  local t0=$SECONDS stopped=0
  if stop_recorded "$PEBBLE_PIDFILE" "$PEBBLE_COMM" pebble "$STOP_WAIT"; then stopped=1; fi
  if stop_recorded "$CHALL_PIDFILE" "$CHALL_COMM" pebble "$STOP_WAIT"; then stopped=1; fi
  if ((stopped)); then log "pebble: stopped ($((SECONDS - t0))s)"; fi
}

cmd_root() {
  [[ -s $CA ]] || die "pebble: no $CA; run '$0 start HTTP_PORT' first"
  curl -fsS -m 5 --cacert "$CA" "https://$MGMT_ADDR/roots/0" ||
    die "pebble: the management API https://$MGMT_ADDR/roots/0 does not answer (is pebble started?)"
}

cmd_env() {
  local ip
  ip=$(listen_ip)
  printf 'PLANO_PEBBLE_DIR=%q\n' "$DIR"
  printf 'PLANO_PEBBLE_CA=%q\n' "$CA"
  printf 'PLANO_PEBBLE_URL=%q\n' "$(dir_url "$ip")"
}

(($# >= 1)) || usage
case $1 in
  install) (($# == 1)) || usage; ensure_installed ;;
  start) (($# == 2 || $# == 3)) || usage; cmd_start "${@:2}" ;;
  stop) (($# == 1)) || usage; cmd_stop ;;
  root) (($# == 1)) || usage; cmd_root ;;
  env) (($# == 1)) || usage; cmd_env ;;
  *) usage ;;
esac
