#!/usr/bin/env bash
# Regenerates the fixed fuzz PKI (Broker.Fuzz/pki) and the OCSP and CRL seeds with openssl, offline.
# The OCSP target validates against pki/leaf.pem and pki/ca.pem at FuzzPki.Now (2027-01-01): seeds are valid for 100 years.
# Usage: Broker.Fuzz/corpus/make-revocation-seeds.sh   (then rebuild Broker.Fuzz)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
pki="$here/../pki"; ocsp="$here/ocsp"; crl="$here/crl"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
mkdir -p "$pki" "$ocsp" "$crl"
cd "$work"
days=36500

cat > ca.cnf <<CNF
[ ca ]
default_ca = fuzz
[ fuzz ]
dir = $work
database = $work/index.txt
new_certs_dir = $work
serial = $work/serial
crlnumber = $work/crlnumber
default_md = sha256
default_crl_days = $days
policy = any
[ any ]
commonName = supplied
[ v3_ca ]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ v3_leaf ]
basicConstraints = CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
authorityInfoAccess = OCSP;URI:http://127.0.0.1:1/ocsp
crlDistributionPoints = URI:http://127.0.0.1:1/ca.crl
[ v3_ocsp ]
basicConstraints = CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = OCSPSigning
noCheck = ignored
[ crl_idp ]
issuingDistributionPoint = critical,@idp
[ idp ]
fullname = URI:http://127.0.0.1:1/ca.crl
onlysomereasons = keyCompromise
CNF
touch index.txt; echo 1000 > serial; echo 01 > crlnumber
start=20260101000000Z

openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -subj "/O=OmniBroker Fuzz/CN=Fuzz CA" -days $days \
  -addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.pem 2>/dev/null
issue() { # name subject extensions
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
  openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -startdate $start -days $days -extensions "$3" -in "$1.csr" -out "$1.pem" -notext 2>/dev/null
}
issue leaf "/CN=device-1" v3_leaf
issue other "/CN=device-2" v3_leaf
issue responder "/CN=Fuzz OCSP responder" v3_ocsp
cp ca.pem leaf.pem "$pki/"

# OCSP requests for the leaf: without a nonce, and with the nonce FuzzPki.NonceExtensionValue expects (16 bytes 00..0F).
openssl ocsp -issuer ca.pem -cert leaf.pem -no_nonce -reqout req.der
openssl ocsp -issuer ca.pem -sha256 -cert leaf.pem -no_nonce -reqout req-sha256.der
openssl ocsp -issuer ca.pem -cert leaf.pem -reqout req-nonce.der 2>/dev/null
python3 - <<'PY'
# Replace openssl's random nonce with the fixed one: same length (16 bytes) so every DER length stays.
data = bytearray(open("req-nonce.der", "rb").read())
oid = bytes.fromhex("06092b0601050507300102")  # id-pkix-ocsp-nonce
i = data.index(oid) + len(oid)
assert data[i] == 0x04 and data[i + 1] == 0x12 and data[i + 2] == 0x04 and data[i + 3] == 0x10, data[i:i + 4].hex()
data[i + 4:i + 20] = bytes(range(16))
open("req-nonce.der", "wb").write(bytes(data))
PY
respond() { # output index request signer key [extra...]
  local out=$1 index=$2 req=$3 signer=$4 key=$5; shift 5
  openssl ocsp -index "$index" -CA ca.pem -rsigner "$signer" -rkey "$key" -reqin "$req" -ndays $days -respout "$ocsp/$out" "$@" 2>/dev/null
}
cp index.txt index-good.txt
respond good.der index-good.txt req.der ca.pem ca.key
respond good-sha256.der index-good.txt req-sha256.der ca.pem ca.key
respond good-nonce.der index-good.txt req-nonce.der ca.pem ca.key
respond good-bykey.der index-good.txt req.der ca.pem ca.key -resp_key_id
respond good-delegated.der index-good.txt req.der responder.pem responder.key -resp_no_certs
respond good-delegated-certs.der index-good.txt req.der responder.pem responder.key
openssl ocsp -issuer ca.pem -cert other.pem -no_nonce -reqout req-other.der
printf "" > index-empty.txt
respond unknown.der index-empty.txt req.der ca.pem ca.key
respond foreign-cert.der index-good.txt req-other.der ca.pem ca.key
printf '\x30\x03\x0a\x01\x01' > "$ocsp/malformed-request.der"   # responseStatus malformedRequest
printf '\x30\x03\x0a\x01\x03' > "$ocsp/try-later.der"           # responseStatus tryLater

# Revoke the leaf (keyCompromise), then the CRLs and a revoked answer.
openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -revoke leaf.pem -crl_reason keyCompromise 2>/dev/null
respond revoked.der index.txt req.der ca.pem ca.key
respond revoked-nonce.der index.txt req-nonce.der ca.pem ca.key
openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -gencrl -out crl.pem 2>/dev/null
openssl crl -in crl.pem -outform DER -out "$crl/revoked.der"
cp crl.pem "$crl/revoked.pem"
# Partitioned by reason: refused by the parser (an edge-case seed).
openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -gencrl -crlexts crl_idp -out crl-idp.pem 2>/dev/null
openssl crl -in crl-idp.pem -outform DER -out "$crl/idp-only-some-reasons.der"
openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -revoke other.pem -crl_reason superseded 2>/dev/null
openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -gencrl -out crl2.pem 2>/dev/null
openssl crl -in crl2.pem -outform DER -out "$crl/two-revoked.der"
# An empty CRL.
: > index.txt
openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -gencrl -out empty.pem 2>/dev/null
openssl crl -in empty.pem -outform DER -out "$crl/empty.der"
echo "pki: $(ls "$pki" | tr '\n' ' ')"; echo "ocsp: $(ls "$ocsp" | wc -l) seeds"; echo "crl: $(ls "$crl" | wc -l) seeds"
