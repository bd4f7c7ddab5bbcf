#!/usr/bin/env bash
# Generates the test PKI of the local mesh into DIR (default .work/pki): a mesh CA, the server
# workload, caller workloads in several namespaces, one caller from a foreign trust domain, one
# signed by a CA the mesh does not trust, and one whose certificate names two SPIFFE IDs. Keys are made fresh each run and never leave DIR.
#
# Files: ca.pem, rogue-ca.pem, and <name>.pem + <name>.key for each workload below.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/.work/pki}
mkdir -p "$dir"
cd "$dir"
umask 077

# name | SPIFFE ID | signing CA
workloads=(
  "payments-api|spiffe://cluster.local/ns/payments/sa/payments-api|ca"
  "waypoint|spiffe://cluster.local/ns/payments/sa/waypoint|ca"
  "checkout|spiffe://cluster.local/ns/shop/sa/checkout|ca"
  "newsletter|spiffe://cluster.local/ns/marketing/sa/newsletter|ca"
  "fraud|spiffe://cluster.local/ns/risk/sa/fraud-scoring|ca"
  "foreign|spiffe://evil.example/ns/shop/sa/checkout|ca"
  "rogue|spiffe://cluster.local/ns/shop/sa/checkout|rogue-ca"
  # Two URI SANs: checkout's ID, then fraud-scoring's.
  "two-ids|spiffe://cluster.local/ns/shop/sa/checkout,URI:spiffe://cluster.local/ns/risk/sa/fraud-scoring|ca"
)

make_ca() { # name, subject
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "$2" -keyout "$1.key" -out "$1.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null
}

make_ca ca "/O=pci-mesh-guard test/CN=test mesh CA"
make_ca rogue-ca "/O=untrusted/CN=rogue CA"

for w in "${workloads[@]}"; do
  IFS='|' read -r name id ca <<<"$w"
  cat >"$name.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=URI:$id,DNS:$name.local
EXT
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/O=pci-mesh-guard test/CN=$name" -keyout "$name.key" -out "$name.csr" 2>/dev/null
  openssl x509 -req -in "$name.csr" -CA "$ca.pem" -CAkey "$ca.key" -CAcreateserial -days 2 \
    -extfile "$name.ext" -out "$name.pem" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
done
rm -f ./*.srl
chmod 644 ./*.pem
chmod 600 ./*.key
echo "$dir"
