"""The ingress side of Herd: HTTP app, protocols, names, catalog and CLI."""
