"""The ``/api/v1`` blueprints. Each module defines one ``bp``; :func:`falconet.http.app.create_app`
registers every one twice, under ``/api/v1`` and under the tenant form ``/api/v1/main``."""
