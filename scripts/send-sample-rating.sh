#!/usr/bin/env bash
# Sends a correctly signed sample Zendesk rating to a running csatwatch, as
# the Zendesk trigger in docs/helpdesks/zendesk.md would.
#
#   scripts/send-sample-rating.sh [bad|good] [TICKET_ID]
#
#   CSATWATCH_URL     default http://127.0.0.1:8080
#   ZENDESK_SOURCE    the [[sources]] name, default zendesk
#   ZENDESK_SECRET    its signing secret, default the example config's demo secret
set -euo pipefail
rating="${1:-bad}"
ticket="${2:-4242}"
url="${CSATWATCH_URL:-http://127.0.0.1:8080}"
source_name="${ZENDESK_SOURCE:-zendesk}"
secret="${ZENDESK_SECRET:-demo-zendesk-signing-secret}"

body=$(cat <<JSON
{"csatwatch":1,"ticket":{"id":"$ticket","link":"https://example.zendesk.com/agent/tickets/$ticket","title":"Sample ticket","tags":"sample","brand":"Example","group":"Support"},"assignee":{"name":"Sam Agent","email":"sam@example.com"},"requester":{"name":"Jane Customer","email":"jane@example.com","organization":"Example Ltd"},"satisfaction":{"current_rating":"$rating","current_comment":"This is a sample rating sent by scripts/send-sample-rating.sh"},"updated_at":""}
JSON
)
timestamp=$(date -u +%Y-%m-%dT%H:%M:%SZ)
signature=$(printf '%s%s' "$timestamp" "$body" | openssl dgst -sha256 -hmac "$secret" -binary | base64)

curl -sS -w '\nHTTP %{http_code}\n' -X POST "$url/webhooks/$source_name" \
  -H 'Content-Type: application/json' \
  -H "X-Zendesk-Webhook-Signature: $signature" \
  -H "X-Zendesk-Webhook-Signature-Timestamp: $timestamp" \
  --data-binary "$body"
