"""The converter sidecar: a pool of warm LibreOffice instances behind a Gotenberg API."""
