#!/bin/sh
# Usage: source-ips.sh COUNT ENV_FILE
#
# Finds this instance's secondary private IPs in the instance metadata
# (IMDSv2), adds each to the primary interface (the article's
# "ifconfig eth0:N" step, done with ip addr add) and writes them to ENV_FILE
# as WSDIRECT_SRC1..WSDIRECT_SRC<COUNT> for HAProxy's "source" lines.
set -eu
want="$1"
env_file="$2"
imds=http://169.254.169.254/latest

tok=$(curl -fsS --retry 10 --retry-connrefused -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 300" "$imds/api/token")
md() { curl -fsS --retry 5 -H "X-aws-ec2-metadata-token: $tok" "$imds/meta-data/$1"; }

mac=$(md mac)
cidr=$(md "network/interfaces/macs/$mac/subnet-ipv4-cidr-block")
prefix=${cidr#*/}
dev=$(ip -o link | awk -v mac="$mac" 'index($0, mac) { sub(/:$/, "", $2); print $2; exit }')
if [ -z "$dev" ]; then
  echo "source-ips: no interface with MAC $mac" >&2
  exit 1
fi

# Addresses assigned at launch can take a moment to show in the metadata.
tries=0
while :; do
  addrs=$(md "network/interfaces/macs/$mac/local-ipv4s")
  have=$(($(echo "$addrs" | wc -l) - 1))
  [ "$have" -ge "$want" ] && break
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then
    echo "source-ips: want $want secondary IPs, metadata shows $have" >&2
    exit 1
  fi
  sleep 2
done

tmp="$env_file.tmp"
: > "$tmp"
n=0
# The first address is the primary one; the rest are secondary.
for addr in $(echo "$addrs" | tail -n +2); do
  n=$((n + 1))
  [ "$n" -gt "$want" ] && break
  if ! ip -o addr show dev "$dev" | grep -q "inet $addr/"; then
    ip addr add "$addr/$prefix" dev "$dev"
  fi
  echo "WSDIRECT_SRC$n=$addr" >> "$tmp"
done
mv "$tmp" "$env_file"
