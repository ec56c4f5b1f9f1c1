"""What the API and the workers agree on, and nothing else: settings, every Redis key and record, the
Celery tasks with their queues and payloads.

Torch-free. ``archscore.service`` (the API) and ``archscore.workers`` both import this package and never
each other, so either side can change inside without the other noticing.
"""
