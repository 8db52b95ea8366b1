"""gendoc: document generation for Kubernetes (docxtpl templates + JSON -> DOCX/PDF)."""

__version__ = "0.1.0"
