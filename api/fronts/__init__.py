"""How clients reach the core: the HTTP app (app) with the seed's legacy routes (legacy, forms,
legacy_format, headers), the JSON API (v1/), the GUI (web/), /healthz and /metrics (ops), and the mail
gateway (smtp, smtp_parse). Each front reads and answers its own wire format and calls api.core for
every rule; none starts a background service."""
