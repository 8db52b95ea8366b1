#!/usr/bin/env bash
# The README's "run it" command: start the local stack (converter + service on
# 127.0.0.1), render the bundled examples to PDF through it, stop it: the invoice,
# and the letter (a sub-template, locale filters and an $html value).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-out}"
mkdir -p "$OUT"
STATE="$(mktemp -d)"
GENDOC=.venv/bin/gendoc
PORT="${GENDOC_DEMO_PORT:-8080}"
CPORT="${GENDOC_DEMO_CONVERTER_PORT:-3000}"

# The letter includes the stored template "letterhead": a plain NAME.docx in the
# store directory is one (as a mounted ConfigMap would provide it).
mkdir -p "$STATE/templates"
cp src/gendoc/examples/letterhead.docx "$STATE/templates/letterhead.docx"

$GENDOC up --port "$PORT" --converter-port "$CPORT" --store-dir "$STATE/templates" \
  --ready-file "$STATE/ready" > "$STATE/up.log" 2>&1 &
UP=$!
cleanup() {
  kill -TERM "$UP" 2>/dev/null || true
  wait "$UP" 2>/dev/null || true
  rm -rf "$STATE"
}
trap cleanup EXIT

# Wait for readiness (the stack writes the file once both parts answer), not a fixed time.
for _ in $(seq 1 1200); do
  [ -f "$STATE/ready" ] && break
  if ! kill -0 "$UP" 2>/dev/null; then cat "$STATE/up.log" >&2; echo "demo: gendoc up failed" >&2; exit 1; fi
  sleep 0.1
done
[ -f "$STATE/ready" ] || { cat "$STATE/up.log" >&2; echo "demo: stack not ready in 120 s" >&2; exit 1; }

$GENDOC render src/gendoc/examples/invoice.docx src/gendoc/examples/invoice.json \
  -o "$OUT/invoice.pdf" --url "http://127.0.0.1:$PORT"
if command -v pdftotext >/dev/null; then
  echo "demo: first lines of $OUT/invoice.pdf:"
  pdftotext -layout "$OUT/invoice.pdf" - | sed -n '1,8p'
fi
$GENDOC render src/gendoc/examples/letter.docx src/gendoc/examples/letter.json \
  -o "$OUT/letter.pdf" --locale de_DE --timezone Europe/Berlin --url "http://127.0.0.1:$PORT"
if command -v pdftotext >/dev/null; then
  echo "demo: first lines of $OUT/letter.pdf:"
  pdftotext -layout "$OUT/letter.pdf" - | sed -n '1,8p'
fi
echo "demo: your document is at $(realpath "$OUT/invoice.pdf")"
echo "demo: the second example is at $(realpath "$OUT/letter.pdf")"
