#!/usr/bin/env bash
# Generates the TLS test fixtures of Tests/CallgateServerTests/Resources/tls (committed; run again only to
# replace them). Everything is valid for 100 years and uses P-256 keys:
#
#   ca.pem                     "Callgate Test CA", the root the tests trust
#   server.pem, server.key     signed by it, for localhost (SAN DNS:localhost, IP:127.0.0.1)
#   client.pem, client.key     signed by it, a client certificate for the mutual-TLS test
#   other-ca.pem               an unrelated CA: a client trusting only it must refuse the server
#
# The CAs' private keys are thrown away. Needs the openssl command (apt-get install -y openssl).
set -euo pipefail
cd "$(dirname "$0")/.."
out=Tests/CallgateServerTests/Resources/tls
days=36525
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

command -v openssl >/dev/null || { echo "openssl is missing: apt-get install -y openssl" >&2; exit 1; }
mkdir -p "$out"

ca() { # name, subject
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days "$days" \
        -subj "/O=Callgate tests/CN=$2" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$work/$1.key" -out "$out/$1.pem" 2>/dev/null
}

leaf() { # name, subject, extensions
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -subj "/O=Callgate tests/CN=$2" -keyout "$out/$1.key" -out "$work/$1.csr" 2>/dev/null
    printf '%s\n' "$3" >"$work/$1.ext"
    openssl x509 -req -in "$work/$1.csr" -CA "$out/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
        -CAserial "$work/ca.srl" -days "$days" -extfile "$work/$1.ext" -out "$out/$1.pem" 2>/dev/null
}

ca ca "Callgate Test CA"
ca other-ca "Unrelated Test CA"
leaf server localhost "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1"
leaf client "test client" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
chmod 0644 "$out"/*.pem "$out"/*.key

openssl verify -CAfile "$out/ca.pem" "$out/server.pem" "$out/client.pem"
openssl x509 -in "$out/server.pem" -noout -subject -enddate -ext subjectAltName
