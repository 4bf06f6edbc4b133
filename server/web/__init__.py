"""HTTP plumbing shared by the handlers: the middleware, access rules, query parsing,
conditional requests, JSON and file responders, the WebSocket hub, static assets, OpenAPI."""
