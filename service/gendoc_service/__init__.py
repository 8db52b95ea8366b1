"""The gendoc rendering service (Starlette): template store, docxtpl rendering, PDF via the
converter."""
