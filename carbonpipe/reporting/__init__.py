"""What people read from the hot store every week: equivalents and cost, budgets and their
alerts, reports and exports. Pure computation in ``equivalents``, ``budgets``, ``report`` and
``codecarbon``; the hot store, Kafka and the webhook in ``store``, ``alerts`` and ``webhook``."""
