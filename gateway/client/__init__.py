"""The terminal client: ``gateway upload|download|share|revoke|ls`` over the public HTTP API only.

It is a client like any other (it imports nothing of the server): tus for resumable uploads, Range +
If-Range for resumable downloads, the documented JSON endpoints for links and listings. Modules:
``config`` (server, key, where state lives), ``api`` (one session, errors as one-line messages with exit
codes), ``progress`` (bars on a terminal, plain lines otherwise), ``upload``, ``download``, ``commands``.
"""
