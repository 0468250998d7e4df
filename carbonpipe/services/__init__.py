"""The local services (Kafka 4 KRaft, the embedded FerretDB), built and run by carbonpipe.

No Docker needed: Maven resolves Kafka's jars, Go builds FerretDB, and both run as detached
processes with pid files in ``<home>/run`` and logs in ``<home>/logs``.

``process``  the one supervisor (pid + create time, spawn, health wait, stop), apps use it too
``build``    toolchains and builds with digest stamps (``ensure_built``)
``service``  what a service is, and the one start/stop/wait lifecycle
``kafka``, ``mongo``  the two services; ``topics`` the pipeline's topics
``stack``    both services by name, status, ``up``; ``cli`` the ``up|down|status|clean`` commands
"""
