#!/usr/bin/env bash
# Secrets for docker-compose.secure.yml, into secrets/ (ignored by git and the image build):
#   secrets/ca/ca.key               the CA's private key (keep it; never mounted)
#   secrets/kafka/ca.pem            the CA certificate clients trust (CARBONPIPE_KAFKA_SSL_CAFILE)
#   secrets/kafka/kafka.keystore.p12, keystore_creds   the broker's key and certificate
#   secrets/kafka/kafka_server_jaas.conf               the SASL/PLAIN user carbonpipe
# Passwords come from .env (KAFKA_CLIENT_PASSWORD, KAFKA_KEYSTORE_PASSWORD). Re-run after
# changing them; existing files are replaced. Usage: infra/compose/make-secrets.sh [ROOT]
set -euo pipefail
root="${1:-$(cd "$(dirname "$0")/../.." && pwd)}"
if [[ -f "$root/.env" ]]; then set -a; . "$root/.env"; set +a; fi
: "${KAFKA_CLIENT_PASSWORD:?set KAFKA_CLIENT_PASSWORD in .env (copy .env.example)}"
: "${KAFKA_KEYSTORE_PASSWORD:?set KAFKA_KEYSTORE_PASSWORD in .env (copy .env.example)}"
ca="$root/secrets/ca" kafka="$root/secrets/kafka"
umask 077
mkdir -p "$ca" "$kafka"
openssl req -x509 -newkey rsa:3072 -nodes -days 825 -subj "/CN=carbonpipe compose CA" \
  -keyout "$ca/ca.key" -out "$kafka/ca.pem" 2>/dev/null
openssl req -newkey rsa:3072 -nodes -subj "/CN=kafka" \
  -keyout "$ca/kafka.key" -out "$ca/kafka.csr" 2>/dev/null
printf 'subjectAltName=DNS:kafka,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' \
  > "$ca/kafka.ext"
openssl x509 -req -in "$ca/kafka.csr" -CA "$kafka/ca.pem" -CAkey "$ca/ca.key" \
  -CAcreateserial -CAserial "$ca/ca.srl" -days 825 -extfile "$ca/kafka.ext" -out "$ca/kafka.pem" 2>/dev/null
openssl pkcs12 -export -name kafka -in "$ca/kafka.pem" -inkey "$ca/kafka.key" \
  -certfile "$kafka/ca.pem" -passout "pass:$KAFKA_KEYSTORE_PASSWORD" \
  -out "$kafka/kafka.keystore.p12"
printf '%s' "$KAFKA_KEYSTORE_PASSWORD" > "$kafka/keystore_creds"
cat > "$kafka/kafka_server_jaas.conf" <<JAAS
KafkaServer {
  org.apache.kafka.common.security.plain.PlainLoginModule required
  user_carbonpipe="$KAFKA_CLIENT_PASSWORD";
};
JAAS
rm -f "$ca/kafka.csr" "$ca/kafka.ext" "$ca/kafka.key"
# The broker runs as uid 1000 (appuser) in the apache/kafka image: it must read these.
chmod 755 "$kafka" && chmod 644 "$kafka"/*
echo "secrets written to $root/secrets (CA certificate for clients: secrets/kafka/ca.pem)"
