#!/usr/bin/env bash
# Makes a CA, a server certificate and a client certificate for rewind's mutual TLS.
#   usage: scripts/make-certs.sh OUTDIR [SERVER_NAME (default localhost)] [CLIENT_NAME (default rewind-client)]
# Writes OUTDIR/{ca.pem,ca.key,server.pem,server.key,client.pem,client.key}. Then:
#   rewind serve --dir D --tls_cert OUTDIR/server.pem --tls_key OUTDIR/server.key --tls_client_ca OUTDIR/ca.pem
#   rewind query --server https://SERVER_NAME:9123 --ca OUTDIR/ca.pem --cert OUTDIR/client.pem --key OUTDIR/client.key 'port 53'
#   curl --cacert OUTDIR/ca.pem --cert OUTDIR/client.pem --key OUTDIR/client.key --data-binary 'port 53' https://SERVER_NAME:9123/query
set -euo pipefail
out=${1:?usage: make-certs.sh OUTDIR [SERVER_NAME] [CLIENT_NAME]}
server=${2:-localhost}
client=${3:-rewind-client}
days=825
mkdir -p "$out"
umask 077
cd "$out"
openssl req -x509 -newkey rsa:3072 -nodes -keyout ca.key -out ca.pem -days 3650 -subj "/CN=rewind CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
san="DNS:$server"
[[ "$server" =~ ^[0-9.]+$ ]] && san="IP:$server"
[ "$server" = "localhost" ] && san="DNS:localhost,IP:127.0.0.1"
openssl req -newkey rsa:3072 -nodes -keyout server.key -out server.csr -subj "/CN=$server" 2>/dev/null
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' "$san" > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days $days \
  -extfile server.ext 2>/dev/null
openssl req -newkey rsa:3072 -nodes -keyout client.key -out client.csr -subj "/CN=$client" 2>/dev/null
printf 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n' > client.ext
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days $days \
  -extfile client.ext 2>/dev/null
rm -f server.csr client.csr server.ext client.ext ca.srl
chmod 644 ca.pem server.pem client.pem
echo "made $out/{ca,server,client}.{pem,key} (server name: $server)"
