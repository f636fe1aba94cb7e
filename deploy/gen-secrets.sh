#!/bin/sh
# Writes the git-ignored secret files of deploy/ with fresh random values, keeping any that exist:
#   deploy/secrets/postgres_password   compose: PostgreSQL's password (a compose secret, read by the database's entrypoint)
#   deploy/secrets.env                 compose: coinwire's env file (the store URL with that password, the other secrets)
#   deploy/k8s/secrets.env             kubernetes: `kubectl create secret generic coinwire-secrets --from-env-file=...`
# Usage: deploy/gen-secrets.sh [postgres host for the k8s store URL, default postgres]
set -eu
cd "$(dirname "$0")"
umask 077
pg_host=${1:-postgres}
rand() { python3 -c "import base64, secrets, sys; print(base64.$1(secrets.token_bytes(int(sys.argv[1]))).decode().rstrip('='))" "$2"; }
mkdir -p secrets
[ -s secrets/postgres_password ] || rand urlsafe_b64encode 24 > secrets/postgres_password
if [ ! -s secrets.env ]; then
  {
    echo "COINWIRE_STORE_URL=postgresql://coinwire:$(cat secrets/postgres_password)@postgres:5432/coinwire"
    echo "COINWIRE_JWT_SECRET=$(rand urlsafe_b64encode 48)"
    echo "COINWIRE_MASTER_KEY=$(python3 -c 'import base64, secrets; print(base64.b64encode(secrets.token_bytes(32)).decode())')"
    echo "COINWIRE_ADMIN_PASSWORD=$(rand urlsafe_b64encode 18)"
  } > secrets.env
fi
if [ ! -s k8s/secrets.env ]; then
  {
    grep -E '^COINWIRE_(JWT_SECRET|MASTER_KEY|ADMIN_PASSWORD)=' secrets.env
    echo "COINWIRE_STORE_URL=postgresql://coinwire:$(cat secrets/postgres_password)@${pg_host}:5432/coinwire"
  } > k8s/secrets.env
fi
echo "secrets in $(pwd)/secrets.env, secrets/postgres_password and k8s/secrets.env (mode 0600, git-ignored)"
