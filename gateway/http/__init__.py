"""HTTP layer: routes, request parsing, responses. Knows the service and the ports, never a storage SDK."""
