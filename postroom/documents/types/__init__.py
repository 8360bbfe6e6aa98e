"""One module per document type, each exposing ``DOCUMENT_TYPE``; the catalogue finds them all."""
