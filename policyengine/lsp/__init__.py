"""The language server (`policyengine lsp`). The server needs the `lsp` extra (pygls);
`analysis` does not."""
